import ArchonAPI
import Foundation
import Testing

/// The client swift-openapi-generator made from docs/openapi.yaml, against a real `archon dev` fleet (nats-server, a
/// controller, two agents): the document is usable, not only valid.
@Suite("Generated API client against archon dev", .serialized)
struct GeneratedClientTests {
    /// `archon dev` on free ports in a fresh folder; stopped at the end.
    final class DevFleet {
        let process = Process()
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("archon-client-\(UUID().uuidString)")
        var api = URL(string: "http://127.0.0.1")!
        var token = ""

        init() throws {
            let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../../..").standardized
            let binary = ProcessInfo.processInfo.environment["ARCHON_BIN"] ?? root.appendingPathComponent(".build/debug/archon").path
            guard FileManager.default.isExecutableFile(atPath: binary) else {
                throw Failure("no archon binary at \(binary): run `swift build` in \(root.path) or set ARCHON_BIN")
            }
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            process.executableURL = URL(fileURLWithPath: binary)
            process.currentDirectoryURL = root
            process.arguments = ["dev", "--data-dir", folder.path, "--nats-port", "0", "--api-port", "0",
                                 "--trainers", root.appendingPathComponent("examples/trainers").path]
            process.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
            process.standardError = FileHandle(forWritingAtPath: "/dev/null")
            try process.run()
        }

        /// Waits for `<data-dir>/env`, which `archon dev` writes once its API answers.
        func ready() async throws {
            for _ in 0..<300 {
                if let env = try? String(contentsOf: folder.appendingPathComponent("env"), encoding: .utf8) {
                    for line in env.split(separator: "\n") {
                        if line.hasPrefix("export ARCHON_API=") { api = URL(string: String(line.dropFirst("export ARCHON_API=".count)))! }
                        if line.hasPrefix("export ARCHON_TOKEN=") { token = String(line.dropFirst("export ARCHON_TOKEN=".count)) }
                    }
                    if !token.isEmpty { return }
                }
                try await Task.sleep(for: .milliseconds(100))
            }
            throw Failure("archon dev did not start within 30 s")
        }

        deinit {
            process.terminate()
            process.waitUntilExit()
            try? FileManager.default.removeItem(at: folder)
        }
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    @Test func submitReadAndRefuseThroughTheGeneratedClient() async throws {
        let fleet = try DevFleet()
        try await fleet.ready()
        let client = Client.archon(url: fleet.api, token: fleet.token)

        // The controller leads and both agents report (archon dev writes its env file before that).
        var nodes: [Components.Schemas.Node] = []
        for _ in 0..<300 {
            let role = try? await client.ready().ok.body.json.role
            nodes = (try? await client.listNodes().ok.body.json) ?? []
            if role == .leader, Set(nodes.compactMap(\.id)).isSuperset(of: ["n1", "n2"]) { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(Set(nodes.compactMap(\.id)).isSuperset(of: ["n1", "n2"]), "\(nodes.map(\.id))")

        // Submit, then read what was created by the id the answer carries (the document's link).
        let trainer = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../../../examples/trainers/fault_trainer.py")
            .standardized.path
        let spec = Components.Schemas.JobSpec(
            id: "client-1", team: "ml", command: ["python3", trainer],
            config: .init(batchSize: 32, learningRate: 0.01, epochs: 2, dataset: "digits"))
        let created = try await client.submitJob(body: .json(spec)).created.body.json
        #expect(created.id == "client-1" && created.config?.batchSize == 32)
        let read = try await client.getJob(path: .init(id: try #require(created.id))).ok.body.json
        #expect(read.id == "client-1")

        // The codes the document declares: a second submission conflicts, a malformed spec is unprocessable,
        // an unknown job is not found.
        if case .conflict(let conflict) = try await client.submitJob(body: .json(spec)) {
            #expect(try conflict.body.json.error?.contains("exists") == true)
        } else {
            Issue.record("a second client-1 should conflict")
        }
        var malformed = spec
        malformed.id = "client-2"
        malformed.config?.batchSize = 0
        if case .unprocessableContent(let refused) = try await client.submitJob(body: .json(malformed)) {
            #expect(try refused.body.json.details?.contains { $0.hasPrefix("config.batchSize") } == true)
        } else {
            Issue.record("batchSize 0 should be unprocessable")
        }
        if case .notFound = try await client.getJob(path: .init(id: "no-such-job")) {} else { Issue.record("an unknown job should be 404") }

        _ = try await client.stopJob(path: .init(id: "client-1")).ok.body.json
    }
}
