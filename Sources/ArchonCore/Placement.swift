public import ArchonModel

/// What the core's own assignments hold on a node (usage reports lag; reservations do not).
public struct Reservation: Sendable, Hashable {
    public var memoryBytes: UInt64 = 0
    public var cpuCores: Double = 0
    public var gpus: [String: Int] = [:]
    public var diskBytes: UInt64 = 0
    public var jobs = 0

    /// Nothing reserved.
    public init() {}

    mutating func add(_ r: Resources) {
        memoryBytes = memoryBytes.addingSaturated(r.memoryBytes)
        cpuCores += r.cpuCores
        if r.gpuCount > 0 { gpus[r.gpuClass, default: 0] += r.gpuCount }
        diskBytes = diskBytes.addingSaturated(r.diskBytes)
        jobs += 1
    }

    /// Takes back what ``add(_:)`` added.
    mutating func remove(_ r: Resources) {
        memoryBytes -= Swift.min(memoryBytes, r.memoryBytes)
        cpuCores = Swift.max(0, cpuCores - r.cpuCores)
        if r.gpuCount > 0 {
            gpus[r.gpuClass] = Swift.max(0, gpus[r.gpuClass, default: 0] - r.gpuCount)
            if gpus[r.gpuClass] == 0 { gpus[r.gpuClass] = nil }
        }
        diskBytes -= Swift.min(diskBytes, r.diskBytes)
        jobs = Swift.max(0, jobs - 1)
    }
}

/// Chooses the node a job runs on: the least loaded schedulable node with room for its request.
public enum Placement {
    /// Whether a node with `capacity`, holding `reserved`, has room for `request`.
    public static func fits(_ request: Resources, capacity: NodeCapacity, reserved: Reservation) -> Bool {
        if request.memoryBytes > 0, capacity.memoryBytes < reserved.memoryBytes.addingSaturated(request.memoryBytes) { return false }
        if request.cpuCores > 0, Double(capacity.cpuCores) - reserved.cpuCores < request.cpuCores { return false }
        if request.diskBytes > 0, capacity.diskBytes < reserved.diskBytes.addingSaturated(request.diskBytes) { return false }
        if request.gpuCount > 0 {
            var have = 0
            for gpu in capacity.gpus where gpu.gpuClass == request.gpuClass { have += 1 }
            if have - reserved.gpus[request.gpuClass, default: 0] < request.gpuCount { return false }
        }
        return true
    }

    /// The node for `request`: `prefer` when it is schedulable and has room, else the schedulable node with
    /// the fewest jobs, then the most free memory, then the smallest id. nil when none has room. Only nodes
    /// `admits` accepts are candidates (e.g. those that can read the checkpoint the attempt resumes from).
    public static func choose(
        _ request: Resources,
        nodes: some Collection<NodeRecord>,
        reservations: [String: Reservation],
        prefer: String = "",
        exclude: Set<String> = [],
        admits: (NodeRecord) -> Bool = { _ in true }
    ) -> String? {
        // One pass, nothing copied: placement costs O(nodes) whatever else the fleet holds.
        var best: (id: String, jobs: Int, free: UInt64)?
        for node in nodes where node.schedulable && !exclude.contains(node.id) && admits(node) {
            let reserved = reservations[node.id] ?? Reservation()
            guard fits(request, capacity: node.capacity, reserved: reserved) else { continue }
            if !prefer.isEmpty, node.id == prefer { return prefer }
            let free = node.capacity.memoryBytes.subtractingSaturated(reserved.memoryBytes)
            if let b = best, (b.jobs, -Int128(b.free), b.id) <= (reserved.jobs, -Int128(free), node.id) { continue }
            best = (node.id, reserved.jobs, free)
        }
        return best?.id
    }

    /// "16 GiB memory, 2 CPU cores, 1× a100-80gb": a request in words.
    public static func describe(_ r: Resources) -> String {
        var parts: [String] = []
        if r.memoryBytes > 0 { parts.append("\(ByteCount.human(r.memoryBytes)) memory") }
        if r.cpuCores > 0 { parts.append("\(r.cpuCores.compact) CPU cores") }
        if r.gpuCount > 0 { parts.append("\(r.gpuCount)× \(r.gpuClass)") }
        if r.diskBytes > 0 { parts.append("\(ByteCount.human(r.diskBytes)) disk") }
        return parts.isEmpty ? "no particular resources" : parts.joined(separator: ", ")
    }

    /// "n1: 32 GiB memory, 8 CPU cores, 1× a100-40gb": a node's capacity in words.
    public static func describe(_ c: NodeCapacity) -> String {
        var parts = ["\(ByteCount.human(c.memoryBytes)) memory", "\(c.cpuCores) CPU cores"]
        var gpuClasses: [String: Int] = [:]
        for gpu in c.gpus { gpuClasses[gpu.gpuClass, default: 0] += 1 }
        for (gpuClass, count) in gpuClasses.sorted(by: { $0.key < $1.key }) { parts.append("\(count)× \(gpuClass)") }
        return parts.joined(separator: ", ")
    }
}
