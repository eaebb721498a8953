public import ArchonModel

/// Every threshold, ladder, rule and escalation level the core applies.
///
/// `Policy()` is ``runbookDefaults``: the values of the training-failures runbook. A policy file names only
/// what it changes (see ``Policy/parse(_:fileName:)`` and `docs/policy.md`).
public struct Policy: Codable, Sendable, Hashable {
    public var detection = DetectionPolicy()
    public var remediation = RemediationPolicy()
    public var correlation = CorrelationPolicy()
    public var escalation = EscalationPolicy()
    public var validation = ValidationPolicy()
    public var retention = RetentionPolicy()

    public init() {}

    /// The runbook's values.
    public static let runbookDefaults = Policy()
}

// MARK: - Detection

/// Per-job symptom thresholds.
public struct DetectionPolicy: Codable, Sendable, Hashable {
    /// A job (or a restart) not started this long after it was queued is stuck queued.
    public var queueTimeout = PolicyDuration.minutes(10)
    /// No progress this long while alive is a hang, unless the job sets `timeouts.heartbeatSeconds`.
    public var heartbeatWindow = PolicyDuration.minutes(10)
    /// Per-epoch limit unless the job sets `timeouts.perEpochSeconds`.
    public var epochTimeout = PolicyDuration.minutes(15)
    /// Per-attempt limit unless the job sets `timeouts.totalSeconds`.
    public var totalTimeout = PolicyDuration.hours(2)
    /// A node not heard from this long is lost; its jobs are re-placed.
    public var nodeSilence = PolicyDuration.minutes(2)
    /// Memory used at or above this fraction of the job's limit is out of memory.
    public var memoryLimitFraction = 1.0
    /// Usage above this fraction of memory, disk or GPU memory is resource pressure.
    public var resourcePressureThreshold = 0.9
    public var divergence = DivergencePolicy()
    public var poorPerformance = PoorPerformancePolicy()

    public init() {}
}

/// When a loss curve counts as diverging.
public struct DivergencePolicy: Codable, Sendable, Hashable {
    /// Consecutive epoch-over-epoch loss increases that count as rising; 0 turns the check off.
    public var risingEpochs = 3
    /// …by at least this fraction over the run (loss 1.0 → 1.001 → 1.002 → 1.003 is noise, not divergence).
    public var minRelativeRise = 0.05
    /// An epoch loss above `spikeFactor` × the median of the previous `spikeWindow` epochs is a spike.
    public var spikeFactor = 3.0
    public var spikeWindow = 5
    /// Previous epochs needed before spikes are judged.
    public var spikeMinSamples = 3

    public init() {}
}

/// When training counts as performing poorly (a notice, never a restart).
public struct PoorPerformancePolicy: Codable, Sendable, Hashable {
    /// Smallest loss decrease that counts as an improvement.
    public var minImprovement = 0.01
    /// Consecutive epochs without improvement before the notice.
    public var patienceEpochs = 3
    /// Validation loss above this multiple of training loss is "validation far worse than training".
    public var validationGapRatio = 2.0

    public init() {}
}

// MARK: - Remediation

/// Per-job remediation: one ladder per symptom, budgets and backoff.
public struct RemediationPolicy: Codable, Sendable, Hashable {
    /// Restarts of one job, all symptoms together.
    public var maxRestartsPerJob = 10
    public var backoff = BackoffPolicy()
    /// The memory request `raiseMemory` starts from when the job sets none and none was observed.
    public var defaultMemoryRequest = ByteCount.gibibytes(8)
    /// Highest memory request `raiseMemory` may set; 0 = the largest node in the fleet.
    public var maxMemoryRequest = ByteCount(bytes: 0)
    /// GPU classes `raiseMemory` moves a job to, in order.
    public var gpuUpgrades: [GPUUpgrade] = [
        GPUUpgrade(from: "t4-16gb", to: "a10-24gb"),
        GPUUpgrade(from: "a10-24gb", to: "a100-40gb"),
        GPUUpgrade(from: "a100-40gb", to: "a100-80gb"),
        GPUUpgrade(from: "a100-80gb", to: "h100-80gb"),
        GPUUpgrade(from: "h100-80gb", to: "h200-141gb"),
    ]
    public var ladders = Ladders()
    /// How long a re-placed job keeps avoiding the nodes it failed on; after that every node is a candidate
    /// again (a node fault may have been repaired, and an avoid list must never strand a job for good).
    public var avoidNodesFor = PolicyDuration.hours(1)
    /// How long a drain, a move off a bad node or an operator stop gives a healthy attempt after SIGTERM to save a
    /// checkpoint and exit, before SIGKILL; the next attempt resumes from that checkpoint. A job's
    /// `checkpoint.stopGraceSeconds` overrides it.
    public var stopGrace = PolicyDuration.minutes(2)
    /// How long a job whose newest checkpoint lies on one node's local storage waits for that node (no room yet, or
    /// not heard from) before it resumes from an older checkpoint readable elsewhere, or starts from scratch; 0 =
    /// never wait. Shorter than `detection.queueTimeout`.
    public var checkpointNodeWait = PolicyDuration.minutes(2)
    /// `scaleLearningRate` never goes below this: at the floor the step is skipped, saying so.
    public var minLearningRate = 1e-7
    /// A job whose attempt has made progress this long gets its restart budget and ladder positions back: a
    /// failure a week later is a new episode, not the eleventh restart. 0 = never.
    public var restartBudgetResetAfter = PolicyDuration.hours(6)

    public init() {}
}

/// How long finished things stay in the controller's hot state.
public struct RetentionPolicy: Codable, Sendable, Hashable {
    /// Completed, failed and stopped jobs, and resolved incidents, move to the archive this long after they
    /// ended; `archon job show` and `incident show` still read them there.
    public var finished = PolicyDuration.hours(24 * 7)

    public init() {}
}

/// Delay before a restart: `initial × multiplier^restartsSoFar`, at most `max`. Re-placements are immediate.
public struct BackoffPolicy: Codable, Sendable, Hashable {
    public var initial = PolicyDuration.seconds(10)
    public var multiplier = 2.0
    public var max = PolicyDuration.minutes(5)

    public init() {}

    public init(initial: PolicyDuration, multiplier: Double, max: PolicyDuration) {
        self.initial = initial
        self.multiplier = multiplier
        self.max = max
    }

    /// The delay before restart number `restartsSoFar + 1`.
    public func delay(restartsSoFar: Int) -> Int64 {
        guard initial.milliseconds > 0 else { return 0 }
        var value = Double(initial.milliseconds)
        for _ in 0..<Swift.max(0, restartsSoFar) {
            value *= multiplier
            if value >= Double(max.milliseconds) { break }
        }
        return Swift.min(Int64(value), Swift.max(max.milliseconds, initial.milliseconds))
    }
}

/// A GPU class and the next larger one.
public struct GPUUpgrade: Codable, Sendable, Hashable {
    public var from: String
    public var to: String

    public init(from: String, to: String) {
        self.from = from
        self.to = to
    }
}

/// The steps tried for one symptom, one per attempt, and where it goes when they are used up.
public struct LadderPolicy: Codable, Sendable, Hashable {
    public var steps: [Remedy]
    /// Level of the job's incident when no step is left (or none applies).
    public var escalateTo: EscalationLevel
    public var severity: Severity

    public init(steps: [Remedy], escalateTo: EscalationLevel = .l1, severity: Severity = .high) {
        self.steps = steps
        self.escalateTo = escalateTo
        self.severity = severity
    }
}

/// One ladder per remediable symptom.
public struct Ladders: Codable, Sendable, Hashable {
    public var outOfMemory = LadderPolicy(steps: [.halveBatch, .halveBatch, .raiseMemory(factor: 2)])
    public var divergingLoss = LadderPolicy(steps: [
        .scaleLearningRate(factor: 0.1),
        .exponentialDecay(decayRate: 0.96, decaySteps: 1000),
        .gradientClipping(maxNorm: 1.0),
        .dataQualityCheck(escalateTo: .l2),
    ])
    public var timeout = LadderPolicy(steps: [
        .extendTimeouts(factor: 2, maxPerEpoch: .minutes(30), maxTotal: .hours(4)),
        .mixedPrecision,
    ])
    public var crash = LadderPolicy(steps: [.restart, .restart, .restart])
    public var hang = LadderPolicy(steps: [.restart, .restart, .restart])
    public var nodeFault = LadderPolicy(steps: [.replace, .replace])
    public var stuckQueued = LadderPolicy(steps: [.replace])
    /// Retrying cannot fix bad data.
    public var dataCorruption = LadderPolicy(steps: [], escalateTo: .l2)
    /// Never retried: escalated at once with the ready datasets.
    public var datasetNotFound = LadderPolicy(steps: [])
    /// Never retried: a security concern.
    public var permissionDenied = LadderPolicy(steps: [], escalateTo: .l2, severity: .critical)

    public init() {}

    /// The ladder for a symptom; nil for notices (poor performance, resource pressure), which never restart.
    public func ladder(for symptom: Symptom) -> LadderPolicy? {
        switch symptom {
        case .outOfMemory: outOfMemory
        case .divergingLoss: divergingLoss
        case .timeout: timeout
        case .crash: crash
        case .hang: hang
        case .nodeFault: nodeFault
        case .stuckQueued: stuckQueued
        case .dataCorruption: dataCorruption
        case .datasetNotFound: datasetNotFound
        case .permissionDenied: permissionDenied
        case .poorPerformance, .resourcePressure: nil
        }
    }
}

// MARK: - Correlation

/// Fleet-wide rules: what no single-job tool sees.
public struct CorrelationPolicy: Codable, Sendable, Hashable {
    public var badNode = BadNodeRule()
    public var nodeResource = NodeResourceRule()
    public var badDataset = BadDatasetRule()
    public var systemResource = SystemResourceRule()
    public var multiAgent = MultiAgentRule()
    public var security = SecurityRule()

    public init() {}
}

/// ≥ `minDistinctJobs` jobs fail on one node within `window` while jobs of the same kinds are healthy elsewhere.
public struct BadNodeRule: Codable, Sendable, Hashable {
    public var enabled = true
    public var minDistinctJobs = 3
    public var window = PolicyDuration.minutes(30)
    /// Each failing job kind (label `kind`) must have a healthy epoch or a completion on another node in the window.
    public var requireHealthyElsewhere = true
    public var symptoms: [Symptom] = [.crash, .hang, .outOfMemory, .timeout, .nodeFault, .stuckQueued]
    public var level = EscalationLevel.l3
    public var severity = Severity.high

    public init() {}
}

/// One job failing for its node's storage (the agent's `node_fault` naming a ``NodeResourceFault``: disk full, checkpoint
/// folder not writable) is enough to blame the node: it is reported in its bad-node incident (cordoned when `cordon`),
/// and the job moves to another node without using a rung or a restart.
public struct NodeResourceRule: Codable, Sendable, Hashable {
    /// Off: such a failure is an ordinary `nodeFault` (its ladder, its restarts).
    public var enabled = true
    /// Cordon the node at once; an operator uncordons it once it has room again.
    public var cordon = true
    public var level = EscalationLevel.l3
    public var severity = Severity.high

    public init() {}
}

/// ≥ `minDistinctJobs` jobs reading one dataset fail with data-related or divergence symptoms within `window`.
public struct BadDatasetRule: Codable, Sendable, Hashable {
    public var enabled = true
    public var minDistinctJobs = 2
    public var window = PolicyDuration.hours(1)
    public var symptoms: [Symptom] = [.dataCorruption, .datasetNotFound, .divergingLoss]
    public var level = EscalationLevel.l2
    public var severity = Severity.high

    public init() {}
}

/// More than `nodeFraction` of nodes (and at least `minNodes`) above `threshold` on one resource, or one
/// resource symptom failing on ≥ `minDistinctNodes` nodes (and as many distinct jobs) within `window`.
public struct SystemResourceRule: Codable, Sendable, Hashable {
    public var enabled = true
    public var threshold = 0.9
    public var nodeFraction = 0.25
    /// Guards a one- or two-node fleet against calling one hot node "system-wide".
    public var minNodes = 2
    public var minDistinctNodes = 3
    /// Failures must also span at least this fraction of the online nodes: three OOMs on a 500-node fleet are
    /// routine, not a fleet-wide shortage.
    public var failureNodeFraction = 0.1
    public var window = PolicyDuration.minutes(30)
    public var symptoms: [Symptom] = [.outOfMemory, .timeout]
    public var level = EscalationLevel.l3
    public var severity = Severity.critical

    public init() {}
}

/// Failures on ≥ `minDistinctNodes` agents (and as many distinct jobs) within `window` that no other rule explains.
public struct MultiAgentRule: Codable, Sendable, Hashable {
    public var enabled = true
    /// Capped at the online nodes (floor 2): on a two-node fleet both failing is every agent affected.
    public var minDistinctNodes = 3
    /// The agents must also be at least this fraction of the online nodes (a few failures at once are routine on a
    /// large fleet).
    public var nodeFraction = 0.05
    public var window = PolicyDuration.minutes(5)
    public var level = EscalationLevel.l2
    public var severity = Severity.high

    public init() {}
}

/// Permission denied across ≥ `permissionDeniedJobs` jobs within `window`, or events failing authenticity checks.
public struct SecurityRule: Codable, Sendable, Hashable {
    public var enabled = true
    public var permissionDeniedJobs = 2
    public var window = PolicyDuration.hours(1)
    public var level = EscalationLevel.l2
    public var severity = Severity.critical

    public init() {}
}

// MARK: - Escalation

/// The on-call levels and how incidents are presented.
public struct EscalationPolicy: Codable, Sendable, Hashable {
    public var levels = LevelTable()
    /// Poor performance and resource pressure: an incident that informs and never climbs.
    public var notices = NoticePolicy()
    /// Lines of the job's output kept in an incident.
    public var logTailLines = 20
    /// An acknowledged incident still open this long after its acknowledgement pages its level again and climbs from
    /// there (PagerDuty's acknowledgement timeout); 0 = an acknowledgement never expires.
    public var ackTimeout = PolicyDuration.minutes(30)
    /// A job's incident resolves itself once the job has run, reporting progress, this long on a new attempt; it also
    /// resolves when the job completes or is stopped, and a stuck-queued one when the job starts. 0 = only then.
    public var resolveAfterHealthy = PolicyDuration.minutes(10)
    /// A job's own page (opening or worse) waits this long for a fleet incident that may explain its failure
    /// (Alertmanager's group_wait): explained by then, it is attached and pages nobody. 0 = page at once.
    public var groupWait = PolicyDuration.seconds(30)
    /// The runbook's quick-fix table, against which fixes are measured (`/metrics`, post-incident reports).
    public var quickFixTargets = QuickFixTargets()

    public init() {}
}

/// Who answers at a level, and how soon.
public struct LevelPolicy: Codable, Sendable, Hashable {
    public var contact: String
    /// Unacknowledged this long, the incident climbs to the next level.
    public var responseTime: PolicyDuration

    public init(contact: String, responseTime: PolicyDuration) {
        self.contact = contact
        self.responseTime = responseTime
    }
}

/// L1…L4, keyed `"L1"`…`"L4"` in the policy file.
public struct LevelTable: Codable, Sendable, Hashable {
    public var l1 = LevelPolicy(contact: "ML Ops Team", responseTime: .minutes(15))
    public var l2 = LevelPolicy(contact: "Senior ML Engineer", responseTime: .hours(1))
    public var l3 = LevelPolicy(contact: "Platform Engineering", responseTime: .hours(2))
    public var l4 = LevelPolicy(contact: "VP Engineering", responseTime: .hours(4))

    public init() {}

    enum CodingKeys: String, CodingKey {
        case l1 = "L1", l2 = "L2", l3 = "L3", l4 = "L4"
    }

    public subscript(level: EscalationLevel) -> LevelPolicy {
        get {
            switch level {
            case .l1: l1
            case .l2: l2
            case .l3: l3
            case .l4: l4
            }
        }
        set {
            switch level {
            case .l1: l1 = newValue
            case .l2: l2 = newValue
            case .l3: l3 = newValue
            case .l4: l4 = newValue
            }
        }
    }
}

/// Level and severity of notices.
public struct NoticePolicy: Codable, Sendable, Hashable {
    public var level = EscalationLevel.l1
    public var severity = Severity.warning

    public init() {}
}

// MARK: - Validation

/// Pre-training validation of job specs.
public struct ValidationPolicy: Codable, Sendable, Hashable {
    /// Learning rates must be in (0, maxLearningRate).
    public var maxLearningRate = 10.0
    /// Every job must name a dataset.
    public var requireDataset = false
    /// Once nodes are known, some node must be able to hold the job's request.
    public var requireCapacity = true
    /// The programs a job's `command[0]` may name: program names (looked up in the agent's `PATH`), absolute paths,
    /// or directories ending in `/` (see ``ExecutionRules``). Agents enforce their own list too.
    public var entrypoints = ExecutionRules.defaultEntrypoints
    /// Environment variables a job may not set: names, or prefixes ending in `*`.
    public var deniedEnvironment = ExecutionRules.defaultDeniedEnvironment

    public init() {}

    /// The entrypoint and environment rules, as the agents apply them.
    public var executionRules: ExecutionRules { ExecutionRules(entrypoints: entrypoints, deniedEnvironment: deniedEnvironment) }
}
