public import ArchonModel

/// What one epoch's metrics say about the loss curve.
public enum LossSignal: Sendable, Hashable {
    /// NaN/Inf, a spike or a rising loss: a divergence finding.
    case diverging(evidence: String, badEpoch: Int)
    /// No improvement for the patience window (a notice).
    case plateau(evidence: String)
    /// Validation far worse than training (a notice).
    case validationGap(evidence: String)
}

/// Watches the epoch losses of one attempt: diverging (NaN/Inf, rising, spike) and poor performance.
public struct LossMonitor: Codable, Sendable, Hashable {
    /// Recent training losses, oldest first.
    public private(set) var losses: [Double] = []
    public private(set) var epochs: [Int] = []
    /// Best of the tracked loss (validation when reported, else training).
    public private(set) var best: Double?
    public private(set) var bestEpoch = 0
    public private(set) var epochsWithoutImprovement = 0
    /// The first epoch this attempt reported.
    public private(set) var firstEpoch: Int?

    public init() {}

    /// The first epoch whose checkpoint cannot be trusted when the loss turns non-finite at `epoch`: the loss climbed
    /// to infinity along the strictly rising run that ends here, so the weights after the run's lowest point are
    /// suspect. If the loss rose from this attempt's very first epoch, no epoch of it is healthy.
    func riseStart(before epoch: Int) -> Int {
        var start = losses.count
        while start > 0, start == losses.count || losses[start - 1] < losses[start] {
            start -= 1
        }
        guard start < epochs.count else { return epoch }  // nothing tracked: only this epoch is known bad
        let lowest = epochs[start]
        return lowest == firstEpoch ? lowest : lowest.addingSaturated(1)
    }

    /// The first epoch whose checkpoint cannot be trusted when the trainer itself reports divergence at exit: the
    /// epoch after the lowest point of the rising run the tracked losses end with (the one after the last reported
    /// epoch when they end falling). A run that starts where tracking starts may have begun earlier, so that epoch
    /// is distrusted too. nil when the attempt reported no epoch.
    func riseStartAtExit() -> Int? {
        guard let last = epochs.last else { return nil }
        var start = losses.count - 1
        while start > 0, losses[start - 1] < losses[start] {
            start -= 1
        }
        if start == losses.count - 1 { return last.addingSaturated(1) }  // not rising: only the unreported epochs are suspect
        let lowest = epochs[start]
        return start == 0 ? lowest : lowest.addingSaturated(1)
    }

    /// Feeds one epoch; returns what it shows, divergence first.
    public mutating func observe(_ m: EpochMetrics, policy: DetectionPolicy) -> [LossSignal] {
        let d = policy.divergence
        if firstEpoch == nil { firstEpoch = m.epoch }
        if !m.loss.isFinite {
            return [.diverging(evidence: "epoch \(m.epoch) training loss is \(m.loss)", badEpoch: riseStart(before: m.epoch))]
        }
        if let validation = m.validation, !validation.loss.isFinite {
            return [.diverging(evidence: "epoch \(m.epoch) validation loss is \(validation.loss)", badEpoch: m.epoch)]
        }

        var signals: [LossSignal] = []
        let previous = Array(losses.suffix(d.spikeWindow))
        if previous.count >= d.spikeMinSamples {
            let median = Self.median(previous)
            if median > 0, m.loss > d.spikeFactor * median {
                signals.append(.diverging(
                    evidence: "epoch \(m.epoch) loss \(m.loss.short) is \((m.loss / median).short)× the median \(median.short) of the previous \(previous.count) epochs (limit \(d.spikeFactor.compact)×)",
                    badEpoch: m.epoch))
            }
        }
        losses.append(m.loss)
        epochs.append(m.epoch)
        let keep = max(d.spikeWindow, d.risingEpochs + 1)
        if losses.count > keep {
            losses.removeFirst(losses.count - keep)
            epochs.removeFirst(epochs.count - keep)
        }
        if signals.isEmpty, d.risingEpochs > 0, losses.count > d.risingEpochs {
            let run = Array(losses.suffix(d.risingEpochs + 1))
            let rise = run.first.flatMap { first in run.last.map { ($0 - first) / Swift.max(abs(first), .leastNormalMagnitude) } } ?? 0
            if zip(run, run.dropFirst()).allSatisfy({ $0 < $1 }), rise >= d.minRelativeRise {
                let runEpochs = Array(epochs.suffix(d.risingEpochs + 1))
                signals.append(.diverging(
                    evidence: "loss rose \(d.risingEpochs) epochs in a row by \(ResourcePressure.percent(rise)): \(run.map(\.short).joined(separator: " → ")) (epochs \(runEpochs.first ?? 0)–\(runEpochs.last ?? 0))",
                    badEpoch: runEpochs.dropFirst().first ?? m.epoch))
            }
        }
        if !signals.isEmpty { return signals }

        let p = policy.poorPerformance
        let tracked = m.validation?.loss ?? m.loss
        let trackedName = m.validation == nil ? "training loss" : "validation loss"
        if let best, best - tracked < p.minImprovement {
            epochsWithoutImprovement += 1
            if epochsWithoutImprovement == p.patienceEpochs {
                signals.append(.plateau(evidence: "no \(trackedName) improvement of at least \(p.minImprovement.compact) for \(p.patienceEpochs) consecutive epochs (best \(best.short) at epoch \(bestEpoch), now \(tracked.short) at epoch \(m.epoch))"))
            }
        } else {
            best = tracked
            bestEpoch = m.epoch
            epochsWithoutImprovement = 0
        }
        if let validation = m.validation, m.loss > 0, validation.loss > p.validationGapRatio * m.loss {
            signals.append(.validationGap(evidence: "epoch \(m.epoch) validation loss \(validation.loss.short) is \((validation.loss / m.loss).short)× the training loss \(m.loss.short) (limit \(p.validationGapRatio.compact)×)"))
        }
        return signals
    }

    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return 0 }
        let mid = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
    }
}

extension Double {
    /// Up to 4 significant decimals for messages: `0.5231`, `12.3`, `nan`.
    var short: String {
        guard isFinite else { return "\(self)" }
        if self == rounded(), abs(self) < 1e15 { return String(Int64(self)) }
        let scale = abs(self) >= 1 ? 100.0 : 10_000.0
        return String((self * scale).rounded() / scale)
    }
}
