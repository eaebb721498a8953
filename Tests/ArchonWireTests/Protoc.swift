import Foundation

/// Runs the `protoc` binary (protobuf-compiler) against the schema in `proto/`: the independent
/// implementation our bytes are checked against.
enum Protoc {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// Repository root, found from this file's path.
    static let repositoryRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static var protoDirectory: URL { repositoryRoot.appendingPathComponent("proto") }

    static func executable() throws -> URL {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = URL(fileURLWithPath: String(directory)).appendingPathComponent("protoc")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        throw Failure(description: "protoc not found on PATH; install it (Debian: apt-get install protobuf-compiler)")
    }

    /// `protoc --decode=<message>`: the text format of `bytes`.
    static func decode(_ bytes: [UInt8], as message: String) throws -> String {
        String(decoding: try run(["--decode=\(message)"], input: Data(bytes)), as: UTF8.self)
    }

    /// `protoc --encode=<message>`: the bytes of a text-format message.
    static func encode(_ text: String, as message: String) throws -> [UInt8] {
        [UInt8](try run(["--encode=\(message)"], input: Data(text.utf8)))
    }

    private static func run(_ arguments: [String], input: Data) throws -> Data {
        let schemaFiles = try FileManager.default
            .contentsOfDirectory(atPath: protoDirectory.appendingPathComponent("archon/v1").path)
            .filter { $0.hasSuffix(".proto") }
            .sorted()
            .map { "archon/v1/\($0)" }
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("archon-wire-protoc-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        // Files rather than pipes: nothing can deadlock on a full pipe buffer.
        let inputURL = scratch.appendingPathComponent("in")
        let outputURL = scratch.appendingPathComponent("out")
        let errorURL = scratch.appendingPathComponent("err")
        try input.write(to: inputURL)
        _ = FileManager.default.createFile(atPath: outputURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errorURL.path, contents: nil)

        let process = Process()
        process.executableURL = try executable()
        process.currentDirectoryURL = protoDirectory
        process.arguments = arguments + ["-I", protoDirectory.path] + schemaFiles
        let inputHandle = try FileHandle(forReadingFrom: inputURL)
        let outputHandle = try FileHandle(forWritingTo: outputURL)
        let errorHandle = try FileHandle(forWritingTo: errorURL)
        defer {
            try? inputHandle.close()
            try? outputHandle.close()
            try? errorHandle.close()
        }
        process.standardInput = inputHandle
        process.standardOutput = outputHandle
        process.standardError = errorHandle
        try process.run()
        process.waitUntilExit()
        let output = try Data(contentsOf: outputURL)
        guard process.terminationStatus == 0 else {
            let stderr = String(decoding: try Data(contentsOf: errorURL), as: UTF8.self)
            throw Failure(description: "protoc \(arguments.joined(separator: " ")) exited \(process.terminationStatus): \(stderr)")
        }
        return output
    }
}
