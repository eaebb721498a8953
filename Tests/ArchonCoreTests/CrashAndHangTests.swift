import ArchonModel
import Testing

@testable import ArchonCore

@Suite struct CrashAndHangTests {
    @Test func crashesRestartWithTheSameConfigAndGrowingBackoffThenEscalate() throws {
        var fleet = Fleet()
        _ = fleet.submit(spec("job-1"))
        let original = fleet.job("job-1").config
        var delays: [Int64] = []
        for _ in 1...3 {
            _ = fleet.start("job-1")
            fleet.advance(minute)
            _ = fleet.exit("job-1", code: 139, detail: "Segmentation fault")
            let due = try #require(fleet.controller.scheduledTimers.first { $0.id == .restartDue(jobID: "job-1") })
            delays.append(due.atMs - fleet.now)
            fleet.moveClock(to: due.atMs)
            let actions = fleet.fire(.restartDue(jobID: "job-1"))
            #expect(try #require(assignments(actions).first).spec.config == original)
        }
        #expect(delays == [10 * second, 20 * second, 40 * second])
        _ = fleet.start("job-1")
        let actions = fleet.exit("job-1", code: 1)
        #expect(decisions(actions) == ["opened INC-1 L1 Training Failure Escalation - job-1", "stop job-1#4 on n1"])
        #expect(fleet.incident("INC-1").stepsTaken.map(\.action) == Array(repeating: "restart from the latest checkpoint with the same config", count: 3))
        #expect(fleet.job("job-1").history.map(\.outcome).first == "failed: crash mid-training — unexpected exit 139: Segmentation fault")
    }

    @Test func noProgressWithinTheHeartbeatWindowIsAHang() {
        var fleet = Fleet(policy: .noBackoff)
        _ = fleet.submit(spec("job-1"))
        _ = fleet.start("job-1")
        fleet.advance(minute)
        _ = fleet.epoch("job-1", 1, loss: 1.0)
        fleet.advance(5 * minute)
        _ = fleet.send("job-1", .heartbeat(Heartbeat(runningJobs: 1, secondsSinceProgress: 300)))
        #expect(decisions(fleet.tick()) == [])
        fleet.at(11 * minute)
        let actions = fleet.fire(.progressDeadline(jobID: "job-1", attempt: 1))
        #expect(decisions(actions) == ["stop job-1#1 on n1", "assign job-1#2 → n1"])
        #expect(firstReason(actions)?.symptom == "hang: metrics stopped")
    }

    /// Found by `make chaos`: an agent cut off from NATS while a server restarted queued its events in its spool; the
    /// controller saw the job silent past its window and restarted a trainer that was fine. A job whose node is
    /// silent too is the node's case (nodeSilence); once the node speaks and the job still does not, it is a hang.
    @Test func aJobWhoseNodeIsSilentTooIsNotCalledHung() {
        var fleet = Fleet(policy: .noBackoff)
        _ = fleet.submit(spec("job-1"))
        _ = fleet.start("job-1")
        fleet.advance(minute)
        _ = fleet.epoch("job-1", 1, loss: 1.0)
        fleet.silence("n1")
        fleet.at(11 * minute)
        #expect(decisions(fleet.fire(.progressDeadline(jobID: "job-1", attempt: 1))) == [])
        #expect(fleet.job("job-1").status == .running)

        // The node is heard again, saying the trainer has made no progress for ten minutes: now it is hung.
        let actions = fleet.send("job-1", .heartbeat(Heartbeat(runningJobs: 1, secondsSinceProgress: 600)))
        #expect(decisions(actions) == ["stop job-1#1 on n1", "assign job-1#2 → n1"])
    }

    /// Found by `make chaos` (seed 5 of a 20-seed run): the node's last heartbeat came 0.3 s after the job's last event,
    /// then its agent froze for 6 s; when the job's window ran out the node had "spoken after the job", and the job
    /// was restarted as hung while its trainer was fine. Hung needs the node heard for half a window without the job,
    /// and a node heard again after a long silence gives its jobs a fresh window.
    @Test func aJobWhoseNodeFellSilentJustAfterItIsNotCalledHung() {
        var fleet = Fleet(policy: .noBackoff)
        _ = fleet.submit(spec("job-1"))
        _ = fleet.start("job-1")
        fleet.advance(minute)
        _ = fleet.epoch("job-1", 1, loss: 1.0)
        fleet.advance(300)  // the node's heartbeat, just after the job's last event
        fleet.silence("n1")
        fleet.at(11 * minute + 1000)  // the job's window (10m) has run out while the node was silent
        #expect(decisions(fleet.fire(.progressDeadline(jobID: "job-1", attempt: 1))) == [])

        // The node is heard again before the job's queued events: the job's window starts over from then.
        fleet.live.append("n1")
        fleet.advance(second)
        #expect(fleet.controller.state.nodes["n1"]?.heardAgainAtMs == fleet.now)
        fleet.advance(6 * minute)
        #expect(decisions(fleet.fire(.progressDeadline(jobID: "job-1", attempt: 1))) == [])
        #expect(fleet.job("job-1").status == .running)

        // A whole window after its node came back, the node speaking and the job silent: now it is hung.
        fleet.advance(5 * minute)
        #expect(decisions(fleet.fire(.progressDeadline(jobID: "job-1", attempt: 1))) == ["stop job-1#1 on n1", "assign job-1#2 → n1"])
    }

    @Test func theAgentReportingNoProgressIsAHang() {
        var fleet = Fleet(policy: .noBackoff)
        _ = fleet.submit(spec("job-1"))
        _ = fleet.start("job-1")
        _ = fleet.send("job-1", .step(StepProgress(step: 1, epoch: 1, loss: 2.0)))
        let actions = fleet.send("job-1", .heartbeat(Heartbeat(runningJobs: 1, secondsSinceProgress: 600)))
        #expect(decisions(actions) == ["stop job-1#1 on n1", "assign job-1#2 → n1"])
    }

    @Test func jobsThatNeverReportAreNotCalledHung() {
        var fleet = Fleet(policy: .noBackoff)
        _ = fleet.submit(spec("job-1"))
        _ = fleet.start("job-1")
        fleet.at(90 * minute)
        _ = fleet.send("job-1", .heartbeat(Heartbeat(runningJobs: 1, secondsSinceProgress: 5400)))
        #expect(decisions(fleet.tick()) == [])
        #expect(fleet.job("job-1").status == .running)
    }

    @Test func exitZeroWithEpochsMissingIsACrash() {
        var fleet = Fleet(policy: .noBackoff)
        _ = fleet.submit(spec("job-1", epochs: 10))
        _ = fleet.start("job-1")
        _ = fleet.epoch("job-1", 1, loss: 2.0)
        _ = fleet.epoch("job-1", 2, loss: 1.5)
        let actions = fleet.complete("job-1")
        #expect(decisions(actions) == ["assign job-1#2 → n1"])
        #expect(fleet.job("job-1").history[0].outcome == "failed: crash mid-training — exited 0 after epoch 2 of 10")
    }

    @Test func aLostNodeHasItsJobsPlacedElsewhere() {
        var fleet = Fleet(policy: .noBackoff, nodes: ["n1", "n2"])
        _ = fleet.submit(spec("job-1"))
        _ = fleet.start("job-1")
        fleet.silence("n1")
        fleet.at(2 * minute)
        let actions = fleet.tick()
        #expect(decisions(actions) == ["stop job-1#1 on n1", "assign job-1#2 → n2"])
        #expect(fleet.controller.node("n1")?.health == .offline)
        #expect(fleet.job("job-1").history[0].symptom == .nodeFault)
    }
}
