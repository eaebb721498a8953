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

    /// Splits checkpoints into those kept (the newest `keepLast` verified ones; all verified when 0) and those
    /// to delete (older verified ones, and unverified ones older than the newest verified). Both oldest first.
    public static func retention(_ checkpoints: [CheckpointRecord], keepLast: Int) -> (keep: [CheckpointRecord], discard: [CheckpointRecord]) {
        let ordered = newestFirst(checkpoints)
        var keep: [CheckpointRecord] = []
        var discard: [CheckpointRecord] = []
        var verifiedKept = 0
        var seenVerified = false
        for checkpoint in ordered {
            if checkpoint.verified {
                seenVerified = true
                if keepLast == 0 || verifiedKept < keepLast {
                    keep.append(checkpoint)
                    verifiedKept += 1
                } else {
                    discard.append(checkpoint)
                }
            } else if seenVerified {
                discard.append(checkpoint)
            } else {
                keep.append(checkpoint)  // newer than any verified one: may still be verified
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
