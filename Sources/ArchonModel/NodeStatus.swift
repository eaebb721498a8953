/// One GPU as seen by an agent.
public struct GPU: Codable, Sendable, Hashable {
    public var index: Int
    public var name: String
    /// Placement class, e.g. "h200-141gb".
    public var gpuClass: String
    public var memoryBytes: UInt64

    public init(index: Int, name: String, gpuClass: String, memoryBytes: UInt64) {
        self.index = index
        self.name = name
        self.gpuClass = gpuClass
        self.memoryBytes = memoryBytes
    }
}

/// What a node offers.
public struct NodeCapacity: Codable, Sendable, Hashable {
    public var cpuCores: Int
    public var memoryBytes: UInt64
    public var gpus: [GPU]
    public var diskBytes: UInt64

    public init(cpuCores: Int = 0, memoryBytes: UInt64 = 0, gpus: [GPU] = [], diskBytes: UInt64 = 0) {
        self.cpuCores = cpuCores
        self.memoryBytes = memoryBytes
        self.gpus = gpus
        self.diskBytes = diskBytes
    }
}

/// What a node currently uses.
public struct NodeUsage: Codable, Sendable, Hashable {
    /// Sum of the memory limits of running jobs.
    public var memoryReservedBytes: UInt64
    public var memoryUsedBytes: UInt64
    /// 0...1 of the whole node.
    public var cpuUtilization: Double
    public var gpuMemoryUsedBytes: UInt64
    /// 0...1, mean over GPUs.
    public var gpuUtilization: Double
    public var diskUsedBytes: UInt64
    public var runningJobs: Int

    public init(
        memoryReservedBytes: UInt64 = 0,
        memoryUsedBytes: UInt64 = 0,
        cpuUtilization: Double = 0,
        gpuMemoryUsedBytes: UInt64 = 0,
        gpuUtilization: Double = 0,
        diskUsedBytes: UInt64 = 0,
        runningJobs: Int = 0
    ) {
        self.memoryReservedBytes = memoryReservedBytes
        self.memoryUsedBytes = memoryUsedBytes
        self.cpuUtilization = cpuUtilization
        self.gpuMemoryUsedBytes = gpuMemoryUsedBytes
        self.gpuUtilization = gpuUtilization
        self.diskUsedBytes = diskUsedBytes
        self.runningJobs = runningJobs
    }
}

/// How a limit is enforced on a node.
public enum Enforcement: String, Codable, Sendable, CaseIterable {
    case unspecified
    /// Not enforced.
    case none
    case cgroupV2 = "cgroup_v2"
    case cgroupV1 = "cgroup_v1"
    /// setrlimit fallback (RLIMIT_AS for memory).
    case rlimit
    /// The agent polls usage and kills over the limit.
    case watchdog
}

/// Which limits an agent can enforce, and how.
public struct EnforcementCapabilities: Codable, Sendable, Hashable {
    public var memory: Enforcement
    public var cpu: Enforcement
    public var pids: Enforcement
    /// Explanation when something is not enforced.
    public var note: String

    public init(memory: Enforcement = .unspecified, cpu: Enforcement = .unspecified, pids: Enforcement = .unspecified, note: String = "") {
        self.memory = memory
        self.cpu = cpu
        self.pids = pids
        self.note = note
    }
}

/// An agent's description of its node, published on start and when it changes.
public struct NodeStatus: Codable, Sendable, Hashable {
    public var nodeID: String
    public var hostname: String
    public var agentVersion: String
    public var capacity: NodeCapacity
    public var usage: NodeUsage
    public var labels: [String: String]
    public var enforcement: EnforcementCapabilities
    public var startedAtMs: Int64
    public var runningJobs: [String]
    /// The agent runs assignments without checking their signature (`--insecure-unsigned-assignments`).
    public var unsignedAssignmentsAccepted: Bool
    /// Where this node writes checkpoints; nil from agents that predate it (local storage).
    public var checkpointStorage: CheckpointStorage?

    public init(
        nodeID: String,
        hostname: String = "",
        agentVersion: String = "",
        capacity: NodeCapacity = NodeCapacity(),
        usage: NodeUsage = NodeUsage(),
        labels: [String: String] = [:],
        enforcement: EnforcementCapabilities = EnforcementCapabilities(),
        startedAtMs: Int64 = 0,
        runningJobs: [String] = [],
        unsignedAssignmentsAccepted: Bool = false,
        checkpointStorage: CheckpointStorage? = nil
    ) {
        self.nodeID = nodeID
        self.hostname = hostname
        self.agentVersion = agentVersion
        self.capacity = capacity
        self.usage = usage
        self.labels = labels
        self.enforcement = enforcement
        self.startedAtMs = startedAtMs
        self.runningJobs = runningJobs
        self.unsignedAssignmentsAccepted = unsignedAssignmentsAccepted
        self.checkpointStorage = checkpointStorage
    }

    private enum CodingKeys: String, CodingKey {
        case nodeID, hostname, agentVersion, capacity, usage, labels, enforcement, startedAtMs, runningJobs, unsignedAssignmentsAccepted
        case checkpointStorage
    }

    // Stored node records written before `unsignedAssignmentsAccepted` existed decode with `false`.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            nodeID: try c.decode(String.self, forKey: .nodeID),
            hostname: try c.decode(String.self, forKey: .hostname),
            agentVersion: try c.decode(String.self, forKey: .agentVersion),
            capacity: try c.decode(NodeCapacity.self, forKey: .capacity),
            usage: try c.decode(NodeUsage.self, forKey: .usage),
            labels: try c.decode([String: String].self, forKey: .labels),
            enforcement: try c.decode(EnforcementCapabilities.self, forKey: .enforcement),
            startedAtMs: try c.decode(Int64.self, forKey: .startedAtMs),
            runningJobs: try c.decode([String].self, forKey: .runningJobs),
            unsignedAssignmentsAccepted: try c.decodeIfPresent(Bool.self, forKey: .unsignedAssignmentsAccepted) ?? false,
            checkpointStorage: try c.decodeIfPresent(CheckpointStorage.self, forKey: .checkpointStorage))
    }
}
