public import ArchonModel

/// What a rung needs to know beyond the config.
public struct RemediationContext: Sendable, Hashable {
    /// Memory request `raiseMemory` starts from when the job sets none and none was observed.
    public var defaultMemoryRequest: UInt64
    /// Highest memory request allowed (the policy cap, else the largest node); 0 = no cap.
    public var maxMemoryRequest: UInt64
    /// Limit the agent applied to the failed attempt; 0 if unknown.
    public var observedMemoryLimit: UInt64
    public var gpuUpgrades: [GPUUpgrade]
    /// Limits in force when the config sets none (the policy's detection defaults).
    public var defaultEpochTimeout: PolicyDuration
    public var defaultTotalTimeout: PolicyDuration
    /// `scaleLearningRate` stops here (`remediation.minLearningRate`).
    public var minLearningRate: Double = 0

    public init(
        defaultMemoryRequest: UInt64 = 8 << 30,
        maxMemoryRequest: UInt64 = 0,
        observedMemoryLimit: UInt64 = 0,
        gpuUpgrades: [GPUUpgrade] = RemediationPolicy().gpuUpgrades,
        defaultEpochTimeout: PolicyDuration = .minutes(15),
        defaultTotalTimeout: PolicyDuration = .hours(2),
        minLearningRate: Double = 0
    ) {
        self.minLearningRate = minLearningRate
        self.defaultMemoryRequest = defaultMemoryRequest
        self.maxMemoryRequest = maxMemoryRequest
        self.observedMemoryLimit = observedMemoryLimit
        self.gpuUpgrades = gpuUpgrades
        self.defaultEpochTimeout = defaultEpochTimeout
        self.defaultTotalTimeout = defaultTotalTimeout
    }
}

/// The config a rung produces, and what changed in words.
public struct ConfigChange: Sendable, Hashable {
    public var config: TrainingConfig
    /// e.g. "batchSize 64 -> 32, gradientAccumulationSteps 1 -> 2"; empty when the config is unchanged.
    public var summary: String
}

/// The rung chosen for a failure.
public struct LadderStep: Sendable, Hashable {
    /// 0-based index of the rung in its ladder.
    public var index: Int
    public var remedy: Remedy
    public var change: ConfigChange
    /// Rungs passed over because they could not apply (e.g. batch already 1).
    public var skipped: [Remedy]
}

/// One ladder per symptom, one rung per attempt: picks the next rung that can still change something.
public enum RemediationLadder {
    /// The first rung at or after `position` that applies to `config`; nil when the ladder is used up.
    public static func next(_ ladder: LadderPolicy, position: Int, config: TrainingConfig, context: RemediationContext) -> LadderStep? {
        var skipped: [Remedy] = []
        var index = max(0, position)
        while index < ladder.steps.count {
            let remedy = ladder.steps[index]
            if let change = remedy.apply(to: config, context: context) {
                return LadderStep(index: index, remedy: remedy, change: change, skipped: skipped)
            }
            skipped.append(remedy)
            index += 1
        }
        return nil
    }
}

extension Remedy {
    /// The config this rung produces; nil when it cannot change anything (batch already 1, mixed precision already on).
    public func apply(to config: TrainingConfig, context: RemediationContext) -> ConfigChange? {
        var next = config
        switch self {
        case .restart, .replace:
            return ConfigChange(config: config, summary: "")
        case .halveBatch:
            guard let (batch, accumulation) = Self.halved(batch: config.batchSize, accumulation: config.gradientAccumulationSteps) else {
                return nil
            }
            next.batchSize = batch
            next.gradientAccumulationSteps = accumulation
        case .raiseMemory(let factor):
            let gpu = config.resources.gpuClass
            if !gpu.isEmpty, config.resources.gpuCount > 0, let upgrade = context.gpuUpgrades.first(where: { $0.from == gpu }) {
                next.resources.gpuClass = upgrade.to
            } else {
                let current = config.resources.memoryBytes > 0
                    ? config.resources.memoryBytes
                    : (context.observedMemoryLimit > 0 ? context.observedMemoryLimit : context.defaultMemoryRequest)
                var raised = UInt64(min(Double(current) * factor, 1.8e19))
                if context.maxMemoryRequest > 0 { raised = min(raised, context.maxMemoryRequest) }
                guard raised > current else { return nil }
                next.resources.memoryBytes = raised
                return ConfigChange(
                    config: next,
                    summary: "resources.memory \(ByteCount.human(current))\(config.resources.memoryBytes == 0 ? " (unset)" : "") -> \(ByteCount.human(raised))")
            }
        case .scaleLearningRate(let factor):
            next.learningRate = Swift.max(Self.clean(config.learningRate * factor), context.minLearningRate)
            guard next.learningRate > 0, next.learningRate != config.learningRate else { return nil }
        case .exponentialDecay(let rate, let steps):
            guard config.lrSchedule.kind != .exponential else { return nil }
            next.lrSchedule = LRSchedule(kind: .exponential, decayRate: rate, decaySteps: steps)
        case .gradientClipping(let maxNorm):
            if config.gradientClipping.enabled, config.gradientClipping.maxNorm <= maxNorm { return nil }
            next.gradientClipping = GradientClipping(enabled: true, maxNorm: maxNorm)
        case .extendTimeouts(let factor, let maxPerEpoch, let maxTotal):
            let epoch = config.timeouts.perEpochSeconds > 0 ? Int64(config.timeouts.perEpochSeconds) : context.defaultEpochTimeout.seconds
            let total = config.timeouts.totalSeconds > 0 ? Int64(config.timeouts.totalSeconds) : context.defaultTotalTimeout.seconds
            let newEpoch = max(epoch, min(Int64(Double(epoch) * factor), maxPerEpoch.seconds))
            let newTotal = max(total, min(Int64(Double(total) * factor), maxTotal.seconds))
            guard newEpoch > epoch || newTotal > total else { return nil }
            next.timeouts.perEpochSeconds = Int(newEpoch)
            next.timeouts.totalSeconds = Int(newTotal)
        case .mixedPrecision:
            guard !config.mixedPrecision else { return nil }
            next.mixedPrecision = true
        case .dataQualityCheck:
            // Applies even when the check is already on: the rung's point is also to escalate.
            next.dataQualityCheck = true
        }
        return ConfigChange(config: next, summary: config.changes(to: next).joined(separator: ", "))
    }

    /// Batch ÷2 (or the largest divisor of the effective batch below half) with accumulation raised so that
    /// batch × accumulation stays exactly the same; nil when the batch is already 1.
    public static func halved(batch: Int, accumulation: Int) -> (batch: Int, accumulation: Int)? {
        guard batch >= 2, accumulation >= 1 else { return nil }
        let (effective, overflow) = batch.multipliedReportingOverflow(by: accumulation)
        guard !overflow else { return nil }
        if batch % 2 == 0 { return (batch / 2, accumulation * 2) }
        var candidate = batch / 2
        while candidate > 1, effective % candidate != 0 { candidate -= 1 }
        return (candidate, effective / candidate)
    }

    /// Removes binary noise from a product like 0.01 × 0.1 (= 0.0010000000000000002).
    static func clean(_ value: Double) -> Double {
        guard value.isFinite, value != 0 else { return value }
        var scale = 1.0
        while abs(value * scale) < 1e11 { scale *= 10 }
        while abs(value * scale) >= 1e12 { scale /= 10 }
        return (value * scale).rounded() / scale
    }
}

extension TrainingConfig {
    /// Fields that differ, as "name old -> new".
    func changes(to new: TrainingConfig) -> [String] {
        var out: [String] = []
        func add<T: Equatable>(_ name: String, _ a: T, _ b: T, _ text: (T) -> String) {
            if a != b { out.append("\(name) \(text(a)) -> \(text(b))") }
        }
        add("batchSize", batchSize, new.batchSize) { "\($0)" }
        add("gradientAccumulationSteps", gradientAccumulationSteps, new.gradientAccumulationSteps) { "\($0)" }
        add("learningRate", learningRate, new.learningRate) { "\($0)" }
        add("lrSchedule", lrSchedule, new.lrSchedule) { s in
            switch s.kind {
            case .constant: "constant"
            case .exponential, .step: "\(s.kind.rawValue) (decay \(s.decayRate.compact) every \(s.decaySteps) steps)"
            case .cosine: "cosine"
            }
        }
        add("gradientClipping", gradientClipping, new.gradientClipping) { $0.enabled ? "maxNorm \($0.maxNorm.compact)" : "off" }
        add("mixedPrecision", mixedPrecision, new.mixedPrecision) { "\($0)" }
        add("timeouts.perEpoch", timeouts.perEpochSeconds, new.timeouts.perEpochSeconds) { PolicyDuration.seconds(Int64($0)).description }
        add("timeouts.total", timeouts.totalSeconds, new.timeouts.totalSeconds) { PolicyDuration.seconds(Int64($0)).description }
        add("timeouts.heartbeat", timeouts.heartbeatSeconds, new.timeouts.heartbeatSeconds) { PolicyDuration.seconds(Int64($0)).description }
        add("resources.memory", resources.memoryBytes, new.resources.memoryBytes) { ByteCount.human($0) }
        add("resources.gpuClass", resources.gpuClass, new.resources.gpuClass) { $0.isEmpty ? "none" : $0 }
        add("dataQualityCheck", dataQualityCheck, new.dataQualityCheck) { "\($0)" }
        add("epochs", epochs, new.epochs) { "\($0)" }
        add("dataSubset", dataSubset, new.dataSubset) { "\($0)" }
        return out
    }
}
