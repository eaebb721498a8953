/// One job failure as the fleet rules see it.
public struct FailureObservation: Codable, Sendable, Hashable {
    public var jobID: String
    public var attempt: Int
    public var nodeID: String
    public var dataset: String
    /// The job's `kind` label.
    public var kind: String
    public var symptom: Symptom
    public var timeMs: Int64
}

/// A job seen healthy (an epoch finished normally, or it completed) on a node.
public struct HealthyObservation: Codable, Sendable, Hashable {
    public var jobID: String
    public var nodeID: String
    public var kind: String
    public var timeMs: Int64
}

/// Recent failures and healthy signs across the fleet, pruned to the longest rule window.
///
/// Queries count distinct jobs or nodes, never events: one flaky job retrying is one job.
public struct CorrelationWindow: Codable, Sendable, Hashable {
    /// Failures within the longest rule window, oldest first.
    public private(set) var failures: [FailureObservation] = []
    /// Latest healthy sign per (job, node).
    public private(set) var healthy: [HealthyObservation] = []

    /// Nothing observed yet.
    public init() {}

    mutating func record(_ failure: FailureObservation, keepSince: Int64) {
        failures.removeAll { $0.timeMs < keepSince }
        failures.append(failure)
    }

    mutating func recordHealthy(_ sign: HealthyObservation, keepSince: Int64) {
        healthy.removeAll { $0.timeMs < keepSince || ($0.jobID == sign.jobID && $0.nodeID == sign.nodeID) }
        healthy.append(sign)
    }

    /// Distinct jobs, sorted, among failures since `since` that match.
    public func distinctJobs(since: Int64, where match: (FailureObservation) -> Bool) -> [String] {
        Array(Set(failures.filter { $0.timeMs >= since && match($0) }.map(\.jobID))).sorted()
    }

    /// Distinct nodes, sorted, among failures since `since` that match.
    public func distinctNodes(since: Int64, where match: (FailureObservation) -> Bool) -> [String] {
        Array(Set(failures.filter { $0.timeMs >= since && match($0) }.map(\.nodeID))).sorted()
    }

    /// Failures since `since` that match, oldest first.
    public func failures(since: Int64, where match: (FailureObservation) -> Bool) -> [FailureObservation] {
        failures.filter { $0.timeMs >= since && match($0) }
    }

    /// Whether a job of `kind` was healthy on a node other than `node` since `since`.
    public func healthyElsewhere(kind: String, excluding node: String, since: Int64) -> Bool {
        healthy.contains { $0.kind == kind && $0.nodeID != node && $0.timeMs >= since }
    }
}
