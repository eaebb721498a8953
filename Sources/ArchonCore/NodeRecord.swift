public import ArchonModel

/// Whether a node's agent is heard from.
public enum NodeHealth: String, Codable, Sendable, CaseIterable {
    case online
    /// Silent longer than `detection.nodeSilence`; takes no jobs until heard from again.
    case offline
}

/// Everything the core knows about one node.
public struct NodeRecord: Codable, Sendable, Hashable {
    public internal(set) var id: String
    /// The agent's latest description: capacity, usage, labels, enforcement.
    public internal(set) var status: NodeStatus
    /// Online unless silent longer than `detection.nodeSilence`.
    public internal(set) var health: NodeHealth = .online
    /// Takes no new jobs (an operator, or the bad-node rule).
    public internal(set) var cordoned = false
    /// Why it is cordoned.
    public internal(set) var cordonReason = ""
    public internal(set) var lastSeenMs: Int64
    /// When it was last heard again after a silence of a quarter of `detection.nodeSilence` or more (its agent frozen,
    /// cut off from NATS, restarted): its jobs' hang windows start over then. nil = never silent that long.
    public internal(set) var heardAgainAtMs: Int64?
    /// Event time of the status applied, so an older redelivered status cannot replace a newer one.
    public internal(set) var statusTimeMs: Int64 = 0
    /// Resources above the pressure threshold in the latest status.
    public internal(set) var pressure: [ResourceKind] = []
    /// The latest drain an operator asked for; nil when the node was never drained.
    public internal(set) var drain: NodeDrain?
    /// Failures on it before this time no longer count for the bad-node rule: it was uncordoned or its incident
    /// resolved (repaired). nil = all count.
    public internal(set) var evidenceSinceMs: Int64?

    init(id: String, at now: Int64) {
        self.id = id
        self.status = NodeStatus(nodeID: id)
        self.lastSeenMs = now
    }

    public var capacity: NodeCapacity { status.capacity }
    public var usage: NodeUsage { status.usage }
    /// Online and not cordoned.
    public var schedulable: Bool { health == .online && !cordoned }
}

/// An operator's drain of a node: it was cordoned and these attempts were moved off it (see
/// ``FleetController/drainProgress(_:)`` for where each stands).
public struct NodeDrain: Codable, Sendable, Hashable {
    public internal(set) var requestedAtMs: Int64
    public internal(set) var by: String
    public internal(set) var reason: String
    /// Each job moved, with the attempt that ran on the node.
    public internal(set) var jobs: [DrainedAttempt]
}

/// A job attempt a drain moved off its node.
public struct DrainedAttempt: Codable, Sendable, Hashable {
    public var jobID: String
    public var attempt: Int
}
