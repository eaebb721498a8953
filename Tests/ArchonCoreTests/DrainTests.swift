import ArchonModel
import Testing

@testable import ArchonCore

/// Stopping with a checkpoint (issue #10 part 4): a drain, a move off a bad node and an operator stop give a
/// healthy attempt its stop grace to save a checkpoint; a move resumes from that checkpoint.
@Suite struct DrainTests {
    static let sha = String(repeating: "ab", count: 32)
    /// Every node mounts /ckpt: a job moved to another node can read what it saved during its grace.
    static let shared = CheckpointStorage(root: "/ckpt", shared: true)

    /// job-1 running on n1 with a checkpoint after epoch 2; n2 empty.
    func fleetWithJobOnN1(policy: Policy = .noBackoff, spec job: JobSpec = spec("job-1")) -> Fleet {
        var fleet = Fleet(policy: policy, nodes: ["n1"], checkpointStorage: Self.shared)
        _ = fleet.submit(job)
        _ = fleet.start(job.id)
        fleet.addNode("n2")
        for epoch in 1...2 {
            fleet.advance(minute)
            _ = fleet.epoch(job.id, epoch, loss: 1.0 / Double(epoch))
        }
        _ = fleet.checkpoint(job.id, epoch: 2)
        return fleet
    }

    @Test func drainingANodeMovesItsJobFromTheCheckpointSavedDuringTheGrace() throws {
        var fleet = fleetWithJobOnN1()
        let drained = try fleet.controller.nodeDrainRequested("n1", by: "sam", reason: "kernel upgrade", at: fleet.now)
        #expect(lines(drained) == [
            "cordon n1",
            "cancel progress-deadline/job-1/1", "cancel epoch-deadline/job-1/1", "cancel attempt-deadline/job-1/1",
            "stop job-1#1 on n1 grace 120s", "timer drain-deadline/job-1/1 @4m15s",
        ])
        let stop = try #require(drained.compactMap { if case .stopGracefully(let a, _) = $0 { a } else { nil } }.first)
        #expect(stop.desiredState == .stopped && stop.attempt == 1 && stop.stopGraceSeconds == 120)
        #expect(firstReason(drained)?.evidence == "node n1 drained by sam: kernel upgrade")
        #expect(fleet.controller.node("n1")?.cordoned == true)
        #expect(fleet.job("job-1").status == .queued)
        #expect(fleet.job("job-1").statusDetail == "draining off n1: attempt 1 has up to 2m to save a checkpoint and exit, then moves")
        #expect(fleet.controller.drainProgress("n1")?.jobs.map(\.state) == [.draining])

        // The trainer saves epoch 3 on SIGTERM and exits: only now is the job placed, from that checkpoint.
        fleet.advance(40 * second)
        #expect(decisions(fleet.checkpoint("job-1", epoch: 3)) == [])
        #expect(decisions(fleet.exit("job-1", code: 143)) == ["stop job-1#1 on n1", "assign job-1#2 → n2 resume /ckpt/job-1-3"])
        let progress = try #require(fleet.controller.drainProgress("n1"))
        let move = try #require(progress.jobs.first)
        #expect(move.state == .starting && move.checkpointSaved && move.checkpointEpoch == 3 && move.exited)
        #expect(move.toNode == "n2" && move.toAttempt == 2 && move.resumeFrom == "/ckpt/job-1-3")
        #expect(!progress.done)
        _ = fleet.start("job-1")
        #expect(fleet.controller.drainProgress("n1")?.jobs.map(\.state) == [.moved])
        #expect(fleet.controller.drainProgress("n1")?.done == true)
        #expect(fleet.job("job-1").history[0].outcome == "moved off n1: node n1 drained by sam: kernel upgrade")
        #expect(fleet.job("job-1").restarts == 0, "a drain is no remediation: it uses no restart budget")
    }

    @Test func anAttemptThatNeverExitsIsGivenUpOnAfterItsGraceAndAMargin() throws {
        var fleet = fleetWithJobOnN1()
        _ = try fleet.controller.nodeDrainRequested("n1", by: "sam", reason: "", at: fleet.now)
        fleet.advance(2 * minute)
        #expect(decisions(fleet.tick()) == [], "the agent's SIGKILL and the exit's trip get a margin")
        fleet.advance(15 * second)
        #expect(decisions(fleet.tick()) == ["stop job-1#1 on n1", "assign job-1#2 → n2 resume /ckpt/job-1-2"])
        let move = try #require(fleet.controller.drainProgress("n1")?.jobs.first)
        #expect(!move.checkpointSaved && !move.exited)
        // A late exit of the old attempt changes nothing.
        #expect(decisions(fleet.exit("job-1", code: -1, signal: 9, attempt: 1)) == [])
    }

    @Test func theJobsOwnStopGraceOverridesThePolicy() throws {
        var job = spec("job-1")
        job.config.checkpoint.stopGraceSeconds = 600
        var fleet = fleetWithJobOnN1(spec: job)
        #expect(decisions(try fleet.controller.nodeDrainRequested("n1", by: "sam", reason: "", at: fleet.now)) == [
            "cordon n1", "stop job-1#1 on n1 grace 600s",
        ])
        var policy = Policy.noBackoff
        policy.remediation.stopGrace = .seconds(5)
        var short = fleetWithJobOnN1(policy: policy)
        #expect(decisions(try short.controller.nodeDrainRequested("n1", by: "sam", reason: "", at: short.now)) == [
            "cordon n1", "stop job-1#1 on n1 grace 5s",
        ])
        policy.remediation.stopGrace = .seconds(0)
        #expect(policy.validate().map(\.path) == ["remediation.stopGrace"])
    }

    @Test func anAttemptNotYetAcceptedIsStoppedAndReplacedAtOnce() throws {
        var fleet = Fleet(policy: .noBackoff, nodes: ["n1"], checkpointStorage: Self.shared)
        _ = fleet.submit(spec("job-1"))
        fleet.addNode("n2")
        #expect(decisions(try fleet.controller.nodeDrainRequested("n1", by: "sam", reason: "", at: fleet.now)) == [
            "cordon n1", "stop job-1#1 on n1", "assign job-1#2 → n2",
        ])
        #expect(throws: OperatorError.self) { try fleet.controller.nodeDrainRequested("n9", by: "sam", reason: "", at: fleet.now) }
    }

    @Test func anOperatorStopGivesTheAttemptItsGraceAndRemovesTheKeyOnceItExited() throws {
        var fleet = fleetWithJobOnN1()
        let actions = try fleet.controller.jobStopRequested("job-1", by: "kim", at: fleet.now)
        #expect(decisions(actions) == ["stop job-1#1 on n1 grace 120s"])
        #expect(fleet.job("job-1").status == .stopped)
        #expect(fleet.job("job-1").statusDetail == "stopped by kim; attempt 1 has up to 2m to save a checkpoint and exit")
        // The key stays (the agent reads the grace from it) until the attempt has exited; nothing restarts it.
        #expect(fleet.controller.reconcileDesired([DesiredEntry(nodeID: "n1", jobID: "job-1", attempt: 1)]) == [])
        fleet.advance(10 * second)
        _ = fleet.checkpoint("job-1", epoch: 3)
        #expect(decisions(fleet.exit("job-1", code: 143)) == ["stop job-1#1 on n1"])
        #expect(fleet.job("job-1").status == .stopped)
        #expect(fleet.job("job-1").history[0].drain?.checkpoint?.epoch == 3)
        #expect(fleet.controller.reconcileDesired([DesiredEntry(nodeID: "n1", jobID: "job-1", attempt: 1)]).map { lines([$0]) } == [["stop job-1#1 on n1"]])
    }

    @Test func aBadNodeGivesItsHealthyJobsTheirGraceBeforeMovingThem() throws {
        var fleet = Fleet(policy: .noBackoff, nodes: ["n1"], checkpointStorage: Self.shared)
        for id in ["job-a", "job-b", "job-c", "job-h"] {
            _ = fleet.submit(spec(id))
            _ = fleet.start(id)
        }
        fleet.addNode("n2")
        _ = fleet.submit(spec("job-d"))
        _ = fleet.start("job-d")
        fleet.advance(minute)
        _ = fleet.epoch("job-d", 1, loss: 1.0)
        _ = fleet.epoch("job-h", 1, loss: 1.0)
        _ = fleet.checkpoint("job-h", epoch: 1)
        for id in ["job-a", "job-b"] {
            _ = fleet.exit(id, code: 139)
            _ = fleet.start(id)  // restarted on n1 and running again
        }
        let actions = fleet.exit("job-c", code: 139)
        #expect(decisions(actions).filter { $0.contains("job-h") } == ["stop job-h#1 on n1 grace 120s"])
        #expect(fleet.job("job-h").status == .queued && fleet.job("job-h").nodeID == "n1")
        fleet.advance(20 * second)
        _ = fleet.checkpoint("job-h", epoch: 2)
        #expect(decisions(fleet.exit("job-h", code: 143)) == ["stop job-h#1 on n1", "assign job-h#2 → n2 resume /ckpt/job-h-2"])
    }
}

extension Fleet {
    /// The attempt reported a verified checkpoint `/ckpt/<job>-<epoch>`.
    mutating func checkpoint(_ job: String, epoch: Int) -> [ControllerAction] {
        send(job, .checkpoint(CheckpointWritten(path: "/ckpt/\(job)-\(epoch)", epoch: epoch, step: epoch * 100, sizeBytes: 1024, sha256: DrainTests.sha, storage: DrainTests.shared)))
    }

    mutating func exit(_ job: String, code: Int32, signal: Int32 = 0, attempt: Int) -> [ControllerAction] {
        send(job, .exited(JobExited(exitCode: code, signal: signal)), attempt: attempt)
    }
}
