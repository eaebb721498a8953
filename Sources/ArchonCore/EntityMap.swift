/// A dictionary of one kind of entity (jobs, nodes, datasets, incidents) that remembers which keys were
/// written since the shell last took the changes, so a batch persists what it changed and nothing else.
///
/// Equality, hashing and coding see the entities only, never the change set.
public struct EntityMap<Value: Codable & Sendable & Hashable>: Sendable, Hashable, Codable, Sequence {
    public private(set) var storage: [String: Value] = [:]
    /// Keys set or removed since ``takeChanged()``.
    private(set) var changed: Set<String> = []

    public init() {}

    public subscript(key: String) -> Value? {
        get { storage[key] }
        set {
            storage[key] = newValue
            changed.insert(key)
        }
    }

    public var values: Dictionary<String, Value>.Values { storage.values }
    public var keys: Dictionary<String, Value>.Keys { storage.keys }
    public var count: Int { storage.count }
    public var isEmpty: Bool { storage.isEmpty }

    public func makeIterator() -> Dictionary<String, Value>.Iterator { storage.makeIterator() }

    /// Changes `key`'s entity where it lies, without copying it out and back, and counts it as written; nil (and
    /// nothing counted) when there is none.
    mutating func modify<R>(_ key: String, _ body: (inout Value) -> R) -> R? {
        guard let index = storage.index(forKey: key) else { return nil }
        changed.insert(key)
        return body(&storage.values[index])
    }

    /// The keys written since the last call, and forgets them.
    mutating func takeChanged() -> Set<String> {
        defer { changed = [] }
        return changed
    }

    /// Restores an entity read from storage without counting it as a change.
    mutating func load(_ key: String, _ value: Value?) { storage[key] = value }

    public static func == (a: Self, b: Self) -> Bool { a.storage == b.storage }
    public func hash(into hasher: inout Hasher) { hasher.combine(storage) }

    public init(from decoder: any Decoder) throws {
        storage = try [String: Value](from: decoder)
    }

    public func encode(to encoder: any Encoder) throws {
        try storage.encode(to: encoder)
    }
}
