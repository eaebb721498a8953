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

    /// The checkpoints on the line the next attempt continues: those of the latest attempt in `history`, then,
    /// walking back through each attempt's `resumeCheckpoint`, those its ancestors wrote up to the checkpoint the
    /// line resumed from. A start from scratch ends the line, so the checkpoints of abandoned attempts (after a
    /// fresh start, or written after the point a later attempt resumed from) are never candidates.
    /// O(attempts + checkpoints) of one job.
    public static func lineage(_ checkpoints: [CheckpointRecord], history: [AttemptRecord]) -> [CheckpointRecord] {
        guard var attempt = history.last else { return [] }
        let byAttempt = Dictionary(history.map { ($0.attempt, $0) }, uniquingKeysWith: { _, last in last })
        // Per attempt on the line, the newest (epoch, step) of it that the line continues from.
        var limits: [Int: (epoch: Int, step: Int)] = [:]
        var limit = (epoch: Int.max, step: Int.max)
        // State written before lineage was kept: an attempt resumed from a path no longer known. Its ancestry is
        // unknown, so every older attempt's checkpoints stay candidates (the rule before lineage).
        var unknownBelow: Int?
        while true {
            limits[attempt.attempt] = limit
            let from: CheckpointRecord?
            if let known = attempt.resumeCheckpoint {
                from = known
            } else if !attempt.resumeFrom.isEmpty {
                from = checkpoints.last { $0.path == attempt.resumeFrom }
                if from == nil { unknownBelow = attempt.attempt }
            } else {
                from = nil  // started from scratch: the line begins here
            }
            guard let from, from.attempt < attempt.attempt else { break }
            if (from.epoch, from.step) < (limit.epoch, limit.step) { limit = (from.epoch, from.step) }
            guard let parent = byAttempt[from.attempt] else {
                limits[from.attempt] = limit
                break
            }
            attempt = parent
        }
        return checkpoints.filter { checkpoint in
            if let l = limits[checkpoint.attempt] { return (checkpoint.epoch, checkpoint.step) <= (l.epoch, l.step) }
            return unknownBelow.map { checkpoint.attempt < $0 } ?? false
        }
    }

    /// The checkpoint to resume from: the newest verified one, written before `beforeEpoch` when given
    /// (checkpoints of a diverged epoch hold the diverged weights). nil = start from scratch.
    public static func resumePoint(_ checkpoints: [CheckpointRecord], beforeEpoch: Int? = nil) -> CheckpointRecord? {
        candidates(checkpoints, beforeEpoch: beforeEpoch).first
    }

    /// Every checkpoint that may be resumed from, best first: verified, written before `beforeEpoch` when given,
    /// newest first.
    public static func candidates(_ checkpoints: [CheckpointRecord], beforeEpoch: Int? = nil) -> [CheckpointRecord] {
        newestFirst(checkpoints).filter { checkpoint in checkpoint.verified && (beforeEpoch.map { checkpoint.epoch < $0 } ?? true) }
    }

    /// Whether `node` can read `checkpoint`: one on the job's own shared root, or on a shared root the node declares
    /// too, from any such node; any other (local storage, or an agent that did not say) only on the node that wrote it.
    public static func isReadable(_ checkpoint: CheckpointRecord, on node: NodeRecord, jobSharedRoot: String) -> Bool {
        if checkpoint.nodeID == node.id { return true }
        guard let storage = checkpoint.storage, storage.shared else { return false }
        if !jobSharedRoot.isEmpty, storage.root == jobSharedRoot { return true }
        guard let own = node.status.checkpointStorage, own.shared else { return false }
        return own.root == storage.root
    }

    /// "epoch 4 step 120 (attempt 2)".
    static func name(_ checkpoint: CheckpointRecord) -> String {
        "epoch \(checkpoint.epoch)\(checkpoint.step > 0 ? " step \(checkpoint.step)" : "") (attempt \(checkpoint.attempt))"
    }

    /// Where a checkpoint lies, in words: "n1's local storage" or "shared storage /mnt/ckpt".
    public static func location(_ checkpoint: CheckpointRecord) -> String {
        guard let storage = checkpoint.storage, storage.shared else { return "\(checkpoint.nodeID)'s local storage" }
        return "shared storage \(storage.root)"
    }
}

/// Which checkpoint the next attempt resumes from, and why.
public struct ResumeChoice: Sendable, Hashable {
    /// nil = start from scratch.
    public var checkpoint: CheckpointRecord?
    /// The agent must not fall back to its own newest checkpoint: the job has checkpoints, none may be resumed from.
    public var freshStart: Bool
    /// In words, e.g. "resume from epoch 4 (attempt 2), before the loss began to rise at epoch 5"; nil when the job
    /// has no checkpoint and no divergence to avoid (nothing was chosen).
    public var why: String?
}

extension CheckpointPlanner {
    /// The resume point of the attempt after `history`'s last: the newest verified checkpoint on its line
    /// (``lineage(_:history:)``) among those the agents keep, written before `beforeEpoch` when a divergence
    /// began there. Where it can be read is the placement's concern (``explain(_:checkpoints:line:beforeEpoch:passedOver:)``).
    public static func choose(_ checkpoints: [CheckpointRecord], history: [AttemptRecord], beforeEpoch: Int?) -> ResumeChoice {
        let line = lineage(checkpoints, history: history)
        return explain(resumePoint(line, beforeEpoch: beforeEpoch), checkpoints: checkpoints, line: line, beforeEpoch: beforeEpoch)
    }

    /// The choice of `chosen` (nil = from scratch) among `line`'s candidates, in words. `passedOver` says why better
    /// candidates were not taken (not readable where the attempt can run), e.g. "epoch 4 (attempt 2) is on n1's local
    /// storage and n1 is cordoned".
    public static func explain(_ chosen: CheckpointRecord?, checkpoints: [CheckpointRecord], line: [CheckpointRecord], beforeEpoch: Int?,
                               passedOver: [String] = []) -> ResumeChoice {
        let unreadable = passedOver.isEmpty ? "" : "; passed over, not readable where it can run now: \(passedOver.joined(separator: "; "))"
        if let chosen {
            let because = beforeEpoch.map { "before the loss began to rise at epoch \($0)" }
                ?? (passedOver.isEmpty ? "the newest kept checkpoint of the current line" : "the newest kept checkpoint of the current line it can read")
            let on = passedOver.isEmpty ? "" : " on \(location(chosen))"
            return ResumeChoice(checkpoint: chosen, freshStart: false, why: "resume from \(name(chosen))\(on), \(because)\(unreadable)")
        }
        let known = checkpoints.contains(where: \.verified)
        guard known || beforeEpoch != nil || !passedOver.isEmpty else { return ResumeChoice(checkpoint: nil, freshStart: false, why: nil) }
        let abandoned = checkpoints.count - line.count
        let skipped = abandoned > 0 ? " (\(abandoned) checkpoint\(abandoned == 1 ? "" : "s") of abandoned attempts skipped)" : ""
        let why = if !passedOver.isEmpty {
            "start from scratch: no kept checkpoint of the current line is readable where it can run\(skipped)\(unreadable)"
        } else if let beforeEpoch {
            "start from scratch: no kept checkpoint of the current line precedes epoch \(beforeEpoch), where the loss began to rise\(skipped)"
        } else {
            "start from scratch: no kept checkpoint is on the current line\(skipped)"
        }
        return ResumeChoice(checkpoint: nil, freshStart: true, why: why)
    }
}
