import ArchonModel

/// The jobs, with the indexes that keep each event's cost independent of how many jobs the fleet ever ran:
/// jobs waiting for a node, jobs held, active jobs per node (and what they reserve), live jobs per dataset.
///
/// Every write goes through the subscript, which moves the job between indexes by comparing the old record
/// with the new one. Equality, hashing and coding see the jobs only; the indexes are rebuilt from them.
public struct JobTable: Sendable, Hashable, Codable, Sequence {
    public private(set) var map = EntityMap<JobRecord>()
    /// Queued, not placed, not held, with a next attempt decided.
    private(set) var waiting: Set<String> = []
    /// Paused by a hold.
    private(set) var held: Set<String> = []
    /// Running or queued on a node (assigned), by node.
    private(set) var onNode: [String: Set<String>] = [:]
    /// What the jobs in `onNode` reserve there.
    private(set) var reserved: [String: Reservation] = [:]
    /// Jobs not finished, by the dataset their config reads.
    private(set) var onDataset: [String: Set<String>] = [:]
    /// Jobs created or removed since ``takeCreatedOrRemoved()``: their spec is stored or deleted.
    private var createdOrRemoved: Set<String> = []

    public init() {}

    public subscript(key: String) -> JobRecord? {
        get { map[key] }
        set {
            let old = map[key]
            map[key] = newValue
            if (old == nil) != (newValue == nil) { createdOrRemoved.insert(key) }
            reindex(key, old: old, new: newValue)
        }
    }

    public var values: Dictionary<String, JobRecord>.Values { map.values }
    public var keys: Dictionary<String, JobRecord>.Keys { map.keys }
    public var count: Int { map.count }
    public func makeIterator() -> Dictionary<String, JobRecord>.Iterator { map.makeIterator() }

    /// Changes attempt `index` of a job where it lies: for what most events change (its sequences, its signals, its
    /// memory limit), which no index depends on, without the two copies of the record a write through the subscript
    /// costs. nil when there is no such job.
    mutating func modifyAttempt<R>(_ key: String, _ index: Int, _ body: (inout AttemptRecord) -> R) -> R? {
        map.modify(key) { body(&$0.history[index]) }
    }

    mutating func takeChanged() -> Set<String> { map.takeChanged() }

    mutating func takeCreatedOrRemoved() -> Set<String> {
        defer { createdOrRemoved = [] }
        return createdOrRemoved
    }

    mutating func load(_ key: String, _ value: JobRecord?) {
        let old = map[key]
        map.load(key, value)
        reindex(key, old: old, new: value)
    }

    /// Jobs placed on `node` that are running or waiting to start there.
    func active(on node: String) -> Set<String> { onNode[node] ?? [] }

    /// Jobs not finished that read `dataset`.
    func live(on dataset: String) -> Set<String> { onDataset[dataset] ?? [] }

    private static func isWaiting(_ job: JobRecord) -> Bool {
        job.status == .queued && job.nodeID.isEmpty && job.hold == nil && job.pending != nil
    }

    private static func activeNode(_ job: JobRecord) -> String? {
        !job.nodeID.isEmpty && (job.status == .running || job.status == .queued) ? job.nodeID : nil
    }

    private mutating func reindex(_ id: String, old: JobRecord?, new: JobRecord?) {
        let wasWaiting = old.map(Self.isWaiting) ?? false, isWaiting = new.map(Self.isWaiting) ?? false
        if wasWaiting != isWaiting { if isWaiting { waiting.insert(id) } else { waiting.remove(id) } }
        let wasHeld = old?.hold != nil, isHeld = new?.hold != nil
        if wasHeld != isHeld { if isHeld { held.insert(id) } else { held.remove(id) } }

        let oldNode = old.flatMap(Self.activeNode), newNode = new.flatMap(Self.activeNode)
        let oldResources = old?.config.resources, newResources = new?.config.resources
        if oldNode != newNode || oldResources != newResources {
            if let node = oldNode, let resources = oldResources {
                onNode[node]?.remove(id)
                if onNode[node]?.isEmpty == true { onNode[node] = nil }
                reserved[node]?.remove(resources)
                if onNode[node] == nil { reserved[node] = nil }
            }
            if let node = newNode, let resources = newResources {
                onNode[node, default: []].insert(id)
                reserved[node, default: Reservation()].add(resources)
            }
        }

        let oldDataset = old.flatMap { $0.status.isTerminal ? nil : $0.config.dataset }
        let newDataset = new.flatMap { $0.status.isTerminal ? nil : $0.config.dataset }
        if oldDataset != newDataset {
            if let dataset = oldDataset {
                onDataset[dataset]?.remove(id)
                if onDataset[dataset]?.isEmpty == true { onDataset[dataset] = nil }
            }
            if let dataset = newDataset { onDataset[dataset, default: []].insert(id) }
        }
    }

    public static func == (a: Self, b: Self) -> Bool { a.map == b.map }
    public func hash(into hasher: inout Hasher) { hasher.combine(map) }

    public init(from decoder: any Decoder) throws {
        for (key, job) in try [String: JobRecord](from: decoder) { load(key, job) }
    }

    public func encode(to encoder: any Encoder) throws { try map.encode(to: encoder) }
}
