@testable import ArchonAgent
import ArchonModel
import ArchonNATS
import Foundation
import Testing

/// The agent against a real nats-server and real training processes.
@Suite("Agent supervises real processes", .serialized)
struct AgentSupervisionTests {
    @Test func aJobRunsToCompletionWithItsEpochsInOrder() async throws {
        let h = try await AgentHarness()
        try await h.startAgent()
        try await h.assign(faultJob("ok", fault: "none", epochs: 3))
        let events = try await h.events("ok") { $0.exit != nil }

        let exit = try #require(events.exit)
        #expect(exit.completed, "\(exit.detail)")
        #expect(exit.epochsCompleted == 3)
        #expect(events.epochs == [1, 2, 3])
        #expect(events.map(\.sequence) == Array(1...UInt64(events.count)), "gap-free per-attempt sequence")
        #expect(events.allSatisfy { $0.attempt == 1 && $0.nodeID == "n1" })
        guard case .accepted = events.first?.body, case .started(let started) = events[1].body else {
            Issue.record("expected accepted, then started; got \(events.prefix(2).map(\.body))")
            return
        }
        #expect(started.pid > 0)
        #expect(events.checkpoints.map(\.epoch) == [1, 2, 3])
        #expect(events.checkpoints.allSatisfy { $0.sha256.count == 64 && $0.sizeBytes > 0 })
    }

    @Test func aProcessOverItsMemoryLimitIsKilledAndReportedAsOOM() async throws {
        let h = try await AgentHarness()
        try await h.startAgent()
        let enforcement = await h.agent!.enforcement
        // 400 MiB touched under a 128 MiB limit.
        try await h.assign(faultJob("oom", fault: "memory", hyper: ["allocMB": "400"], memoryBytes: 128 << 20))
        let events = try await h.events("oom") { $0.exit != nil }
        let exit = try #require(events.exit)
        guard enforcement.memory != .none else {
            print("SKIP OOM assertion: no memory enforcement on this machine (\(enforcement.note))")
            return
        }
        #expect(exit.failureClass == .outOfMemory, "\(exit.detail) via \(enforcement.memory)")
        if enforcement.memory == .cgroupV1 || enforcement.memory == .cgroupV2 {
            #expect(exit.oomKilled)
            #expect(exit.signal == 9)
        }
    }

    @Test func aHungProcessIsKilledWhenItsHeartbeatWindowPasses() async throws {
        let h = try await AgentHarness()
        try await h.startAgent(gracePeriod: .milliseconds(500))
        try await h.assign(faultJob("hang", fault: "hang", timeouts: Timeouts(heartbeatSeconds: 2)))
        let events = try await h.events("hang") { $0.exit != nil }
        let exit = try #require(events.exit)
        #expect(exit.failureClass == .hang, "\(exit.detail)")
        #expect(events.epochs == [1], "it reported one epoch before going silent")
        #expect(!exit.completed)
    }

    /// Chaos seed 5: an agent stopped (SIGSTOP) past its jobs' heartbeat window woke up and, before reading the lines
    /// waiting in the FIFOs, killed a healthy trainer as hung. Time the agent did not watch is not counted.
    @Test func anAgentThatStoodStillDoesNotCallItsTrainersHung() async throws {
        let h = try await AgentHarness()
        try await h.startAgent(gracePeriod: .milliseconds(500))
        try await h.assign(faultJob("steady", fault: "slow", epochs: 2, hyper: ["epochSeconds": "1.5", "heartbeatEvery": "0.3"],
                                    timeouts: Timeouts(heartbeatSeconds: 2)))
        _ = try await h.events("steady") { $0.contains { if case .heartbeat = $0.body { true } else { false } } }
        // The next tick comes 6 s late, as after a SIGSTOP: three heartbeat windows without a line read.
        await h.agent!.tick(nowMs: UnixTime.nowMillis() + 6_000)
        let exit = try #require(try await h.events("steady") { $0.exit != nil }.exit)
        #expect(exit.completed, "\(exit.detail)")
    }

    @Test func anEpochOverItsTimeLimitIsATimeout() async throws {
        let h = try await AgentHarness()
        try await h.startAgent(gracePeriod: .milliseconds(500))
        // Each epoch takes 6 s (with heartbeats, so it is not a hang); the limit is 2 s.
        try await h.assign(faultJob("slow", fault: "slow", hyper: ["epochSeconds": "6", "heartbeatEvery": "0.5"],
                                    timeouts: Timeouts(perEpochSeconds: 2)))
        let events = try await h.events("slow") { $0.exit != nil }
        let exit = try #require(events.exit)
        #expect(exit.failureClass == .timeout, "\(exit.detail)")
        #expect(exit.detail.contains("epoch"))
    }

    /// Before: every job got the policy's epoch limit counted from its start, so a script that reports no epochs
    /// was killed as a timeout after 15 minutes. Now the limit applies once a trainer reports epochs.
    @Test func aJobThatReportsNoEpochsIsNotBoundByTheEpochLimit() async throws {
        let h = try await AgentHarness()
        try await h.startAgent(gracePeriod: .milliseconds(500), rules: ExecutionRules(entrypoints: ["/bin/sh"]))
        try await h.assign(JobSpec(id: "quiet", command: ["/bin/sh", "-c", "sleep 2.5"],
                                   config: TrainingConfig(timeouts: Timeouts(perEpochSeconds: 1))))
        let exit = try #require(try await h.events("quiet") { $0.exit != nil }.exit)
        #expect(exit.completed && exit.failureClass == FailureClass.none, "\(exit.detail)")
    }

    @Test(arguments: [
        ("missing_dataset", FailureClass.datasetNotFound),
        ("permission", FailureClass.permissionDenied),
        ("corrupt", FailureClass.dataCorruption),
        ("nan", FailureClass.divergingLoss),
        ("crash", FailureClass.crash),
    ])
    func failuresOfRealProcessesAreClassified(fault: String, expected: FailureClass) async throws {
        let h = try await AgentHarness()
        try await h.startAgent()
        let id = "f-\(fault.replacingOccurrences(of: "_", with: "-"))"
        try await h.assign(faultJob(id, fault: fault, epochs: 3))
        let events = try await h.events(id) { $0.exit != nil }
        let exit = try #require(events.exit)
        #expect(exit.failureClass == expected, "\(fault): \(exit.detail)")
        #expect(!exit.logTail.isEmpty, "the exit carries the output's tail")
    }

    @Test func logsAreServedOnRequest() async throws {
        let h = try await AgentHarness()
        try await h.startAgent()
        try await h.assign(faultJob("logs", fault: "none", epochs: 2))
        _ = try await h.events("logs") { $0.exit != nil }
        let reply = try await h.connection.request(Fleet.logsSubject(node: "n1"), LogRequest(jobID: "logs", tail: 5).encoded())
        let logs = try LogReply.decode(reply.payload)
        #expect(logs.error.isEmpty)
        #expect(logs.lines.count == 5)
        let whole = try LogReply.decode(try await h.connection.request(Fleet.logsSubject(node: "n1"),
                                                                       LogRequest(jobID: "logs", tail: 1000).encoded()).payload)
        #expect(whole.lines.contains { $0.contains("fault_trainer job=logs attempt=1") })
        let unknown = try LogReply.decode(try await h.connection.request(Fleet.logsSubject(node: "n1"),
                                                                         LogRequest(jobID: "nope").encoded()).payload)
        #expect(unknown.error.contains("never run"))
    }
}
