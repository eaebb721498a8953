import ArchonModel
import Testing

@testable import ArchonCore

/// Explicit checkpoint storage (issue #10 part 1): an attempt resumes only from a checkpoint readable on the node it
/// is placed on; a local one is worth a brief wait for its node; one its node cannot find or verify is dropped for the
/// next valid checkpoint or a fresh start, never blamed on the dataset.
@Suite struct CheckpointStorageTests {
    static let sha = String(repeating: "cd", count: 32)
    static let local = CheckpointStorage(root: "/var/lib/archon/checkpoints", shared: false)
    static let shared = CheckpointStorage(root: "/mnt/ckpt", shared: true)

    /// job-1 on n1 with `epochs` checkpoints written to `storage`.
    func jobOnN1(_ fleet: inout Fleet, spec job: JobSpec = spec("job-1"), epochs: Int = 2, storage: CheckpointStorage = Self.local) {
        _ = fleet.submit(job)
        _ = fleet.start(job.id)
        for epoch in 1...epochs {
            fleet.advance(minute)
            _ = fleet.epoch(job.id, epoch, loss: 1.0 / Double(epoch))
            _ = fleet.send(job.id, .checkpoint(CheckpointWritten(
                path: "\(storage.directory(job: job.id, attempt: 1))/e\(epoch)", epoch: epoch, step: epoch * 100, sizeBytes: 1024,
                sha256: Self.sha, storage: storage)))
        }
    }

    @Test func readabilityFollowsTheStorage() {
        let ckpt = CheckpointRecord(path: "/mnt/ckpt/j/attempt-1/e1", epoch: 1, sha256: Self.sha, nodeID: "n1", storage: Self.shared)
        var fleet = Fleet(nodes: ["n1", "n2"], checkpointStorage: Self.shared)
        fleet.checkpointStorage = CheckpointStorage(root: "/other", shared: true)
        fleet.addNode("n3")
        fleet.checkpointStorage = nil
        fleet.addNode("n4")
        let node = { (id: String) in fleet.controller.node(id)! }
        #expect(CheckpointPlanner.isReadable(ckpt, on: node("n1"), jobSharedRoot: ""))
        #expect(CheckpointPlanner.isReadable(ckpt, on: node("n2"), jobSharedRoot: ""), "mounts the same shared root")
        #expect(!CheckpointPlanner.isReadable(ckpt, on: node("n3"), jobSharedRoot: ""), "another shared root")
        #expect(!CheckpointPlanner.isReadable(ckpt, on: node("n4"), jobSharedRoot: ""), "declares no shared storage")
        let local = CheckpointRecord(path: "/var/lib/archon/checkpoints/j/attempt-1/e1", epoch: 1, sha256: Self.sha, nodeID: "n1", storage: Self.local)
        #expect(CheckpointPlanner.isReadable(local, on: node("n1"), jobSharedRoot: ""))
        #expect(!CheckpointPlanner.isReadable(local, on: node("n2"), jobSharedRoot: ""))
        let unsaid = CheckpointRecord(path: "/w/jobs/j/checkpoints/e1", epoch: 1, sha256: Self.sha, nodeID: "n1")
        #expect(!CheckpointPlanner.isReadable(unsaid, on: node("n2"), jobSharedRoot: ""), "an agent that did not say: local")
        let own = CheckpointRecord(path: "/team/j/attempt-1/e1", epoch: 1, sha256: Self.sha, nodeID: "n1", storage: CheckpointStorage(root: "/team", shared: true))
        #expect(CheckpointPlanner.isReadable(own, on: node("n4"), jobSharedRoot: "/team"), "the job's own shared root: any node")
        #expect(!CheckpointPlanner.isReadable(own, on: node("n4"), jobSharedRoot: ""))
    }

    @Test func pathsAndRoots() {
        #expect(Self.shared.directory(job: "j", attempt: 3) == "/mnt/ckpt/j/attempt-3")
        #expect(CheckpointStorage(root: "/mnt/ckpt/", shared: true).directory(job: "j", attempt: 1) == "/mnt/ckpt/j/attempt-1")
        #expect(CheckpointStorage.path("/mnt/ckpt/j/e1", isWithin: "/mnt/ckpt"))
        #expect(CheckpointStorage.path("/mnt/ckpt", isWithin: "/mnt/ckpt/"))
        #expect(!CheckpointStorage.path("/mnt/ckpt2/j", isWithin: "/mnt/ckpt"))
        #expect(!CheckpointStorage.path("relative/j", isWithin: "relative"))
        #expect(!CheckpointStorage.path("/mnt/ckpt/../etc/passwd", isWithin: "/mnt/ckpt"))
        #expect(!CheckpointStorage.path("/mnt/ckpt/./j", isWithin: "/mnt/ckpt"))
        #expect(CheckpointStorage.rootProblem("/mnt/team") == nil)
        #expect(CheckpointStorage.rootProblem("mnt/team") == "must be an absolute path")
        #expect(CheckpointStorage.rootProblem("/") == "must not be /")
        #expect(CheckpointStorage.rootProblem("/mnt/../etc") == "must not contain . or .. components")
        var bad = spec("bad")
        bad.config.checkpoint.sharedRoot = "/mnt/./x"
        var fleet = Fleet()
        #expect(decisions(fleet.submit(bad)) == [#"reject bad: config.checkpoint.sharedRoot: must not contain . or .. components, got "/mnt/./x""#])
    }

    @Test func aMoveOffACordonedNodeCannotReadItsLocalCheckpointsAndStartsFromScratchSayingWhy() throws {
        var fleet = Fleet(policy: .noBackoff, nodes: ["n1", "n2"])
        jobOnN1(&fleet)
        _ = try fleet.controller.nodeCordoned("n1", by: "sam", reason: "bad fan", at: fleet.now)
        let actions = fleet.exit("job-1", code: 1)
        #expect(decisions(actions) == ["stop job-1#1 on n1", "assign job-1#2 → n2"], "no wait: a cordoned node takes no job")
        let assignment = try #require(assignments(actions).first)
        #expect(assignment.freshStart && assignment.resumeFrom.isEmpty && assignment.resumeSHA256.isEmpty)
        let why = try #require(fleet.job("job-1").history[1].resumeChoice)
        #expect(why == "start from scratch: no kept checkpoint of the current line is readable where it can run; passed over, not readable where it can run now: "
            + "epoch 2 step 200 (attempt 1) is on n1's local storage and n1 is out of service (cordoned by sam: bad fan); "
            + "epoch 1 step 100 (attempt 1) is on n1's local storage and n1 is out of service (cordoned by sam: bad fan)")
        let decision = actions.compactMap { if case .assign(_, let reason) = $0 { reason } else { nil } }.first
        #expect(decision?.rule.contains(why) == true, "the decision says so")
    }

    @Test func sharedCheckpointsResumeOnANodeThatMountsTheSameRootAndNoOther() throws {
        var fleet = Fleet(policy: .noBackoff, nodes: ["n1", "n2"], checkpointStorage: Self.shared)
        fleet.checkpointStorage = nil
        fleet.addNode("n3")  // no shared storage: the least loaded below, yet it cannot read the checkpoint
        jobOnN1(&fleet, storage: Self.shared)
        _ = fleet.submit(spec("busy"))
        #expect(fleet.job("busy").nodeID == "n2")
        _ = try fleet.controller.nodeCordoned("n1", by: "sam", reason: "", at: fleet.now)
        let actions = fleet.exit("job-1", code: 1)
        let assignment = try #require(assignments(actions).first)
        #expect(assignment.nodeID == "n2" && assignment.resumeFrom == "/mnt/ckpt/job-1/attempt-1/e2" && assignment.resumeSHA256 == Self.sha)
        #expect(fleet.job("job-1").history[1].resumeChoice == "resume from epoch 2 step 200 (attempt 1), the newest kept checkpoint of the current line")
    }

    @Test func aJobsOwnSharedRootResumesOnAnyNode() throws {
        var own = spec("job-1")
        own.config.checkpoint.sharedRoot = "/team/ckpt"
        var fleet = Fleet(policy: .noBackoff, nodes: ["n1", "n2"])
        jobOnN1(&fleet, spec: own, storage: CheckpointStorage(root: "/team/ckpt", shared: true))
        _ = try fleet.controller.nodeCordoned("n1", by: "sam", reason: "", at: fleet.now)
        let assignment = try #require(assignments(fleet.exit("job-1", code: 1)).first)
        #expect(assignment.nodeID == "n2" && assignment.resumeFrom == "/team/ckpt/job-1/attempt-1/e2")
    }

    /// n1 and n2 take one job each; job-w waits for room.
    func fullFleet() -> Fleet {
        var fleet = Fleet(nodes: ["n1", "n2"], memory: 8 * gib)
        jobOnN1(&fleet)
        _ = fleet.submit(spec("job-2"))
        _ = fleet.start("job-2")
        _ = fleet.submit(spec("job-w"))
        return fleet
    }

    @Test func theRestartWaitsBrieflyForTheNodeHoldingItsNewestLocalCheckpoint() throws {
        var fleet = fullFleet()
        #expect(fleet.job("job-2").nodeID == "n2" && fleet.job("job-w").status == .queued)
        // job-1 crashes: its backoff lets job-w take n1; job-2 completes and frees n2.
        #expect(decisions(fleet.exit("job-1", code: 1)) == ["assign job-w#1 → n1"])
        _ = fleet.start("job-w")
        _ = fleet.complete("job-2")
        fleet.advance(10 * second)
        let waiting = fleet.fire(.restartDue(jobID: "job-1"))
        #expect(decisions(waiting) == [], "n2 has room, but cannot read epoch 2: wait for n1")
        #expect(lines(waiting).contains("timer restart-due/job-1 @4m10s"), "\(lines(waiting))")
        #expect(fleet.job("job-1").statusDetail.contains("for n1, whose local storage holds the newest checkpoint (n1 has no room)"))
        // job-w completes within the wait: job-1 goes back to n1 and resumes where it was.
        fleet.advance(30 * second)
        let back = fleet.complete("job-w")
        let assignment = try #require(assignments(back).first)
        #expect(assignment.spec.id == "job-1" && assignment.nodeID == "n1" && assignment.resumeFrom.hasSuffix("/e2"))
        #expect(fleet.job("job-1").history[1].resumeChoice == "resume from epoch 2 step 200 (attempt 1), the newest kept checkpoint of the current line (waited 30s for n1)")
    }

    @Test func pastTheWaitItResumesFromWhatItCanReadOrFromScratch() throws {
        var fleet = fullFleet()
        _ = fleet.exit("job-1", code: 1)
        _ = fleet.start("job-w")
        _ = fleet.complete("job-2")
        fleet.advance(10 * second)
        _ = fleet.fire(.restartDue(jobID: "job-1"))
        fleet.advance(2 * minute)
        let actions = fleet.fire(.restartDue(jobID: "job-1"))
        let assignment = try #require(assignments(actions).first)
        #expect(assignment.nodeID == "n2" && assignment.freshStart)
        #expect(fleet.job("job-1").history[1].resumeChoice?.contains("epoch 2 step 200 (attempt 1) is on n1's local storage and n1 has no room after a wait of 2m") == true)
        #expect(fleet.job("job-1").restarts == 1, "the wait is no restart")
    }

    @Test func aNodeNotHeardFromIsWaitedForTooAndTakesTheJobWhenItIsBack() throws {
        var fleet = Fleet(nodes: ["n1", "n2"])
        jobOnN1(&fleet)
        _ = fleet.exit("job-1", code: 1)  // restart due in 10 s
        fleet.silence("n1")
        fleet.advance(3 * minute)
        _ = fleet.tick()
        #expect(fleet.controller.node("n1")?.health == .offline)
        #expect(decisions(fleet.fire(.restartDue(jobID: "job-1"))) == [])
        #expect(fleet.job("job-1").statusDetail.contains("for n1, whose local storage holds the newest checkpoint (n1 is not heard from)"), "\(fleet.job("job-1").statusDetail)")
        fleet.live.append("n1")
        fleet.advance(20 * second)
        _ = fleet.tick()
        #expect(fleet.job("job-1").attempt == 2 && fleet.job("job-1").nodeID == "n1", "\(fleet.job("job-1").statusDetail)")
        #expect(fleet.job("job-1").history[1].resumeFrom.hasSuffix("/e2"))
    }

    @Test func anUnavailableCheckpointIsDroppedForTheNextAndThenAFreshStartUncharged() throws {
        var fleet = Fleet(policy: .noBackoff, nodes: ["n1", "n2"])
        jobOnN1(&fleet)
        let restart = try #require(assignments(fleet.exit("job-1", code: 1)).first)
        #expect(restart.nodeID == "n1" && restart.resumeFrom.hasSuffix("/e2") && restart.resumeSHA256 == Self.sha)
        let restarts = fleet.job("job-1").restarts

        // The agent finds epoch 2 changed on disk: it never starts the trainer.
        let detail = "agent did not start the job: checkpoint \(restart.resumeFrom) on node n1 has SHA-256 00…, not the \(Self.sha) it was written with (changed or corrupt)"
        let next = fleet.exit("job-1", code: 66, failure: .checkpointUnavailable, detail: detail)
        let again = try #require(assignments(next).first)
        #expect(again.attempt == 3 && again.nodeID == "n1" && again.resumeFrom.hasSuffix("/e1") && !again.freshStart)
        #expect(fleet.job("job-1").history[2].resumeChoice == "resume from epoch 1 step 100 (attempt 1) on n1's local storage, the newest kept checkpoint of the current line it can read; passed over, not readable where it can run now: epoch 2 step 200 (attempt 1) was unavailable on n1")
        #expect(escalations(next).isEmpty, "nothing to page: the job goes on")
        let job = fleet.job("job-1")
        #expect(job.history[1].failureClass == .checkpointUnavailable && job.history[1].outcome == "checkpoint unavailable — \(detail)")
        #expect(!job.checkpoints.contains { $0.path == restart.resumeFrom }, "never chosen again")
        #expect(job.restarts == restarts, "not charged a restart")
        #expect(firstReason(next)?.symptom == "checkpoint unavailable")

        // Epoch 1 is gone too: a fresh start.
        let fresh = try #require(assignments(fleet.exit("job-1", code: 66, failure: .checkpointUnavailable, detail: "agent did not start the job: checkpoint … does not exist on node n1")).first)
        #expect(fresh.attempt == 4 && fresh.freshStart && fresh.resumeFrom.isEmpty)
        #expect(fleet.job("job-1").history[3].resumeChoice == "start from scratch: no kept checkpoint of the current line is readable where it can run; passed over, not readable where it can run now: epoch 1 step 100 (attempt 1) was unavailable on n1")
        _ = fleet.start("job-1")
        #expect(fleet.job("job-1").status == .running)
    }

    @Test func checkpointsUnavailableAcrossJobsNeverPauseTheirDataset() throws {
        var fleet = Fleet(policy: .noBackoff, nodes: ["n1", "n2", "n3"])
        for id in ["a", "b", "c"] {
            _ = fleet.submit(spec(id))
            _ = fleet.start(id)
            _ = fleet.send(id, .checkpoint(CheckpointWritten(path: "/c/\(id)/e1", epoch: 1, sha256: Self.sha, storage: Self.local)))
            _ = fleet.exit(id, code: 1)  // restart from e1
        }
        for id in ["a", "b", "c"] {
            let actions = fleet.exit(id, code: 66, failure: .checkpointUnavailable, detail: "agent did not start the job: checkpoint /c/\(id)/e1 does not exist on node n1")
            #expect(assignments(actions).first?.freshStart == true)
            #expect(!decisions(actions).contains { $0.hasPrefix("pause retries") })
        }
        #expect(fleet.controller.dataset("ds-1")?.retriesPaused == false)
        #expect(fleet.job("a").history.allSatisfy { $0.symptom != .datasetNotFound })
    }

    @Test func aCheckpointUnavailableReportWithNoCheckpointChosenIsAnOrdinaryCrash() throws {
        var fleet = Fleet(policy: .noBackoff, nodes: ["n1"])
        _ = fleet.submit(spec("job-1"))
        _ = fleet.start("job-1")
        _ = fleet.exit("job-1", code: 66, failure: .checkpointUnavailable, detail: "from a trainer that resumed from nothing")
        #expect(fleet.job("job-1").history[0].symptom == .crash)
        #expect(fleet.job("job-1").restarts == 1)
    }

    @Test func theWaitMustEndBeforeAJobIsCalledStuck() throws {
        var policy = Policy()
        policy.remediation.checkpointNodeWait = .minutes(10)
        #expect(policy.validate().map(\.path) == ["remediation.checkpointNodeWait"])
        policy.remediation.checkpointNodeWait = .seconds(0)
        #expect(policy.validate().isEmpty, "0 = never wait")
    }
}
