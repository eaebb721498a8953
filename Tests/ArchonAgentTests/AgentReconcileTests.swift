import ArchonAgent
import ArchonModel
import ArchonNATS
import Foundation
import Testing

@Suite("Agent reconciles to the desired state", .serialized)
struct AgentReconcileTests {
    @Test func desiredStateChangesStartStopAndRestartProcesses() async throws {
        let h = try await AgentHarness()
        try await h.startAgent(gracePeriod: .milliseconds(500))
        let spec = faultJob("r", fault: "slow", epochs: 50, hyper: ["epochSeconds": "1"])
        try await h.assign(spec, attempt: 1)
        _ = try await h.events("r") { $0.epochs.count >= 1 }

        // A newer attempt replaces the running one.
        try await h.assign(spec, attempt: 2)
        var events = try await h.events("r") { $0.started(attempt: 2) != nil }
        let first = try #require(events.exits(attempt: 1))
        #expect(first.stopRequested)
        #expect(first.failureClass == .none)
        #expect(await h.agent!.runningJobs == ["r": 2])

        // Stopped: the process goes away, nothing new starts.
        try await h.assign(spec, attempt: 2, state: .stopped)
        events = try await h.events("r") { $0.hasExit(attempt: 2) }
        #expect(try #require(events.exits(attempt: 2)).stopRequested)
        #expect(await h.agent!.runningJobs.isEmpty)
    }

    /// A fresh node with fencing on, whose job was assigned before its agent started, and whose events JetStream does
    /// not acknowledge yet (here: no stream takes them). The trainer starts from the first read of the desired state;
    /// that read is contact with NATS, so the lease holds and the shim lets the trainer run (when only publish
    /// acknowledgements renewed the lease, it found none and fenced the trainer at once).
    @Test func aJobStartedBeforeAnyAcknowledgementIsNotFencedAtOnce() async throws {
        let h = try await AgentHarness()
        try await h.js.createOrUpdateStream(StreamConfig(name: Fleet.eventsStream, subjects: ["archon.v1.nowhere.>"]))
        try await h.assign(faultJob("early", fault: "none", epochs: 2))
        try await h.startAgent(fenceAfter: .seconds(60))
        let status = "\(h.workDirectory)/jobs/early/attempt-1/exit-status"
        var text = ""
        let deadline = ContinuousClock.now + .seconds(30)
        while text.isEmpty, ContinuousClock.now < deadline {
            text = (try? String(contentsOfFile: status, encoding: .utf8)) ?? ""
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(!text.contains("fenced") && text.contains("exited"), "exit-status: \(text)")
    }

    @Test func assignmentsFromAnOlderLeaseAreIgnored() async throws {
        let h = try await AgentHarness()
        try await h.startAgent()
        try await h.assign(faultJob("a", fault: "none", epochs: 1), epoch: 5)
        _ = try await h.events("a") { $0.exit != nil }
        // A deposed controller (epoch 4) writes late: the agent must not act on it.
        try await h.assign(faultJob("b", fault: "none", epochs: 1), epoch: 4)
        try await Task.sleep(for: .seconds(1))
        #expect(try await h.events("b", timeout: .milliseconds(500)) { !$0.isEmpty }.isEmpty)
    }

    /// Away 1.5 s: the job still runs when the agent returns (adopted). Away 6 s: it ended meanwhile, and
    /// its last lines wait in the FIFO, held open by the shim, until the new agent reads them.
    @Test(arguments: [1500, 6000])
    func anAgentRestartNeitherDuplicatesNorLosesAJob(awayMilliseconds: Int) async throws {
        let h = try await AgentHarness()
        try await h.startAgent()
        try await h.assign(faultJob("long", fault: "slow", epochs: 4, hyper: ["epochSeconds": "1"]))
        _ = try await h.events("long") { $0.epochs.count >= 1 }

        await h.stopAgent()  // the process keeps running without its agent
        try await Task.sleep(for: .milliseconds(awayMilliseconds))
        try await h.startAgent()

        let events = try await h.events("long") { $0.exit != nil }
        let exit = try #require(events.exit)
        #expect(exit.completed, "\(exit.detail)")
        #expect(events.filter { if case .started = $0.body { true } else { false } }.count == 1, "started once, adopted after")
        #expect(events.epochs == [1, 2, 3, 4], "epochs written while the agent was away are read after it returns")
        #expect(events.map(\.sequence) == Array(1...UInt64(events.count)))
    }

    @Test func eventsProducedWhileNATSIsDownArriveAfterItReturns() async throws {
        let h = try await AgentHarness()
        try await h.startAgent()
        try await h.assign(faultJob("offline", fault: "slow", epochs: 4, hyper: ["epochSeconds": "1"]))
        _ = try await h.events("offline") { $0.epochs.count >= 1 }

        h.server.stop()
        try await Task.sleep(for: .seconds(3))  // epochs 2-3 happen while the server is down
        #expect(await h.agent!.pendingEvents > 0, "events are spooled on disk while NATS is unreachable")
        try h.server.start()

        let events = try await h.events("offline", timeout: .seconds(40)) { $0.exit != nil }
        #expect(try #require(events.exit).completed)
        #expect(events.epochs == [1, 2, 3, 4])
        #expect(events.map(\.sequence) == Array(1...UInt64(events.count)), "none missing, none duplicated, in order")
    }

    @Test func checkpointRetentionKeepsTheLastThreeAndResumeUsesTheNewestValid() async throws {
        let h = try await AgentHarness()
        try await h.startAgent()
        // Attempt 1 checkpoints epochs 1-5, keeps 3, then crashes.
        let spec = faultJob("ck", fault: "crash_once", epochs: 8, hyper: ["crashAfterEpochs": "5", "crashHow": "exit"])
        try await h.assign(spec)
        _ = try await h.events("ck") { $0.exit != nil }
        let dir = "\(h.workDirectory)/checkpoints/ck/attempt-1"
        let files = try FileManager.default.contentsOfDirectory(atPath: dir).filter { !$0.hasPrefix(".") }.sorted()
        #expect(files.count == 3, "\(files)")

        // Corrupt the newest: the next attempt must skip it and resume from the one before.
        let newest = "\(dir)/\(files.last!)"
        try Data("garbage".utf8).write(to: URL(fileURLWithPath: newest))
        try await h.assign(spec, attempt: 2)
        let events = try await h.events("ck") { $0.hasExit(attempt: 2) }
        let started = try #require(events.started(attempt: 2))
        #expect(started.resumeFrom == "\(dir)/\(files[1])")
        #expect(try #require(events.exits(attempt: 2)).completed)
        let epochs2 = events.filter { $0.attempt == 2 }.epochs
        #expect(epochs2.first == 5, "resumed after epoch 4's checkpoint: \(epochs2)")
        // Retention spans attempts: three files remain in all of the job's attempt folders.
        let root = "\(h.workDirectory)/checkpoints/ck"
        let remaining = try FileManager.default.contentsOfDirectory(atPath: root).flatMap { attempt in
            ((try? FileManager.default.contentsOfDirectory(atPath: "\(root)/\(attempt)")) ?? []).filter { !$0.hasPrefix(".") }
        }
        #expect(remaining.count == 3, "\(remaining)")
    }
}
