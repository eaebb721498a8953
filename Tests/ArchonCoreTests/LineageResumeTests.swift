import ArchonModel
import Foundation
import Testing

@testable import ArchonCore

/// Resume choices follow the attempt line (issue #10 part 2): checkpoints of abandoned attempts, checkpoints the
/// agents deleted and checkpoints after the loss began to rise are never resumed from.
@Suite struct LineageResumeTests {
    let sha = String(repeating: "cd", count: 32)

    func job(keepLast: Int = 3, lr: Double = 0.01) -> JobSpec {
        var s = spec("job-1", lr: lr)
        s.config.checkpoint.keepLast = keepLast
        return s
    }

    mutating func checkpoint(_ fleet: inout Fleet, _ path: String, epoch: Int) {
        _ = fleet.send("job-1", .checkpoint(CheckpointWritten(path: path, epoch: epoch, sha256: sha)))
    }

    /// Attempt 1 diverges from its first epoch, attempt 2 starts from scratch: attempt 1's checkpoints (higher epochs)
    /// are an abandoned line, so when attempt 2 crashes the next attempt resumes from attempt 2's own checkpoint.
    @Test mutating func afterAFreshStartTheAbandonedLineIsNeverResumed() throws {
        var fleet = Fleet(policy: .noBackoff)
        _ = fleet.submit(job(lr: 5))
        _ = fleet.start("job-1")
        for (epoch, loss) in [(1, 1.9e15), (2, 3.0e24)] {
            _ = fleet.epoch("job-1", epoch, loss: loss)
            checkpoint(&fleet, "/ckpt/job-1/a1e\(epoch)", epoch: epoch)
        }
        var actions = fleet.epoch("job-1", 3, loss: .infinity)
        var assignment = try #require(assignments(actions).first)
        #expect(assignment.resumeFrom == "" && assignment.freshStart)
        #expect(firstReason(actions.filter { if case .assign = $0 { true } else { false } })?.rule.contains(
            "start from scratch: no kept checkpoint of the current line precedes epoch 1, where the loss began to rise") == true)

        _ = fleet.start("job-1")
        _ = fleet.epoch("job-1", 1, loss: 2.1)
        checkpoint(&fleet, "/ckpt/job-1/a2e1", epoch: 1)
        actions = fleet.exit("job-1", code: 1)
        assignment = try #require(assignments(actions).first)
        #expect(assignment.attempt == 3)
        #expect(assignment.resumeFrom == "/ckpt/job-1/a2e1", "not attempt 1's newer-epoch /ckpt/job-1/a1e2")
        #expect(assignment.reason.contains("resume from epoch 1 (attempt 2), the newest kept checkpoint of the current line"))
        #expect(fleet.job("job-1").current?.resumeCheckpoint?.path == "/ckpt/job-1/a2e1")
    }

    /// Attempt 2 resumes from epoch 2, before attempt 1's loss rose: attempt 1's epochs 3–5 are abandoned. Later
    /// failures resume along attempt 2's line, also through an attempt (3) that wrote nothing.
    @Test mutating func afterAResumeFromAnEarlierEpochTheSupersededCheckpointsAreNeverResumed() throws {
        var fleet = Fleet(policy: .noBackoff)
        _ = fleet.submit(job(keepLast: 10))
        _ = fleet.start("job-1")
        var actions: [ControllerAction] = []
        for (i, loss) in [1.0, 0.9, 0.95, 1.0, 1.1].enumerated() {
            checkpoint(&fleet, "/ckpt/job-1/a1e\(i + 1)", epoch: i + 1)
            actions = fleet.epoch("job-1", i + 1, loss: loss)
        }
        #expect(decisions(actions) == ["stop job-1#1 on n1", "assign job-1#2 → n1 resume /ckpt/job-1/a1e2"])
        #expect(try #require(assignments(actions).first).reason.contains("resume from epoch 2 (attempt 1), before the loss began to rise at epoch 3"))

        _ = fleet.start("job-1")
        _ = fleet.epoch("job-1", 3, loss: 0.85)
        checkpoint(&fleet, "/ckpt/job-1/a2e3", epoch: 3)
        actions = fleet.exit("job-1", code: 1)
        #expect(decisions(actions) == ["assign job-1#3 → n1 resume /ckpt/job-1/a2e3"], "not attempt 1's epoch 4 or 5")

        _ = fleet.start("job-1")
        actions = fleet.exit("job-1", code: 1)  // crashes before writing anything
        #expect(decisions(actions) == ["assign job-1#4 → n1 resume /ckpt/job-1/a2e3"])
        let line = CheckpointPlanner.lineage(fleet.job("job-1").checkpoints, history: fleet.job("job-1").history)
        #expect(line.map(\.path) == ["/ckpt/job-1/a1e1", "/ckpt/job-1/a1e2", "/ckpt/job-1/a2e3"])
    }

    /// The trainer's exit says diverging_loss; its epoch metrics never crossed a divergence threshold. The next
    /// attempt resumes from before the loss began to rise, not from the newest (poisoned) checkpoint.
    @Test mutating func anExitReportedDivergenceResumesFromBeforeTheRise() throws {
        var fleet = Fleet(policy: .noBackoff)
        _ = fleet.submit(job(keepLast: 10))
        _ = fleet.start("job-1")
        for (i, loss) in [1.0, 0.8, 0.7, 0.75, 0.9].enumerated() {
            #expect(decisions(fleet.epoch("job-1", i + 1, loss: loss)) == [])
            checkpoint(&fleet, "/ckpt/job-1/e\(i + 1)", epoch: i + 1)
        }
        let actions = fleet.exit("job-1", code: 1, failure: .divergingLoss, detail: "loss exploded")
        #expect(decisions(actions) == ["assign job-1#2 → n1 resume /ckpt/job-1/e3"])
        let assignment = try #require(assignments(actions).first)
        #expect(assignment.reason.contains("resume from epoch 3 (attempt 1), before the loss began to rise at epoch 4"))
        #expect(assignment.reason.contains("checkpoints from epoch 4 on are suspect"))
        #expect(fleet.job("job-1").history[0].failureClass == .divergingLoss)
    }

    /// An exit-reported divergence whose loss rose from the attempt's first epoch: no checkpoint predates the rise.
    @Test mutating func anExitReportedDivergenceWithNoHealthyCheckpointStartsFresh() throws {
        var fleet = Fleet(policy: .noBackoff)
        _ = fleet.submit(job())
        _ = fleet.start("job-1")
        for (i, loss) in [1.0, 1.1].enumerated() {
            _ = fleet.epoch("job-1", i + 1, loss: loss)
            checkpoint(&fleet, "/ckpt/job-1/e\(i + 1)", epoch: i + 1)
        }
        let assignment = try #require(assignments(fleet.exit("job-1", code: 1, failure: .divergingLoss)).first)
        #expect(assignment.resumeFrom == "")
        #expect(assignment.freshStart, "the agent must not fall back to its newest checkpoint")
    }

    /// keepLast 2: the agent deletes by write order, so after a fresh start the new line's low-epoch checkpoints are
    /// the ones kept and attempt 1's are deleted. The core agrees and never resumes from a deleted checkpoint.
    @Test mutating func prunedCheckpointsAreNeverChosen() throws {
        var fleet = Fleet(policy: .noBackoff)
        _ = fleet.submit(job(keepLast: 2, lr: 5))
        _ = fleet.start("job-1")
        for (epoch, loss) in [(1, 1.9e15), (2, 3.0e24), (3, 4.0e30)] {
            _ = fleet.epoch("job-1", epoch, loss: loss)
            checkpoint(&fleet, "/ckpt/job-1/a1e\(epoch)", epoch: epoch)
        }
        _ = fleet.epoch("job-1", 4, loss: .infinity)
        _ = fleet.start("job-1")
        for (epoch, loss) in [(1, 2.0), (2, 1.8), (3, 1.9)] {
            _ = fleet.epoch("job-1", epoch, loss: loss)
            checkpoint(&fleet, "/ckpt/job-1/a2e\(epoch)", epoch: epoch)
        }
        #expect(fleet.job("job-1").checkpoints.map(\.path) == ["/ckpt/job-1/a2e2", "/ckpt/job-1/a2e3"], "what the agent keeps")

        // The trainer reports divergence; its loss rose at epoch 3: a2e2 is kept and precedes the rise.
        var assignment = try #require(assignments(fleet.exit("job-1", code: 1, failure: .divergingLoss)).first)
        #expect(assignment.resumeFrom == "/ckpt/job-1/a2e2")

        // Attempt 3 writes epochs 3 and 4 (the agent deletes a2e2) while its loss rises from its first epoch, then
        // diverges: only epochs before 3 of its line qualify, and the agent deleted them all.
        _ = fleet.start("job-1")
        for (epoch, loss) in [(3, 1.9), (4, 2.5)] {
            _ = fleet.epoch("job-1", epoch, loss: loss)
            checkpoint(&fleet, "/ckpt/job-1/a3e\(epoch)", epoch: epoch)
        }
        #expect(fleet.job("job-1").checkpoints.map(\.path) == ["/ckpt/job-1/a3e3", "/ckpt/job-1/a3e4"])
        let actions = fleet.exit("job-1", code: 1, failure: .divergingLoss)
        assignment = try #require(assignments(actions).first)
        #expect(assignment.resumeFrom == "" && assignment.freshStart, "never the deleted a2e2")
        #expect(assignment.reason.contains("start from scratch: no kept checkpoint of the current line precedes epoch 3, where the loss began to rise"))
    }

    /// The planner alone: a line whose only checkpoint before the rise was deleted starts from scratch.
    @Test func aDeletedCheckpointBeforeTheRiseMeansAFreshStart() {
        let kept = [CheckpointRecord(path: "/c/e3", epoch: 3, sha256: sha, attempt: 1, nodeID: "n1"),
                    CheckpointRecord(path: "/c/e4", epoch: 4, sha256: sha, attempt: 1, nodeID: "n1")]
        let all = [CheckpointRecord(path: "/c/e2", epoch: 2, sha256: sha, attempt: 1, nodeID: "n1")] + kept
        #expect(CheckpointPlanner.retention(all, keepLast: 2).keep == kept)
        let history = [AttemptRecord(attempt: 1, nodeID: "n1", action: "initial placement", configChange: "", resumeFrom: "", assignedAtMs: 0)]
        let choice = CheckpointPlanner.choose(kept, history: history, beforeEpoch: 3)
        #expect(choice.checkpoint == nil && choice.freshStart)
        #expect(choice.why == "start from scratch: no kept checkpoint of the current line precedes epoch 3, where the loss began to rise")
    }

    /// An ordinary crash resumes from the newest checkpoint of the current line.
    @Test mutating func anOrdinaryCrashResumesFromTheNewestCheckpoint() throws {
        var fleet = Fleet(policy: .noBackoff)
        _ = fleet.submit(job())
        _ = fleet.start("job-1")
        for epoch in 1...3 {
            _ = fleet.epoch("job-1", epoch, loss: 1.0 / Double(epoch))
            checkpoint(&fleet, "/ckpt/job-1/e\(epoch)", epoch: epoch)
        }
        let actions = fleet.exit("job-1", code: 1)
        #expect(decisions(actions) == ["assign job-1#2 → n1 resume /ckpt/job-1/e3"])
        let assignment = try #require(assignments(actions).first)
        #expect(!assignment.freshStart)
        #expect(assignment.reason.contains("resume from epoch 3 (attempt 1), the newest kept checkpoint of the current line"))
        #expect(fleet.job("job-1").current?.resumeChoice == "resume from epoch 3 (attempt 1), the newest kept checkpoint of the current line")
    }

    /// State written before lineage was kept decodes (the new attempt fields are absent), and an attempt that
    /// resumed from a path no longer known keeps the old rule: every older attempt's checkpoints are candidates.
    @Test mutating func attemptsWithoutLineageDecodeAndKeepTheOldRule() throws {
        var fleet = Fleet(policy: .noBackoff)
        _ = fleet.submit(job())
        _ = fleet.start("job-1")
        checkpoint(&fleet, "/ckpt/job-1/e1", epoch: 1)
        _ = fleet.exit("job-1", code: 1)
        var record = try #require(fleet.job("job-1").current)
        record.resumeFrom = "/ckpt/job-1/gone"
        var object = try #require(JSONSerialization.jsonObject(with: JSONEncoder().encode(record)) as? [String: Any])
        #expect(object["resumeCheckpoint"] != nil)
        object["resumeCheckpoint"] = nil
        object["resumeChoice"] = nil
        let old = try JSONDecoder().decode(AttemptRecord.self, from: JSONSerialization.data(withJSONObject: object))
        #expect(old.resumeCheckpoint == nil && old.resumeChoice == nil && old.resumeFrom == "/ckpt/job-1/gone")
        let line = CheckpointPlanner.lineage(fleet.job("job-1").checkpoints, history: [fleet.job("job-1").history[0], old])
        #expect(line.map(\.path) == ["/ckpt/job-1/e1"])
    }
}
