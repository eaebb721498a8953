// swift-tools-version: 6.1
import PackageDescription

let strict: [SwiftSetting] = [.enableUpcomingFeature("InternalImportsByDefault")]

let package = Package(
    name: "ArchonFleet",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "archon", targets: ["archon"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.0"),
    ],
    targets: [
        // System libraries (Debian: libnats-dev, libprotobuf-c-dev).
        .systemLibrary(name: "CNATS", pkgConfig: "libnats", providers: [.apt(["libnats-dev"])]),
        .systemLibrary(name: "CProtobufC", pkgConfig: "libprotobuf-c", providers: [.apt(["libprotobuf-c-dev"])]),
        // protoc-c output of proto/archon/v1; regenerate with scripts/gen-proto, never edit.
        .target(name: "ArchonProto", dependencies: ["CProtobufC"]),

        .target(name: "ArchonModel", swiftSettings: strict),
        .target(name: "ArchonWire", dependencies: ["ArchonModel", "ArchonProto", "CProtobufC"], swiftSettings: strict),
        .target(
            name: "ArchonNATS",
            dependencies: ["CNATS", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict
        ),
        .target(name: "ArchonCore", dependencies: ["ArchonModel"], swiftSettings: strict),
        .executableTarget(
            name: "archon",
            dependencies: [
                "ArchonModel", "ArchonWire", "ArchonNATS", "ArchonCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),

        // Test support: a real nats-server on a free loopback port.
        .target(name: "ArchonTestSupport", dependencies: ["ArchonNATS"], path: "Tests/ArchonTestSupport", swiftSettings: strict),
        .testTarget(name: "ArchonWireTests", dependencies: ["ArchonWire", "ArchonModel"], resources: [.copy("Golden")]),
        .testTarget(name: "ArchonNATSTests", dependencies: ["ArchonNATS", "ArchonTestSupport"]),
        .testTarget(
            name: "ArchonCoreTests",
            dependencies: ["ArchonCore", "ArchonModel", .product(name: "PropertyBased", package: "swift-property-based")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
