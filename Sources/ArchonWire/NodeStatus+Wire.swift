internal import ArchonProto
internal import CProtobufC
public import ArchonModel

extension NodeStatus: WireMessage, CPackable {
    public static var protoMessageName: String { "archon.v1.NodeStatus" }

    public static func decode(_ bytes: some Collection<UInt8>) throws(WireError) -> NodeStatus {
        try unpacked(bytes)
    }

    public func encoded() -> [UInt8] { packed() }

    typealias CMessage = Archon__V1__NodeStatus
    static var cInit: (UnsafeMutablePointer<CMessage>?) -> Void { archon__v1__node_status__init }
    static var cGetPackedSize: (UnsafePointer<CMessage>?) -> Int { archon__v1__node_status__get_packed_size }
    static var cPack: (UnsafePointer<CMessage>?, UnsafeMutablePointer<UInt8>?) -> Int { archon__v1__node_status__pack }
    static var cUnpack: (UnsafeMutablePointer<ProtobufCAllocator>?, Int, UnsafePointer<UInt8>?) -> UnsafeMutablePointer<CMessage>? {
        archon__v1__node_status__unpack
    }
    static var cFreeUnpacked: (UnsafeMutablePointer<CMessage>?, UnsafeMutablePointer<ProtobufCAllocator>?) -> Void {
        archon__v1__node_status__free_unpacked
    }

    func fill(_ c: inout CMessage, in arena: CArena) {
        c.node_id = arena.string(nodeID)
        c.hostname = arena.string(hostname)
        c.agent_version = arena.string(agentVersion)
        c.capacity = arena.message(capacity)
        c.usage = arena.message(usage)
        (c.n_labels, c.labels) = arena.map(labels, archon__v1__node_status__labels_entry__init) { entry, key, value in
            entry.key = key
            entry.value = value
        }
        c.enforcement = arena.message(enforcement)
        c.started_at_ms = startedAtMs
        (c.n_running_jobs, c.running_jobs) = arena.strings(runningJobs)
        c.unsigned_assignments_accepted = unsignedAssignmentsAccepted ? 1 : 0
        c.checkpoint_storage = checkpointStorage.map { arena.message($0) }
    }

    init(c: CMessage) throws(WireError) {
        self.init(
            nodeID: try CRead.string(c.node_id, "NodeStatus.node_id"),
            hostname: try CRead.string(c.hostname, "NodeStatus.hostname"),
            agentVersion: try CRead.string(c.agent_version, "NodeStatus.agent_version"),
            capacity: try CRead.message(c.capacity, absent: NodeCapacity()),
            usage: try CRead.message(c.usage, absent: NodeUsage()),
            labels: try CRead.map(c.n_labels, c.labels, "NodeStatus.labels") { ($0.key, $0.value) },
            enforcement: try CRead.message(c.enforcement, absent: EnforcementCapabilities()),
            startedAtMs: c.started_at_ms,
            runningJobs: try CRead.strings(c.n_running_jobs, c.running_jobs, "NodeStatus.running_jobs"),
            unsignedAssignmentsAccepted: c.unsigned_assignments_accepted != 0,
            checkpointStorage: try c.checkpoint_storage.map { (pointer) throws(WireError) in try CheckpointStorage(c: pointer.pointee) }
        )
    }
}

extension CheckpointStorage: CMessageConvertible {
    typealias CMessage = Archon__V1__CheckpointStorage
    static var cInit: (UnsafeMutablePointer<CMessage>?) -> Void { archon__v1__checkpoint_storage__init }

    func fill(_ c: inout CMessage, in arena: CArena) {
        c.root = arena.string(root)
        c.shared = shared ? 1 : 0
    }

    init(c: CMessage) throws(WireError) {
        self.init(root: try CRead.string(c.root, "CheckpointStorage.root"), shared: c.shared != 0)
    }
}

extension GPU: CMessageConvertible {
    typealias CMessage = Archon__V1__GPU
    static var cInit: (UnsafeMutablePointer<CMessage>?) -> Void { archon__v1__gpu__init }

    func fill(_ c: inout CMessage, in arena: CArena) {
        c.index = UInt32(clamping: index)
        c.name = arena.string(name)
        c.gpu_class = arena.string(gpuClass)
        c.memory_bytes = memoryBytes
    }

    init(c: CMessage) throws(WireError) {
        self.init(
            index: CRead.int(c.index),
            name: try CRead.string(c.name, "GPU.name"),
            gpuClass: try CRead.string(c.gpu_class, "GPU.gpu_class"),
            memoryBytes: c.memory_bytes
        )
    }
}

extension NodeCapacity: CMessageConvertible {
    typealias CMessage = Archon__V1__NodeCapacity
    static var cInit: (UnsafeMutablePointer<CMessage>?) -> Void { archon__v1__node_capacity__init }

    func fill(_ c: inout CMessage, in arena: CArena) {
        c.cpu_cores = UInt32(clamping: cpuCores)
        c.memory_bytes = memoryBytes
        (c.n_gpus, c.gpus) = arena.messages(gpus)
        c.disk_bytes = diskBytes
    }

    init(c: CMessage) throws(WireError) {
        self.init(
            cpuCores: CRead.int(c.cpu_cores),
            memoryBytes: c.memory_bytes,
            gpus: try CRead.messages(c.n_gpus, c.gpus, "NodeCapacity.gpus"),
            diskBytes: c.disk_bytes
        )
    }
}

extension NodeUsage: CMessageConvertible {
    typealias CMessage = Archon__V1__NodeUsage
    static var cInit: (UnsafeMutablePointer<CMessage>?) -> Void { archon__v1__node_usage__init }

    func fill(_ c: inout CMessage, in arena: CArena) {
        c.memory_reserved_bytes = memoryReservedBytes
        c.memory_used_bytes = memoryUsedBytes
        c.cpu_utilization = cpuUtilization
        c.gpu_memory_used_bytes = gpuMemoryUsedBytes
        c.gpu_utilization = gpuUtilization
        c.disk_used_bytes = diskUsedBytes
        c.running_jobs = UInt32(clamping: runningJobs)
    }

    init(c: CMessage) throws(WireError) {
        self.init(
            memoryReservedBytes: c.memory_reserved_bytes,
            memoryUsedBytes: c.memory_used_bytes,
            cpuUtilization: c.cpu_utilization,
            gpuMemoryUsedBytes: c.gpu_memory_used_bytes,
            gpuUtilization: c.gpu_utilization,
            diskUsedBytes: c.disk_used_bytes,
            runningJobs: CRead.int(c.running_jobs)
        )
    }
}

extension EnforcementCapabilities: CMessageConvertible {
    typealias CMessage = Archon__V1__EnforcementCapabilities
    static var cInit: (UnsafeMutablePointer<CMessage>?) -> Void { archon__v1__enforcement_capabilities__init }

    func fill(_ c: inout CMessage, in arena: CArena) {
        c.memory = memory.wire
        c.cpu = cpu.wire
        c.pids = pids.wire
        c.note = arena.string(note)
    }

    init(c: CMessage) throws(WireError) {
        self.init(
            memory: Enforcement(wire: c.memory),
            cpu: Enforcement(wire: c.cpu),
            pids: Enforcement(wire: c.pids),
            note: try CRead.string(c.note, "EnforcementCapabilities.note")
        )
    }
}
