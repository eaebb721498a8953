import ArchonAgent
import ArchonModel
import ArchonTestSupport
import Foundation
import Testing

/// Where a real agent writes checkpoints, and how it checks the one an assignment resumes from before any trainer
/// starts (issue #10 part 1).
@Suite("Agent checkpoint storage with real trainers", .serialized)
struct AgentCheckpointStorageTests {
    @Test func theResumeCheckpointIsVerifiedBeforeTheTrainerStarts() async throws {
        let h = try await AgentHarness()
        try await h.startAgent()
        let spec = faultJob("vr", fault: "crash_once", epochs: 4, hyper: ["crashAfterEpochs": "2", "crashHow": "exit"])
        try await h.assign(spec)
        let first = try await h.events("vr") { $0.exit != nil }
        let written = first.compactMap { if case .checkpoint(let c) = $0.body { c } else { nil } }
        let newest = try #require(written.last)
        #expect(newest.storage == CheckpointStorage(root: "\(h.workDirectory)/checkpoints", shared: false), "a node's default storage: local")
        #expect(newest.path.hasPrefix("\(h.workDirectory)/checkpoints/vr/attempt-1/"), "\(newest.path)")

        // Each attempt that cannot have its checkpoint ends before a trainer starts: exit 66, checkpoint_unavailable.
        let cases: [(resume: String, sha: String, says: String)] = [
            (newest.path, String(repeating: "0", count: 64), "has SHA-256 \(newest.sha256), not the \(String(repeating: "0", count: 64)) it was written with"),
            (newest.path + ".gone", "", "does not exist on node n1"),
            ("/etc/passwd", "", "is outside the checkpoint storage node n1 reads"),
            ("\(h.workDirectory)/checkpoints/vr/../../jobs/vr/state.json", "", "is outside the checkpoint storage node n1 reads"),
        ]
        for (index, c) in cases.enumerated() {
            let attempt = index + 2
            try await h.assign(spec, attempt: attempt, resumeFrom: c.resume, resumeSHA256: c.sha)
            let events = try await h.events("vr") { $0.hasExit(attempt: attempt) }
            let exit = try #require(events.exits(attempt: attempt))
            #expect(exit.failureClass == .checkpointUnavailable && exit.exitCode == 66, "\(exit)")
            #expect(exit.detail.contains(c.says), "\(exit.detail)")
            #expect(events.started(attempt: attempt) == nil, "no trainer started")
        }

        // The right checksum: the trainer resumes after epoch 2 and completes.
        try await h.assign(spec, attempt: 6, resumeFrom: newest.path, resumeSHA256: newest.sha256)
        let events = try await h.events("vr") { $0.hasExit(attempt: 6) }
        #expect(events.started(attempt: 6)?.resumeFrom == newest.path)
        #expect(try #require(events.exits(attempt: 6)).completed)
        #expect(events.filter { $0.attempt == 6 }.epochs.first == newest.epoch + 1)
    }

    @Test func aJobsOwnSharedRootIsUsedOnlyWhereTheNodeAllowsIt() async throws {
        let shared = FileManager.default.temporaryDirectory.appendingPathComponent("archon-shared-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: "\(shared)/team", withIntermediateDirectories: true)
        let h = try await AgentHarness()
        try await h.startAgent(allowedCheckpointRoots: [shared])
        var spec = faultJob("own", fault: "none", epochs: 2)
        spec.config.checkpoint.sharedRoot = "\(shared)/team"
        try await h.assign(spec)
        let events = try await h.events("own") { $0.exit != nil }
        #expect(try #require(events.exit).completed)
        let written = try #require(events.compactMap { if case .checkpoint(let c) = $0.body { c } else { nil } }.last)
        #expect(written.storage == CheckpointStorage(root: "\(shared)/team", shared: true))
        #expect(written.path.hasPrefix("\(shared)/team/own/attempt-1/"), "\(written.path)")

        // A root the node does not allow: refused like any other rule, never a node fault.
        var elsewhere = faultJob("elsewhere", fault: "none", epochs: 1)
        elsewhere.config.checkpoint.sharedRoot = "/var/tmp/not-allowed"
        try await h.assign(elsewhere)
        let refused = try #require(try await h.events("elsewhere") { $0.exit != nil }.exit)
        #expect(refused.failureClass == .permissionDenied && refused.exitCode == 126)
        #expect(refused.detail.contains("config.checkpoint.sharedRoot: /var/tmp/not-allowed is not under this node's checkpoint root"), "\(refused.detail)")
    }

    @Test func sharedStorageThatIsNotMountedIsANodeFaultNotALocalFolder() async throws {
        let missing = FileManager.default.temporaryDirectory.appendingPathComponent("archon-unmounted-\(UUID().uuidString)").path
        let h = try await AgentHarness()
        try await h.startAgent(checkpointStorage: CheckpointStorage(root: missing, shared: true))
        try await h.assign(faultJob("nfs", fault: "none", epochs: 1))
        let exit = try #require(try await h.events("nfs") { $0.exit != nil }.exit)
        #expect(exit.failureClass == .nodeFault)
        #expect(exit.detail.contains("shared checkpoint root \(missing) is not a folder on this node (not mounted?)"), "\(exit.detail)")
        #expect(!FileManager.default.fileExists(atPath: missing), "never created in the mount's place")
    }
}
