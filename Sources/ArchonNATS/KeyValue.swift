internal import CNATS
import Dispatch

/// A KV bucket's configuration.
public struct KeyValueConfig: Sendable {
    public var bucket: String
    /// Revisions kept per key (1...64).
    public var history: Int
    /// Bucket-wide time to live of entries; nil = forever (nats.c 3.4 has no per-key TTL).
    public var ttl: Duration?
    public var storage: StreamConfig.Storage
    public var replicas: Int

    public init(bucket: String, history: Int = 1, ttl: Duration? = nil, storage: StreamConfig.Storage = .file, replicas: Int = 1) {
        self.bucket = bucket
        self.history = history
        self.ttl = ttl
        self.storage = storage
        self.replicas = replicas
    }
}

/// One revision of a key.
public struct KVEntry: Sendable, Equatable {
    public enum Operation: Sendable, Equatable {
        case put, delete, purge
    }

    public var key: String
    public var value: [UInt8]
    /// Strictly increasing per bucket; the compare-and-set token.
    public var revision: UInt64
    public var operation: Operation

    init(_ entry: OpaquePointer) {
        key = String(cString: kvEntry_Key(entry))
        let length = Int(kvEntry_ValueLen(entry))
        if length > 0, let data = kvEntry_Value(entry) {
            value = Array(UnsafeRawBufferPointer(start: data, count: length))
        } else {
            value = []
        }
        revision = kvEntry_Revision(entry)
        switch kvEntry_Operation(entry) {
        case kvOp_Delete: operation = .delete
        case kvOp_Purge: operation = .purge
        default: operation = .put
        }
    }
}

/// A JetStream key-value bucket. Every call runs on a Dispatch thread (nats.c blocks).
///
/// `@unchecked Sendable`: nats.c's `kvStore` is safe to share between threads.
public final class KeyValue: @unchecked Sendable {
    let handle: OpaquePointer
    let jetStream: JetStream
    public let bucket: String

    private init(handle: OpaquePointer, jetStream: JetStream, bucket: String) {
        self.handle = handle
        self.jetStream = jetStream
        self.bucket = bucket
    }

    static func open(jetStream: JetStream, config: KeyValueConfig, create: Bool) async throws(NATSError) -> KeyValue {
        let handle = try await jetStream.connection.blocking.run { () throws(NATSError) -> UncheckedHandle in
            let js = jetStream.handle
            var kv: OpaquePointer?
            let bound = js_KeyValue(&kv, js, config.bucket)
            if bound == NATS_OK, let kv { return UncheckedHandle(kv) }
            guard create else { throw NATSError(bound, "bind KV bucket \(config.bucket)") }
            let strings = CStrings()
            var cfg = kvConfig()
            try check(kvConfig_Init(&cfg), "kvConfig_Init")
            cfg.Bucket = strings.add(config.bucket)
            cfg.History = UInt8(clamping: config.history)
            cfg.TTL = config.ttl?.milliseconds ?? 0
            cfg.StorageType = config.storage == .file ? js_FileStorage : js_MemoryStorage
            cfg.Replicas = Int32(config.replicas)
            try check(js_CreateKeyValue(&kv, js, &cfg), "create KV bucket \(config.bucket)")
            return UncheckedHandle(kv!)
        }
        return KeyValue(handle: handle.pointer, jetStream: jetStream, bucket: config.bucket)
    }

    deinit {
        kvStore_Destroy(handle)
    }

    private func run<T: Sendable>(_ body: @escaping @Sendable (OpaquePointer) throws(NATSError) -> T) async throws(NATSError) -> T {
        try await jetStream.connection.blocking.run { () throws(NATSError) -> T in
            try body(self.handle)
        }
    }

    /// The current entry, or nil when the key does not exist or was deleted.
    public func get(_ key: String) async throws(NATSError) -> KVEntry? {
        let bucket = self.bucket
        return try await run { (kv) throws(NATSError) -> KVEntry? in
            var entry: OpaquePointer?
            let status = kvStore_Get(&entry, kv, key)
            if status == NATS_NOT_FOUND { return nil }
            try check(status, "kv get \(bucket)/\(key)")
            defer { kvEntry_Destroy(entry) }
            let value = KVEntry(entry!)
            return value.operation == .put ? value : nil
        }
    }

    /// Sets the value; returns the new revision.
    @discardableResult
    public func put(_ key: String, _ value: [UInt8]) async throws(NATSError) -> UInt64 {
        let bucket = self.bucket
        return try await run { (kv) throws(NATSError) -> UInt64 in
            var revision: UInt64 = 0
            let status = value.withUnsafeBytes { kvStore_Put(&revision, kv, key, $0.baseAddress, Int32($0.count)) }
            try check(status, "kv put \(bucket)/\(key)")
            return revision
        }
    }

    /// Sets the value only if the key does not exist (or was deleted); else throws `.wrongRevision`.
    @discardableResult
    public func create(_ key: String, _ value: [UInt8]) async throws(NATSError) -> UInt64 {
        let bucket = self.bucket
        return try await run { (kv) throws(NATSError) -> UInt64 in
            var revision: UInt64 = 0
            let status = value.withUnsafeBytes { kvStore_Create(&revision, kv, key, $0.baseAddress, Int32($0.count)) }
            try check(status, "kv create \(bucket)/\(key)")
            return revision
        }
    }

    /// Compare-and-set: sets the value only if the key's latest revision is `revision`; else throws `.wrongRevision`.
    @discardableResult
    public func update(_ key: String, _ value: [UInt8], expectedRevision revision: UInt64) async throws(NATSError) -> UInt64 {
        let bucket = self.bucket
        return try await run { (kv) throws(NATSError) -> UInt64 in
            var newRevision: UInt64 = 0
            let status = value.withUnsafeBytes { kvStore_Update(&newRevision, kv, key, $0.baseAddress, Int32($0.count), revision) }
            try check(status, "kv update \(bucket)/\(key) at revision \(revision)")
            return newRevision
        }
    }

    /// Deletes the key (a delete marker; watchers see it).
    public func delete(_ key: String) async throws(NATSError) {
        let bucket = self.bucket
        try await run { (kv) throws(NATSError) in
            try check(kvStore_Delete(kv, key), "kv delete \(bucket)/\(key)")
        }
    }

    /// Removes the delete markers older than `olderThan` (their keys stay deleted), so that a bucket whose keys
    /// come and go does not keep one marker per key it ever held.
    public func purgeDeletes(olderThan: Duration = .seconds(1800)) async throws(NATSError) {
        let bucket = self.bucket
        try await run { (kv) throws(NATSError) in
            var opts = kvPurgeOptions()
            try check(kvPurgeOptions_Init(&opts), "kvPurgeOptions_Init")
            opts.DeleteMarkersOlderThan = olderThan.milliseconds * 1_000_000
            try check(kvStore_PurgeDeletes(kv, &opts), "kv purge deletes \(bucket)")
        }
    }

    /// All keys that currently have a value.
    public func keys() async throws(NATSError) -> [String] {
        let bucket = self.bucket
        return try await run { (kv) throws(NATSError) -> [String] in
            var list = kvKeysList()
            let status = kvStore_Keys(&list, kv, nil)
            if status == NATS_NOT_FOUND { return [] }
            try check(status, "kv keys \(bucket)")
            defer { kvKeysList_Destroy(&list) }
            return (0..<Int(list.Count)).compactMap { list.Keys[$0].map { String(cString: $0) } }
        }
    }

    /// Watches keys matching `pattern` (`>` = all, `n1.>` = every key under `n1.`).
    /// First the current values, then ``KVWatchEvent/initialValuesDone``, then every change.
    public func watch(_ pattern: String, bufferLimit: Int = 1024) async throws(NATSError) -> KVWatch {
        let bucket = self.bucket
        let watcher = try await run { (kv) throws(NATSError) -> UncheckedHandle in
            var w: OpaquePointer?
            try check(kvStore_Watch(&w, kv, pattern, nil), "kv watch \(bucket)/\(pattern)")
            return UncheckedHandle(w!)
        }
        return KVWatch(watcher: watcher.pointer, store: self, bufferLimit: bufferLimit)
    }
}

/// What a ``KVWatch`` yields.
public enum KVWatchEvent: Sendable, Equatable {
    /// A put, delete or purge of a key.
    case entry(KVEntry)
    /// Every value that existed when the watch started has been delivered.
    case initialValuesDone
}

/// A KV watch as an `AsyncSequence`. A dedicated Dispatch thread waits on nats.c's watcher and hands
/// entries over with back-pressure (it waits when `bufferLimit` entries are unread): nothing is dropped.
public final class KVWatch: AsyncSequence, @unchecked Sendable {
    public typealias Element = KVWatchEvent

    private let watcher: OpaquePointer
    private let pump: CreditedPump<KVWatchEvent>

    init(watcher: OpaquePointer, store: KeyValue, bufferLimit: Int) {
        self.watcher = watcher
        let handle = UncheckedHandle(watcher)
        pump = CreditedPump(label: "archon.nats.kvwatch.\(store.bucket)", limit: bufferLimit) { send in
            withExtendedLifetime(store) {
                while true {
                    var entry: OpaquePointer?
                    let status = kvWatcher_Next(&entry, handle.pointer, 1000)
                    if status == NATS_TIMEOUT { continue }
                    guard status == NATS_OK else { break }  // stopped (ILLEGAL_STATE) or connection closed
                    if let entry {
                        send(.entry(KVEntry(entry)))
                        kvEntry_Destroy(entry)
                    } else {
                        send(.initialValuesDone)
                    }
                }
            }
        }
    }

    /// Ends the watch; the sequence finishes.
    public func stop() {
        kvWatcher_Stop(watcher)
    }

    deinit {
        kvWatcher_Stop(watcher)
        pump.awaitReaderEnd()  // before the watcher is freed
        kvWatcher_Destroy(watcher)
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: CreditedPump<KVWatchEvent>.Iterator
        let owner: KVWatch  // keeps the watch alive while someone iterates

        public mutating func next() async -> KVWatchEvent? { await base.next() }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: pump.makeIterator(), owner: self)
    }
}

/// Carries a C pointer into a Dispatch closure; the owner guarantees its lifetime.
struct UncheckedHandle: @unchecked Sendable {
    let pointer: OpaquePointer
    init(_ pointer: OpaquePointer) { self.pointer = pointer }
}
