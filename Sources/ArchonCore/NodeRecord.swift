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
    /// Event time of the status applied, so an older redelivered status cannot replace a newer one.
    public internal(set) var statusTimeMs: Int64 = 0
    /// Resources above the pressure threshold in the latest status.
    public internal(set) var pressure: [ResourceKind] = []

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
