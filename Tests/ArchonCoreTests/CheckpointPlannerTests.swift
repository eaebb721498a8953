import ArchonModel
import Testing

@testable import ArchonCore

@Suite struct CheckpointPlannerTests {
    let sha = String(repeating: "0f", count: 32)

    func checkpoint(_ epoch: Int, verified: Bool = true) -> CheckpointRecord {
        CheckpointRecord(path: "/ckpt/e\(epoch)", epoch: epoch, step: epoch * 100, sha256: verified ? sha : "", writtenAtMs: Int64(epoch))
    }

    @Test func aCheckpointIsDueEveryEpochByDefault() {
        let policy = CheckpointPolicy()
        #expect(CheckpointPlanner.isDue(policy, epoch: 1, step: 100, last: nil))
        #expect(!CheckpointPlanner.isDue(policy, epoch: 1, step: 150, last: checkpoint(1)))
        #expect(CheckpointPlanner.isDue(policy, epoch: 2, step: 200, last: checkpoint(1)))
        let everyThird = CheckpointPolicy(everyEpochs: 3, everySteps: 0, keepLast: 3)
        #expect(!CheckpointPlanner.isDue(everyThird, epoch: 2, step: 200, last: nil))
        #expect(CheckpointPlanner.isDue(everyThird, epoch: 3, step: 300, last: nil))
        let bySteps = CheckpointPolicy(everyEpochs: 0, everySteps: 500, keepLast: 3)
        #expect(!CheckpointPlanner.isDue(bySteps, epoch: 1, step: 499, last: nil))
        #expect(CheckpointPlanner.isDue(bySteps, epoch: 1, step: 1000, last: checkpoint(5)))
    }

    /// Like each node's agent: the last `keepLast` written, per node, whatever their epochs.
    @Test func theLastThreeWrittenOnEachNodeAreKept() {
        func on(_ node: String, _ c: CheckpointRecord) -> CheckpointRecord { var c = c; c.nodeID = node; return c }
        let all = [checkpoint(5), checkpoint(6), on("n2", checkpoint(7)), checkpoint(1), checkpoint(2), checkpoint(3, verified: false)]
        let (keep, discard) = CheckpointPlanner.retention(all, keepLast: 3)
        #expect(keep.map(\.epoch) == [7, 1, 2, 3])  // written after 5 and 6: the agent deleted those
        #expect(discard.map(\.epoch) == [5, 6])
        #expect(CheckpointPlanner.retention(all, keepLast: 0).discard.isEmpty)
    }

    @Test func resumeFromTheLatestVerifiedBeforeADivergedEpoch() {
        let all = [checkpoint(1), checkpoint(2), checkpoint(3), checkpoint(4, verified: false)]
        #expect(CheckpointPlanner.resumePoint(all)?.epoch == 3)
        #expect(CheckpointPlanner.resumePoint(all, beforeEpoch: 3)?.epoch == 2)
        #expect(CheckpointPlanner.resumePoint(all, beforeEpoch: 1) == nil)
        #expect(CheckpointPlanner.resumePoint([]) == nil)
    }

    @Test func theControllerKeepsOnlyWhatRetentionKeeps() {
        var fleet = Fleet()
        _ = fleet.submit(spec("job-1"))
        _ = fleet.start("job-1")
        for epoch in 1...5 {
            _ = fleet.send("job-1", .checkpoint(CheckpointWritten(path: "/ckpt/job-1/e\(epoch)", epoch: epoch, sha256: sha)))
        }
        #expect(fleet.job("job-1").checkpoints.map(\.epoch) == [3, 4, 5])
    }
}
