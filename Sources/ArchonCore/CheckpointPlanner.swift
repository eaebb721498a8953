public import ArchonModel

/// Checkpoint decisions: when one is due, which to keep, which to resume from.
public enum CheckpointPlanner {
    /// Whether a checkpoint is due at the end of `epoch` / at `step`, given the last one written.
    public static func isDue(_ policy: CheckpointPolicy, epoch: Int, step: Int, last: CheckpointRecord?) -> Bool {
        if policy.everyEpochs > 0, epoch > 0, epoch % policy.everyEpochs == 0, (last?.epoch ?? 0) < epoch {
            return true
        }
        if policy.everySteps > 0, step.subtractingSaturated(last?.step ?? 0) >= policy.everySteps {
            return true
        }
        return false
    }

    /// Newest first: by epoch, then step, then time written.
    static func newestFirst(_ checkpoints: [CheckpointRecord]) -> [CheckpointRecord] {
        checkpoints.sorted { a, b in
            if a.epoch != b.epoch { return a.epoch > b.epoch }
            if a.step != b.step { return a.step > b.step }
            return a.writtenAtMs > b.writtenAtMs
        }
    }

    /// Splits checkpoints, oldest written first, into those the agents still keep and those they deleted. Each
    /// node's agent keeps the last `keepLast` checkpoints of a job in the order they were written, across attempts
    /// (all when 0); the core agrees, so it never resumes from a deleted one. Write order, not epoch: after a
    /// restart from an earlier epoch the new line's low epochs are the newest files. Both oldest first.
    public static func retention(_ checkpoints: [CheckpointRecord], keepLast: Int) -> (keep: [CheckpointRecord], discard: [CheckpointRecord]) {
        guard keepLast > 0 else { return (checkpoints, []) }
        var kept: [String: Int] = [:]
        var keep: [CheckpointRecord] = []
        var discard: [CheckpointRecord] = []
        for checkpoint in checkpoints.reversed() {
            let count = kept[checkpoint.nodeID, default: 0]
            if count < keepLast {
                keep.append(checkpoint)
                kept[checkpoint.nodeID] = count + 1
            } else {
                discard.append(checkpoint)
            }
        }
        return (keep.reversed(), discard.reversed())
    }

    /// The checkpoint to resume from: the newest verified one, written before `beforeEpoch` when given
    /// (checkpoints of a diverged epoch hold the diverged weights). nil = start from scratch.
    public static func resumePoint(_ checkpoints: [CheckpointRecord], beforeEpoch: Int? = nil) -> CheckpointRecord? {
        newestFirst(checkpoints).first { checkpoint in checkpoint.verified && (beforeEpoch.map { checkpoint.epoch < $0 } ?? true) }
    }
}
