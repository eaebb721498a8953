public import ArchonModel

/// What the core recognised: every runbook symptom, including those that are not process failures.
///
/// Ladders, correlation rules and incidents are keyed by symptom. The raw values are the names used in the
/// policy file (`remediation.ladders.outOfMemory`, `correlation.badNode.symptoms`).
public enum Symptom: String, Codable, Sendable, CaseIterable, Comparable {
    /// No start within the queue timeout of being queued.
    case stuckQueued
    /// Unexpected exit, fatal signal, or exit 0 with epochs missing.
    case crash
    /// Alive but no progress within the heartbeat window.
    case hang
    /// OOM kill, `MemoryError`, CUDA out of memory, or memory at the limit.
    case outOfMemory
    /// NaN/Inf, loss rising over a window, or a spike above k× the recent median.
    case divergingLoss
    /// An epoch or the whole attempt over its limit.
    case timeout
    /// The dataset path or id does not exist.
    case datasetNotFound
    /// EACCES/EPERM on data, checkpoints or credentials.
    case permissionDenied
    /// The dataset is present but unreadable or invalid.
    case dataCorruption
    /// The node could not run the process, or went silent.
    case nodeFault
    /// No improvement for several epochs, or validation far worse than training (a notice).
    case poorPerformance
    /// Memory, disk or GPU memory above the pressure threshold (a notice).
    case resourcePressure

    /// The symptom an agent's failure class stands for; nil for `.none`.
    public init?(_ failureClass: FailureClass) {
        switch failureClass {
        case .none: return nil
        case .outOfMemory: self = .outOfMemory
        case .divergingLoss: self = .divergingLoss
        case .datasetNotFound: self = .datasetNotFound
        case .permissionDenied: self = .permissionDenied
        case .timeout: self = .timeout
        case .hang: self = .hang
        case .crash: self = .crash
        case .dataCorruption: self = .dataCorruption
        case .nodeFault: self = .nodeFault
        // The core answers it before classifying an exit (another checkpoint, or a fresh start); it reaches here
        // only from an attempt that resumed from no checkpoint the core chose, which makes it an unexplained crash.
        case .checkpointUnavailable: self = .crash
        }
    }

    /// The wire failure class recorded in remediation steps and attempt history.
    public var failureClass: FailureClass {
        switch self {
        case .stuckQueued, .nodeFault: .nodeFault
        case .crash: .crash
        case .hang: .hang
        case .outOfMemory: .outOfMemory
        case .divergingLoss: .divergingLoss
        case .timeout: .timeout
        case .datasetNotFound: .datasetNotFound
        case .permissionDenied: .permissionDenied
        case .dataCorruption: .dataCorruption
        case .poorPerformance, .resourcePressure: .none
        }
    }

    /// The runbook's words for it.
    public var title: String {
        switch self {
        case .stuckQueued: "job stuck queued"
        case .crash: "crash mid-training"
        case .hang: "hang: metrics stopped"
        case .outOfMemory: "out of memory"
        case .divergingLoss: "diverging loss"
        case .timeout: "timeout"
        case .datasetNotFound: "dataset not found"
        case .permissionDenied: "permission denied"
        case .dataCorruption: "data corruption"
        case .nodeFault: "node fault"
        case .poorPerformance: "poor training performance"
        case .resourcePressure: "resource pressure"
        }
    }

    public static func < (a: Symptom, b: Symptom) -> Bool { a.rawValue < b.rawValue }
}
