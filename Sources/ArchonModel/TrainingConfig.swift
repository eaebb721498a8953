/// How the learning rate evolves over optimiser steps.
public struct LRSchedule: Codable, Sendable, Hashable {
    public enum Kind: String, Codable, Sendable, CaseIterable {
        /// `learningRate` for every step.
        case constant
        /// `lr * decayRate ^ (step / decaySteps)`.
        case exponential
        /// Cosine annealing to 0 over the whole run.
        case cosine
        /// `lr * decayRate` every `decaySteps` steps (staircase).
        case step
    }

    public var kind: Kind
    /// Multiplier per decay period, e.g. 0.96.
    public var decayRate: Double
    /// Length of one decay period in optimiser steps, e.g. 1000.
    public var decaySteps: Int

    public init(kind: Kind = .constant, decayRate: Double = 0, decaySteps: Int = 0) {
        self.kind = kind
        self.decayRate = decayRate
        self.decaySteps = decaySteps
    }

    public static let constant = LRSchedule()

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        kind = try c.decodeIfPresent(Kind.self, forKey: .kind) ?? .constant
        decayRate = try c.decodeIfPresent(Double.self, forKey: .decayRate) ?? 0
        decaySteps = try c.decodeIfPresent(Int.self, forKey: .decaySteps) ?? 0
    }
}

/// Gradient clipping by global norm.
public struct GradientClipping: Codable, Sendable, Hashable {
    public var enabled: Bool
    /// Maximum global L2 norm, e.g. 1.0.
    public var maxNorm: Double

    public init(enabled: Bool = false, maxNorm: Double = 0) {
        self.enabled = enabled
        self.maxNorm = maxNorm
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        maxNorm = try c.decodeIfPresent(Double.self, forKey: .maxNorm) ?? 0
        // `gradientClipping: {maxNorm: 1.0}` means clipping on.
        enabled = try c.decodeIfPresent(Bool.self, forKey: .enabled) ?? (maxNorm > 0)
    }
}

/// Time limits the agent enforces on an attempt, in seconds; 0 means no limit (or the policy default).
public struct Timeouts: Codable, Sendable, Hashable {
    public var perEpochSeconds: Int
    public var totalSeconds: Int
    /// A live process silent for this long is hung; 0 = the policy default.
    public var heartbeatSeconds: Int

    public init(perEpochSeconds: Int = 0, totalSeconds: Int = 0, heartbeatSeconds: Int = 0) {
        self.perEpochSeconds = perEpochSeconds
        self.totalSeconds = totalSeconds
        self.heartbeatSeconds = heartbeatSeconds
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        perEpochSeconds = try c.decodeIfPresent(Int.self, forKey: .perEpochSeconds) ?? 0
        totalSeconds = try c.decodeIfPresent(Int.self, forKey: .totalSeconds) ?? 0
        heartbeatSeconds = try c.decodeIfPresent(Int.self, forKey: .heartbeatSeconds) ?? 0
    }
}

/// When checkpoints are written and how many are kept.
public struct CheckpointPolicy: Codable, Sendable, Hashable {
    /// Every N epochs; 0 = never by epoch.
    public var everyEpochs: Int
    /// Every N optimiser steps; 0 = never by step.
    public var everySteps: Int
    /// Newest verified checkpoints kept; 0 = all.
    public var keepLast: Int
    /// Seconds a drain, a move or an operator stop gives the trainer after SIGTERM to save a checkpoint and exit,
    /// before SIGKILL; 0 = the policy's `remediation.stopGrace`. Large models need minutes to save.
    public var stopGraceSeconds: Int
    /// A folder on storage every node mounts at this path: checkpoints go to `<sharedRoot>/<job>/attempt-<n>/` and
    /// the job may resume on any node. Empty = each node's own checkpoint storage.
    public var sharedRoot: String

    public init(everyEpochs: Int = 1, everySteps: Int = 0, keepLast: Int = 3, stopGraceSeconds: Int = 0, sharedRoot: String = "") {
        self.everyEpochs = everyEpochs
        self.everySteps = everySteps
        self.keepLast = keepLast
        self.stopGraceSeconds = stopGraceSeconds
        self.sharedRoot = sharedRoot
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = CheckpointPolicy()
        everyEpochs = try c.decodeIfPresent(Int.self, forKey: .everyEpochs) ?? d.everyEpochs
        everySteps = try c.decodeIfPresent(Int.self, forKey: .everySteps) ?? d.everySteps
        keepLast = try c.decodeIfPresent(Int.self, forKey: .keepLast) ?? d.keepLast
        stopGraceSeconds = try c.decodeIfPresent(Int.self, forKey: .stopGraceSeconds) ?? d.stopGraceSeconds
        sharedRoot = try c.decodeIfPresent(String.self, forKey: .sharedRoot) ?? d.sharedRoot
    }
}

/// What a job needs from a node.
public struct Resources: Codable, Sendable, Hashable {
    public var memoryBytes: UInt64
    public var cpuCores: Double
    /// e.g. "a100-40gb"; empty = no GPU.
    public var gpuClass: String
    public var gpuCount: Int
    public var diskBytes: UInt64

    public init(memoryBytes: UInt64 = 0, cpuCores: Double = 0, gpuClass: String = "", gpuCount: Int = 0, diskBytes: UInt64 = 0) {
        self.memoryBytes = memoryBytes
        self.cpuCores = cpuCores
        self.gpuClass = gpuClass
        self.gpuCount = gpuCount
        self.diskBytes = diskBytes
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        memoryBytes = try c.decodeIfPresent(UInt64.self, forKey: .memoryBytes) ?? 0
        cpuCores = try c.decodeIfPresent(Double.self, forKey: .cpuCores) ?? 0
        gpuClass = try c.decodeIfPresent(String.self, forKey: .gpuClass) ?? ""
        gpuCount = try c.decodeIfPresent(Int.self, forKey: .gpuCount) ?? 0
        diskBytes = try c.decodeIfPresent(UInt64.self, forKey: .diskBytes) ?? 0
    }
}

/// Every knob the runbook turns. Its JSON form is the `ARCHON_CONFIG` file a trainer reads.
///
/// Decoding fills absent fields with defaults, so a job spec names only what it sets.
public struct TrainingConfig: Codable, Sendable, Hashable {
    public var batchSize: Int
    public var gradientAccumulationSteps: Int
    public var learningRate: Double
    public var lrSchedule: LRSchedule
    public var gradientClipping: GradientClipping
    public var mixedPrecision: Bool
    public var epochs: Int
    /// Fraction of the dataset, 0 < x <= 1; 0 = all.
    public var dataSubset: Double
    public var timeouts: Timeouts
    public var checkpoint: CheckpointPolicy
    public var resources: Resources
    /// Dataset registry id.
    public var dataset: String
    /// Set by remediation after suspected bad data: the trainer validates its data first.
    public var dataQualityCheck: Bool
    public var hyperparameters: [String: String]
    public var seed: UInt64

    public init(
        batchSize: Int = 32,
        gradientAccumulationSteps: Int = 1,
        learningRate: Double = 0.01,
        lrSchedule: LRSchedule = .constant,
        gradientClipping: GradientClipping = GradientClipping(),
        mixedPrecision: Bool = false,
        epochs: Int = 1,
        dataSubset: Double = 0,
        timeouts: Timeouts = Timeouts(),
        checkpoint: CheckpointPolicy = CheckpointPolicy(),
        resources: Resources = Resources(),
        dataset: String = "",
        dataQualityCheck: Bool = false,
        hyperparameters: [String: String] = [:],
        seed: UInt64 = 0
    ) {
        self.batchSize = batchSize
        self.gradientAccumulationSteps = gradientAccumulationSteps
        self.learningRate = learningRate
        self.lrSchedule = lrSchedule
        self.gradientClipping = gradientClipping
        self.mixedPrecision = mixedPrecision
        self.epochs = epochs
        self.dataSubset = dataSubset
        self.timeouts = timeouts
        self.checkpoint = checkpoint
        self.resources = resources
        self.dataset = dataset
        self.dataQualityCheck = dataQualityCheck
        self.hyperparameters = hyperparameters
        self.seed = seed
    }

    /// Samples per optimiser step: what the OOM ladder keeps constant.
    public var effectiveBatchSize: Int { batchSize * gradientAccumulationSteps }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = TrainingConfig()
        batchSize = try c.decodeIfPresent(Int.self, forKey: .batchSize) ?? d.batchSize
        gradientAccumulationSteps = try c.decodeIfPresent(Int.self, forKey: .gradientAccumulationSteps) ?? d.gradientAccumulationSteps
        learningRate = try c.decodeIfPresent(Double.self, forKey: .learningRate) ?? d.learningRate
        lrSchedule = try c.decodeIfPresent(LRSchedule.self, forKey: .lrSchedule) ?? d.lrSchedule
        gradientClipping = try c.decodeIfPresent(GradientClipping.self, forKey: .gradientClipping) ?? d.gradientClipping
        mixedPrecision = try c.decodeIfPresent(Bool.self, forKey: .mixedPrecision) ?? d.mixedPrecision
        epochs = try c.decodeIfPresent(Int.self, forKey: .epochs) ?? d.epochs
        dataSubset = try c.decodeIfPresent(Double.self, forKey: .dataSubset) ?? d.dataSubset
        timeouts = try c.decodeIfPresent(Timeouts.self, forKey: .timeouts) ?? d.timeouts
        checkpoint = try c.decodeIfPresent(CheckpointPolicy.self, forKey: .checkpoint) ?? d.checkpoint
        resources = try c.decodeIfPresent(Resources.self, forKey: .resources) ?? d.resources
        dataset = try c.decodeIfPresent(String.self, forKey: .dataset) ?? d.dataset
        dataQualityCheck = try c.decodeIfPresent(Bool.self, forKey: .dataQualityCheck) ?? d.dataQualityCheck
        hyperparameters = try c.decodeIfPresent([String: String].self, forKey: .hyperparameters) ?? d.hyperparameters
        seed = try c.decodeIfPresent(UInt64.self, forKey: .seed) ?? d.seed
    }
}
