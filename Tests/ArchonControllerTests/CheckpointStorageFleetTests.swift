import ArchonController
import ArchonModel
import Foundation
import Testing

/// A folder both test agents mount as shared checkpoint storage (what a network filesystem is on a real fleet).
func sharedCheckpointStorage() throws -> CheckpointStorage {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("archon-shared-ckpt-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    return CheckpointStorage(root: root, shared: true)
}

/// Explicit checkpoint storage with a real controller, real agents on separate work directories and real trainers
/// (issue #10 part 1): a move resumes only from what the new node can read, and a checkpoint its node cannot find is
/// answered with the next one, never blamed on the dataset.
@Suite("Checkpoint storage against a real controller, agents and trainers", .serialized)
struct CheckpointStorageFleetTests {
    @Test func aJobDrainedOffANodeWithLocalStorageStartsOverOnTheOtherAndSaysWhy() async throws {
        let fleet = try await FleetHarness()
        let controller = try await fleet.startController()
        let api = HTTP(base: controller.api, token: adminToken.token)
        let cli = ArchonCLI(api: controller.api, token: adminToken.token)
        try await fleet.startAgent("n1")  // local storage: each agent's own work directory
        let n1 = try await waitFor("node n1") { try await api.call("GET", "/v1/nodes").json([NodeView].self).first { $0.id == "n1" } }
        #expect(n1.checkpointStorage?.shared == false && n1.checkpointStorage?.root.hasSuffix("/checkpoints") == true)
        #expect(try await api.call("POST", "/v1/training/jobs", body: NodeDrainTests.slowSaveSpec("local-1")).status == 201)
        _ = try await waitFor("two epochs on n1") { () -> JobView? in
            let job = try await api.call("GET", "/v1/training/jobs/local-1").json(JobView.self)
            return job.status == "running" && (job.lastMetrics?.epoch ?? 0) >= 2 ? job : nil
        }
        try await fleet.startAgent("n2")
        _ = try await waitFor("node n2") { try await api.call("GET", "/v1/nodes").json([NodeView].self).first { $0.id == "n2" && $0.status == "online" } }

        let run = try await cli.run(["node", "drain", "n1", "--timeout", "60", "--json"], timeout: .seconds(90))
        #expect(run.status == 0, "\(run.text) \(run.stderr)")
        let drain = try run.json(DrainView.self)
        let move = try #require(drain.jobs.first)
        #expect(move.checkpointSaved, "the trainer saved on SIGTERM, on n1's own disk")
        #expect(move.toNode == "n2" && move.resumeFrom.isEmpty, "n2 cannot read n1's disk: from scratch")

        let done = try await waitFor("local-1 completed", timeout: .seconds(60)) { () -> JobView? in
            let job = try await api.call("GET", "/v1/training/jobs/local-1").json(JobView.self)
            return job.status == "completed" || job.status == "failed" ? job : nil
        }
        #expect(done.status == "completed", "\(done.statusDetail)")
        let second = try #require(done.history.last)
        #expect(second.node == "n2" && second.resumeFrom.isEmpty)
        #expect(second.resumeChoice.hasPrefix("start from scratch: no kept checkpoint of the current line is readable where it can run"), "\(second.resumeChoice)")
        #expect(second.resumeChoice.contains("is on n1's local storage and n1 is out of service (drained by"), "\(second.resumeChoice)")
        let saved = try #require(done.checkpoints.first { $0.nodeID == "n1" })
        #expect(saved.storage?.shared == false && saved.attempt == 1 && saved.path.contains("/checkpoints/local-1/attempt-1/"))
        let logs = try await cli.json(["job", "logs", "local-1", "--tail", "200"], as: [String: [String]].self)
        #expect(logs["lines"]?.contains { $0.contains("continuing at epoch") } == false, "attempt 2 began at epoch 1: \(logs)")
        await controller.stop()
    }

    @Test func aCheckpointChangedOnDiskIsReportedUnavailableAndTheJobGoesOnFromTheOneBefore() async throws {
        // Restarts wait 3 s: time to change the newest checkpoint after the crash, as a failing disk would.
        let fleet = try await FleetHarness(policy: #"{"remediation": {"backoff": {"initial": "3s", "max": "3s"}, "stopGrace": "10s"}}"#)
        let controller = try await fleet.startController()
        let api = HTTP(base: controller.api, token: adminToken.token)
        let shared = try sharedCheckpointStorage()
        try await fleet.startAgent("n1", checkpointStorage: shared)
        _ = try await waitFor("node n1") { try await api.call("GET", "/v1/nodes").json([NodeView].self).first { $0.id == "n1" } }
        let spec = faultSpec("gone-1", fault: "crash_once", epochs: 5, hyper: ["crashAfterEpochs": "3", "crashHow": "exit", "epochSeconds": "0.2"])
        #expect(try await api.call("POST", "/v1/training/jobs", body: spec).status == 201)
        let crashed = try await waitFor("attempt 1 crashed") { () -> JobView? in
            let job = try await api.call("GET", "/v1/training/jobs/gone-1").json(JobView.self)
            return job.history.first.map { $0.endedAt > 0 } == true ? job : nil
        }
        let newest = try #require(crashed.checkpoints.last)
        #expect(newest.epoch == 3 && newest.storage == shared && newest.path.hasPrefix("\(shared.root)/gone-1/attempt-1/"))
        try Data("not the checkpoint any more".utf8).write(to: URL(fileURLWithPath: newest.path))

        let done = try await waitFor("gone-1 completed", timeout: .seconds(60)) { () -> JobView? in
            let job = try await api.call("GET", "/v1/training/jobs/gone-1").json(JobView.self)
            return job.status == "completed" || job.status == "failed" ? job : nil
        }
        #expect(done.status == "completed", "\(done.statusDetail)")
        #expect(done.history.map(\.failureClass) == ["crash", "checkpoint_unavailable", "none"], "\(done.history.map(\.failureClass))")
        let refused = done.history[1]
        #expect(refused.resumeFrom == newest.path && refused.startedAt == 0, "the agent never started a trainer on it")
        #expect(refused.outcome.contains("has SHA-256") && refused.outcome.contains("not the \(newest.sha256) it was written with"), "\(refused.outcome)")
        let third = done.history[2]
        let before = try #require(crashed.checkpoints.first { $0.epoch == 2 })
        #expect(third.resumeFrom == before.path, "the one before: \(third.resumeFrom)")
        #expect(third.resumeChoice.contains("epoch 3 step") && third.resumeChoice.contains("was unavailable on n1"), "\(third.resumeChoice)")
        #expect(!done.checkpoints.contains { $0.path == newest.path && $0.sha256 == newest.sha256 }, "never resumed from again")
        let dataset = try await api.call("GET", "/v1/datasets/digits").json(DatasetView.self)
        #expect(!dataset.retriesPaused, "a checkpoint is not the dataset")
        await controller.stop()
    }
}
