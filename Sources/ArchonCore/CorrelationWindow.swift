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
/// Queries count distinct jobs or nodes, never events: one flaky job retrying is one job. Each observation is
/// stored with its job (``observations(of:)``), so the window is rebuilt from the jobs after a restart.
public struct CorrelationWindow: Codable, Sendable, Hashable {
    /// Failures within the longest rule window, in the order recorded (oldest first).
    public private(set) var failures: [FailureObservation] = []
    /// Latest healthy sign per (job, node), by job.
    public private(set) var healthy: [String: [HealthyObservation]] = [:]
    /// Latest healthy time per job kind and node: what ``healthyElsewhere(kind:excluding:since:)`` asks.
    private var healthyByKind: [String: [String: Int64]] = [:]
    /// Failures per job, for storing them with the job.
    private var failuresByJob: [String: [FailureObservation]] = [:]
    private var changedJobs: Set<String> = []

    /// Nothing observed yet.
    public init() {}

    mutating func record(_ failure: FailureObservation, keepSince: Int64) {
        prune(keepSince: keepSince)
        // Kept in (time, job, attempt) order, the order a rebuild from storage gives: nearly always an append.
        var index = failures.endIndex
        while index > failures.startIndex, Self.order(failure, failures[index - 1]) { index -= 1 }
        failures.insert(failure, at: index)
        failuresByJob[failure.jobID, default: []].append(failure)
        failuresByJob[failure.jobID]?.sort(by: Self.order)
        changedJobs.insert(failure.jobID)
    }

    /// Drops failures older than `keepSince` from the front: amortised O(1) per failure recorded.
    private mutating func prune(keepSince: Int64) {
        var drop = 0
        while drop < failures.count, failures[drop].timeMs < keepSince { drop += 1 }
        guard drop > 0 else { return }
        for old in failures[..<drop] {
            failuresByJob[old.jobID]?.removeAll { $0.timeMs < keepSince }
            if failuresByJob[old.jobID]?.isEmpty == true { failuresByJob[old.jobID] = nil }
        }
        failures.removeFirst(drop)
    }

    mutating func recordHealthy(_ sign: HealthyObservation, keepSince: Int64) {
        var signs = healthy[sign.jobID, default: []]
        signs.removeAll { $0.timeMs < keepSince || $0.nodeID == sign.nodeID }
        signs.append(sign)
        healthy[sign.jobID] = signs
        healthyByKind[sign.kind, default: [:]][sign.nodeID] = Swift.max(healthyByKind[sign.kind]?[sign.nodeID] ?? .min, sign.timeMs)
        changedJobs.insert(sign.jobID)
    }

    /// Distinct jobs, sorted, among failures since `since` that match.
    public func distinctJobs(since: Int64, where match: (FailureObservation) -> Bool) -> [String] {
        Array(Set(failures(since: since, where: match).map(\.jobID))).sorted()
    }

    /// Distinct nodes, sorted, among failures since `since` that match.
    public func distinctNodes(since: Int64, where match: (FailureObservation) -> Bool) -> [String] {
        Array(Set(failures(since: since, where: match).map(\.nodeID))).sorted()
    }

    /// Failures since `since` that match, oldest first.
    public func failures(since: Int64, where match: (FailureObservation) -> Bool) -> [FailureObservation] {
        failures.filter { $0.timeMs >= since && match($0) }
    }

    /// Whether a job of `kind` was healthy on a node other than `node` since `since`.
    public func healthyElsewhere(kind: String, excluding node: String, since: Int64) -> Bool {
        healthyByKind[kind]?.contains { $0.key != node && $0.value >= since } ?? false
    }

    // MARK: Storage

    /// What is stored with a job: its failures and healthy signs still in the window.
    func observations(of jobID: String) -> (failures: [FailureObservation], healthy: [HealthyObservation]) {
        (failuresByJob[jobID] ?? [], healthy[jobID] ?? [])
    }

    /// Forgets a job's observations (it left the hot state).
    mutating func forget(_ jobID: String) {
        failures.removeAll { $0.jobID == jobID }
        failuresByJob[jobID] = nil
        healthy[jobID] = nil
        changedJobs.insert(jobID)
    }

    /// Restores observations stored with jobs; call ``finishLoading(keepSince:)`` once all are in.
    mutating func load(failures jobFailures: [FailureObservation], healthy signs: [HealthyObservation]) {
        failures += jobFailures
        for sign in signs {
            healthy[sign.jobID, default: []].append(sign)
            healthyByKind[sign.kind, default: [:]][sign.nodeID] = Swift.max(healthyByKind[sign.kind]?[sign.nodeID] ?? .min, sign.timeMs)
        }
    }

    mutating func finishLoading(keepSince: Int64) {
        failures = failures.filter { $0.timeMs >= keepSince }.sorted(by: Self.order)
        failuresByJob = Dictionary(grouping: failures, by: \.jobID)
        changedJobs = []
    }

    private static func order(_ a: FailureObservation, _ b: FailureObservation) -> Bool {
        (a.timeMs, a.jobID, a.attempt) < (b.timeMs, b.jobID, b.attempt)
    }

    mutating func takeChangedJobs() -> Set<String> {
        defer { changedJobs = [] }
        return changedJobs
    }

    private enum CodingKeys: String, CodingKey { case failures, healthy }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        load(failures: try c.decode([FailureObservation].self, forKey: .failures),
             healthy: try c.decode([String: [HealthyObservation]].self, forKey: .healthy).values.flatMap { $0 })
        failuresByJob = Dictionary(grouping: failures, by: \.jobID)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(failures, forKey: .failures)
        try c.encode(healthy, forKey: .healthy)
    }

    public static func == (a: Self, b: Self) -> Bool { a.failures == b.failures && a.healthy == b.healthy }
    public func hash(into hasher: inout Hasher) {
        hasher.combine(failures)
        hasher.combine(healthy)
    }
}
