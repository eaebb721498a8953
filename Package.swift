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
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.0.0"),
        // Already in the graph through Hummingbird; the dashboard names header fields Hummingbird does not predefine.
        .package(url: "https://github.com/apple/swift-http-types", from: "1.0.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.0.0"),
        // Already in the graph through swift-nio; its Heap orders the controller's timers.
        .package(url: "https://github.com/apple/swift-collections", from: "1.1.0"),
        // Ed25519 (signed assignments, NATS NKeys) and SHA-256 (checkpoint checksums, API token hashes).
        .package(url: "https://github.com/apple/swift-crypto", "3.12.0"..<"5.0.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        // Latency percentiles of `archon bench latency` (p50/p99/p999 without keeping every sample).
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
    ],
    targets: [
        // System libraries (Debian: libnats-dev, libprotobuf-c-dev).
        .systemLibrary(name: "CNATS", pkgConfig: "libnats", providers: [.apt(["libnats-dev"])]),
        .systemLibrary(name: "CProtobufC", pkgConfig: "libprotobuf-c", providers: [.apt(["libprotobuf-c-dev"])]),
        // protoc-c output of proto/archon/v1; regenerate with scripts/gen-proto, never edit.
        .target(name: "ArchonProto", dependencies: ["CProtobufC"]),

        .target(name: "ArchonModel", swiftSettings: strict),
        .target(
            name: "ArchonWire",
            dependencies: ["ArchonModel", "ArchonProto", "CProtobufC", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strict
        ),
        .target(
            name: "ArchonNATS",
            dependencies: ["CNATS", .product(name: "Logging", package: "swift-log"), .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strict
        ),
        // Yams (libyaml): policy files and job specs are YAML people write by hand.
        .target(name: "ArchonCore", dependencies: ["ArchonModel", .product(name: "Yams", package: "Yams")], swiftSettings: strict),
        // fork/exec under a reaper shim, cgroup join and rlimits: only async-signal-safe C after fork.
        .target(name: "CArchonSpawn"),
        .target(
            name: "ArchonAgent",
            dependencies: [
                "ArchonModel", "ArchonWire", "ArchonNATS", "CArchonSpawn",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "ArchonController",
            dependencies: [
                "ArchonModel", "ArchonCore", "ArchonWire", "ArchonNATS",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "HeapModule", package: "swift-collections"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strict
        ),
        // `archon dev` and the scenarios: a whole fleet in one process, and nats-server as a child.
        .target(
            name: "ArchonDev",
            dependencies: [
                "ArchonModel", "ArchonCore", "ArchonWire", "ArchonNATS", "ArchonAgent", "ArchonController",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "archon",
            dependencies: [
                "ArchonModel", "ArchonWire", "ArchonNATS", "ArchonCore", "ArchonAgent", "ArchonController", "ArchonDev",
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),

        // Fuzz targets for the wire decoders and the trainer-line parser: replays its corpus in a normal build, runs
        // under libFuzzer in `make fuzz` (Fuzz/ArchonFuzz.swift).
        .executableTarget(
            name: "archon-fuzz",
            dependencies: ["ArchonModel", "ArchonWire", "ArchonCore", "ArchonAgent"],
            path: "Fuzz", exclude: ["corpus"],
            swiftSettings: strict
        ),

        // Test support: a real nats-server on a free loopback port.
        .target(name: "ArchonTestSupport", dependencies: ["ArchonNATS", "ArchonDev", .product(name: "Logging", package: "swift-log")], path: "Tests/ArchonTestSupport", swiftSettings: strict),
        .testTarget(name: "ArchonWireTests", dependencies: ["ArchonWire", "ArchonModel"], resources: [.copy("Golden")]),
        .testTarget(name: "ArchonNATSTests", dependencies: ["ArchonNATS", "ArchonTestSupport"]),
        .testTarget(
            name: "ArchonControllerTests",
            dependencies: [
                "ArchonController", "ArchonAgent", "ArchonCore", "ArchonModel", "ArchonNATS", "ArchonWire", "ArchonTestSupport", "ArchonDev",
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Hummingbird", package: "hummingbird"),
            ]
        ),
        .testTarget(name: "ArchonDevTests", dependencies: ["ArchonDev"]),
        .testTarget(
            name: "ArchonAgentTests", dependencies: ["ArchonAgent", "ArchonModel", "ArchonWire", "ArchonNATS", "ArchonTestSupport"],
            resources: [.copy("Recordings")]),
        .testTarget(
            name: "ArchonCoreTests",
            dependencies: ["ArchonCore", "ArchonModel", .product(name: "PropertyBased", package: "swift-property-based")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
