public import ArchonModel

/// One rung of a remediation ladder: the config change (or placement change) one new attempt gets.
///
/// In the policy file a rung is an object named by `action`, e.g. `{"action": "scaleLearningRate", "factor": 0.1}`.
public enum Remedy: Codable, Sendable, Hashable, CustomStringConvertible {
    /// Same config, resumed from the latest valid checkpoint.
    case restart
    /// Same config, on another node.
    case replace
    /// Batch size ÷2 and gradient accumulation ×2, so the effective batch is unchanged; never below 1.
    case halveBatch
    /// Memory request × `factor` (from the default request when none is set), or the next GPU class when the
    /// job uses a GPU class listed in `remediation.gpuUpgrades`.
    case raiseMemory(factor: Double)
    /// Learning rate × `factor`.
    case scaleLearningRate(factor: Double)
    /// An exponential learning-rate schedule: × `decayRate` every `decaySteps` steps.
    case exponentialDecay(decayRate: Double, decaySteps: Int)
    /// Gradient clipping at this global norm.
    case gradientClipping(maxNorm: Double)
    /// Per-epoch and total time limits × `factor`, capped at `maxPerEpoch` / `maxTotal`.
    case extendTimeouts(factor: Double, maxPerEpoch: PolicyDuration, maxTotal: PolicyDuration)
    /// Mixed precision on.
    case mixedPrecision
    /// Restart with the trainer's data-quality check on, and escalate at `escalateTo` at once.
    case dataQualityCheck(escalateTo: EscalationLevel)

    /// The name used as `action` in the policy file.
    public var action: String {
        switch self {
        case .restart: "restart"
        case .replace: "replace"
        case .halveBatch: "halveBatch"
        case .raiseMemory: "raiseMemory"
        case .scaleLearningRate: "scaleLearningRate"
        case .exponentialDecay: "exponentialDecay"
        case .gradientClipping: "gradientClipping"
        case .extendTimeouts: "extendTimeouts"
        case .mixedPrecision: "mixedPrecision"
        case .dataQualityCheck: "dataQualityCheck"
        }
    }

    /// What the rung does, for reasons and remediation steps.
    public var description: String {
        switch self {
        case .restart: "restart from the latest checkpoint with the same config"
        case .replace: "re-place on another node with the same config"
        case .halveBatch: "halve the batch size, double gradient accumulation"
        case .raiseMemory(let factor): "raise the memory request ×\(factor.compact) (or the next GPU class)"
        case .scaleLearningRate(let factor): "scale the learning rate ×\(factor.compact)"
        case .exponentialDecay(let rate, let steps): "add exponential LR decay (rate \(rate.compact) every \(steps) steps)"
        case .gradientClipping(let norm): "add gradient clipping (max norm \(norm.compact))"
        case .extendTimeouts(let factor, let epoch, let total):
            "extend time limits ×\(factor.compact) (caps: \(epoch) per epoch, \(total) total)"
        case .mixedPrecision: "enable mixed precision"
        case .dataQualityCheck(let level): "request a data-quality check and escalate to \(level.rawValue)"
        }
    }

    private enum Keys: String, CodingKey, CaseIterable {
        case action, factor, decayRate, decaySteps, maxNorm, maxPerEpoch, maxTotal, escalateTo
    }

    /// The keys each action takes besides `action`.
    private var parameterKeys: [Keys] {
        switch self {
        case .restart, .replace, .halveBatch, .mixedPrecision: []
        case .raiseMemory, .scaleLearningRate: [.factor]
        case .exponentialDecay: [.decayRate, .decaySteps]
        case .gradientClipping: [.maxNorm]
        case .extendTimeouts: [.factor, .maxPerEpoch, .maxTotal]
        case .dataQualityCheck: [.escalateTo]
        }
    }

    static let actions = [
        "restart", "replace", "halveBatch", "raiseMemory", "scaleLearningRate", "exponentialDecay",
        "gradientClipping", "extendTimeouts", "mixedPrecision", "dataQualityCheck",
    ]

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: Keys.self)
        let action = try c.decode(String.self, forKey: .action)
        switch action {
        case "restart": self = .restart
        case "replace": self = .replace
        case "halveBatch": self = .halveBatch
        case "mixedPrecision": self = .mixedPrecision
        case "raiseMemory": self = .raiseMemory(factor: try c.decode(Double.self, forKey: .factor))
        case "scaleLearningRate": self = .scaleLearningRate(factor: try c.decode(Double.self, forKey: .factor))
        case "exponentialDecay":
            self = .exponentialDecay(
                decayRate: try c.decode(Double.self, forKey: .decayRate),
                decaySteps: try c.decode(Int.self, forKey: .decaySteps)
            )
        case "gradientClipping": self = .gradientClipping(maxNorm: try c.decode(Double.self, forKey: .maxNorm))
        case "extendTimeouts":
            self = .extendTimeouts(
                factor: try c.decode(Double.self, forKey: .factor),
                maxPerEpoch: try c.decode(PolicyDuration.self, forKey: .maxPerEpoch),
                maxTotal: try c.decode(PolicyDuration.self, forKey: .maxTotal)
            )
        case "dataQualityCheck":
            self = .dataQualityCheck(escalateTo: try c.decode(EscalationLevel.self, forKey: .escalateTo))
        default:
            throw DecodingError.dataCorruptedError(
                forKey: .action, in: c,
                debugDescription: "unknown action \"\(action)\"; known: \(Self.actions.joined(separator: ", "))"
            )
        }
        let allowed = Set([Keys.action] + parameterKeys)
        if let extra = c.allKeys.first(where: { !allowed.contains($0) }) {
            let takes = parameterKeys.isEmpty ? "no parameters" : parameterKeys.map(\.rawValue).joined(separator: ", ")
            throw DecodingError.dataCorruptedError(
                forKey: extra, in: c,
                debugDescription: "\"\(action)\" does not take \"\(extra.rawValue)\" (takes \(takes))"
            )
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode(action, forKey: .action)
        switch self {
        case .restart, .replace, .halveBatch, .mixedPrecision:
            break
        case .raiseMemory(let factor), .scaleLearningRate(let factor):
            try c.encode(factor, forKey: .factor)
        case .exponentialDecay(let rate, let steps):
            try c.encode(rate, forKey: .decayRate)
            try c.encode(steps, forKey: .decaySteps)
        case .gradientClipping(let norm):
            try c.encode(norm, forKey: .maxNorm)
        case .extendTimeouts(let factor, let epoch, let total):
            try c.encode(factor, forKey: .factor)
            try c.encode(epoch, forKey: .maxPerEpoch)
            try c.encode(total, forKey: .maxTotal)
        case .dataQualityCheck(let level):
            try c.encode(level, forKey: .escalateTo)
        }
    }
}

extension Double {
    /// `0.1`, `2`, `1e-05`: the shortest text, without a trailing `.0`.
    var compact: String {
        if self == rounded(), abs(self) < 1e15 { return String(Int64(self)) }
        return String(self)
    }
}
