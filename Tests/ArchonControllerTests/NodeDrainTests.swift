import ArchonController
import ArchonModel
import Foundation
import Testing

/// `archon node drain` with real agents and a real trainer (issue #10 part 4): the job saves a checkpoint during its
/// stop grace, moves to the other node and resumes from that checkpoint's epoch.
@Suite("archon node drain against a real controller, two agents and a trainer", .serialized)
struct NodeDrainTests {
    /// A trainer that saves only on SIGTERM (no periodic checkpoints), taking a second and a half to do it: longer than
    /// the harness agents' 1 s `--grace-period`, so a saved checkpoint shows the agent used the drain's 10 s grace.
    static func slowSaveSpec(_ id: String) -> String {
        """
        {"id": "\(id)", "name": "drain me", "team": "ml", "command": ["python3", "\(faultTrainer)"],
         "config": {"batchSize": 32, "epochs": 6, "learningRate": 0.01, "dataset": "digits",
                    "resources": {"memoryBytes": 268435456, "cpuCores": 0.5},
                    "checkpoint": {"everyEpochs": 0, "keepLast": 3},
                    "hyperparameters": {"fault": "slow_save", "epochSeconds": "1", "saveSeconds": "1.5", "heartbeatEvery": "0.5"}},
         "labels": {"kind": "drain"}}
        """
    }

    /// Both nodes mount one folder (a network filesystem on a real fleet): what n1 saved, n2 reads.
    @Test func drainingANodeMovesItsJobAfterItSavedACheckpointAndItResumesThere() async throws {
        let fleet = try await FleetHarness()
        let controller = try await fleet.startController()
        let api = HTTP(base: controller.api, token: adminToken.token)
        let cli = ArchonCLI(api: controller.api, token: adminToken.token)
        let shared = try sharedCheckpointStorage()
        try await fleet.startAgent("n1", checkpointStorage: shared)
        _ = try await waitFor("node n1") { try await api.call("GET", "/v1/nodes").json([NodeView].self).first { $0.id == "n1" } }
        #expect(try await api.call("POST", "/v1/training/jobs", body: Self.slowSaveSpec("drain-1")).status == 201)
        // Two epochs done on n1, none checkpointed; then n2 joins.
        let running = try await waitFor("two epochs on n1") { () -> JobView? in
            let job = try await api.call("GET", "/v1/training/jobs/drain-1").json(JobView.self)
            return job.status == "running" && (job.lastMetrics?.epoch ?? 0) >= 2 ? job : nil
        }
        #expect(running.node == "n1")
        try await fleet.startAgent("n2", checkpointStorage: shared)
        _ = try await waitFor("node n2") { try await api.call("GET", "/v1/nodes").json([NodeView].self).first { $0.id == "n2" && $0.status == "online" } }

        let drain = try await cli.run(["node", "drain", "n1", "--reason", "kernel upgrade", "--timeout", "60", "--json"], timeout: .seconds(90))
        #expect(drain.status == 0, "\(drain.text) \(drain.stderr)")
        let view = try drain.json(DrainView.self)
        #expect(view.done && view.cordoned && view.node == "n1" && view.reason == "kernel upgrade")
        let move = try #require(view.jobs.first, "\(drain.text)")
        #expect(view.jobs.count == 1 && move.job == "drain-1" && move.state == "moved")
        #expect(move.fromNode == "n1" && move.fromAttempt == 1 && move.graceSeconds == 10)
        #expect(move.checkpointSaved && move.exited, "\(drain.text)")
        let savedEpoch = try #require(move.checkpointEpoch)
        #expect(savedEpoch >= 2)
        #expect(move.toNode == "n2" && move.toAttempt == 2)
        #expect(!move.checkpoint.isEmpty && move.resumeFrom == move.checkpoint, "the move resumes from the checkpoint saved during the drain")

        let done = try await waitFor("drain-1 completed", timeout: .seconds(60)) { () -> JobView? in
            let job = try await api.call("GET", "/v1/training/jobs/drain-1").json(JobView.self)
            return job.status == "completed" || job.status == "failed" ? job : nil
        }
        #expect(done.status == "completed", "\(done.statusDetail)")
        #expect(done.node == "n2" && done.attempt == 2)
        #expect(done.history.map(\.node) == ["n1", "n2"])
        #expect(done.history.last?.resumeFrom == move.checkpoint)
        // Not from scratch: attempt 2 went on at the epoch after the one saved during the drain.
        let logs = try await cli.json(["job", "logs", "drain-1", "--tail", "100"], as: [String: [String]].self)
        #expect(logs["lines"]?.contains { $0.contains("continuing at epoch \(savedEpoch + 1)") } == true, "\(logs)")
        #expect(done.lastMetrics?.epoch == 6)
        #expect(try await api.call("GET", "/v1/nodes").json([NodeView].self).first { $0.id == "n1" }?.cordoned == true)
        await controller.stop()
    }

    @Test func drainingNeedsTheAdminScopeAndAKnownNode() async throws {
        let fleet = try await FleetHarness()
        let controller = try await fleet.startController()
        let api = HTTP(base: controller.api, token: adminToken.token)
        _ = try await fleet.announcedNode("n1", api: api)
        #expect(try await api.call("GET", "/v1/nodes/n1/drain").status == 404, "never drained")
        let refused = try await ArchonCLI(api: controller.api, token: operatorToken.token).run(["node", "drain", "n1", "--json"])
        #expect(refused.status != 0 && refused.stderr.contains("403"), "\(refused.stderr)")
        let unknown = try await ArchonCLI(api: controller.api, token: adminToken.token).run(["node", "drain", "n9", "--json"])
        #expect(unknown.status != 0 && unknown.stderr.contains("n9"), "\(unknown.stderr)")
        // A node with no jobs is drained at once.
        let empty = try await ArchonCLI(api: controller.api, token: adminToken.token).json(["node", "drain", "n1"], as: DrainView.self)
        #expect(empty.done && empty.cordoned && empty.jobs.isEmpty)
        await controller.stop()
    }
}
