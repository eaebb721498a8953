public import ArchonCore
public import ArchonModel
public import ArchonNATS
import Foundation
public import Logging

/// Where the controller's state lives in NATS: a journal of batches plus an incrementally flushed KV copy.
///
/// - Every batch of inputs (events, an operator action, timers) ends in one **journal record** on the stream
///   `ARCHON_STATE_JOURNAL`: the entities the batch changed, in full, and the actions it decided that must survive a
///   crash (the outbox). It is split into parts under the server's payload limit, each part published with a message
///   id and the expected last sequence of the stream, so a second writer (a deposed leader) cannot interleave.
///   Nothing the batch did is acknowledged, answered or performed before every part is stored.
/// - Every `flushInterval` the entities changed since the last flush are written to KV `archon_state`, one key per
///   entity (`job.<id>`, `node.<id>`, …), then `store.position` records the journal sequence they include, and the
///   journal is purged below the position of the flush before: one flush of slack, so that a position write the
///   cluster loses (or a deposed writer's older one) still finds the journal above it. A key written many times
///   between flushes is written once.
/// - The **live part** of a job (``JobLive``: its current attempt's applied sequences and last signs of life) or of a
///   node (``NodeLive``: when it was last heard), which nearly every event changes, is stored under `live.<key>`, apart
///   from the record, in every batch that changes the entity; the record itself only when something else in it
///   changed. A loaded record gets its live part back.
/// - Loading reads every key of `archon_state`, then replays the journal above `store.position`; a batch whose parts
///   are not all there was never acknowledged, and is dropped.
///
/// Finished jobs and resolved incidents leave the state for KV `archon_archive` (same keys).
public actor StateStore {
    public static let journalStream = "ARCHON_STATE_JOURNAL"
    public static let journalSubject = "archon.v1.state.journal"
    public static let positionKey = "store.position"
    static let outboxPrefix = "outbox."
    static let livePrefix = "live."
    /// Reads of the whole state tried before a load gives up on a state that keeps moving under it.
    static let loadAttempts = 5

    /// A part of a journal record stays below this many bytes (the servers in deploy/ allow 1 MiB).
    let maxPartBytes: Int
    let flushInterval: Duration
    let writer: String
    let logger: Logger
    let metrics: ControllerMetrics
    private let js: JetStream
    private let stateKV: KeyValue
    private let archiveKV: KeyValue

    /// Sequence of the last journal part this store wrote or read; the next part expects it.
    private var lastSequence: UInt64 = 0
    /// Sequence of the last part of the last whole batch: what a flush may call flushed.
    private var committedSequence: UInt64 = 0
    private var nextBatch: UInt64 = 1
    private var run = String(UInt32.random(in: .min ... .max), radix: 36)
    /// Entities (and outbox entries) journaled since the last flush: their latest bytes, nil for deleted.
    private var unflushed: [String: [UInt8]?] = [:]
    /// The revision of each key this store last read or wrote: a flush writes over that revision only (see
    /// ``storeFenced(_:_:)``). Absent: the key did not exist, or was deleted.
    private var revisions: [String: UInt64] = [:]
    /// The hash without the live part of each job and node record this store read or wrote: equal again, the live
    /// part alone is written. A load fills it from what it read, so that a new leader reading a backlog writes live
    /// parts, not every record it touches once more.
    private var recordHashes: [String: Int] = [:]
    private var flushing = false
    /// The position this store last stored (or read): the next flush purges the journal below it, not below its own.
    private var storedPosition: UInt64 = 0
    private var lastFlush = ContinuousClock.now
    private var lastMarkerPurge = ContinuousClock.now

    init(js: JetStream, stateKV: KeyValue, archiveKV: KeyValue, writer: String, maxPartBytes: Int = 900_000,
         flushInterval: Duration, logger: Logger, metrics: ControllerMetrics) {
        self.js = js
        self.stateKV = stateKV
        self.archiveKV = archiveKV
        self.writer = String(writer.map { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" ? $0 : "_" }.prefix(64))
        self.maxPartBytes = maxPartBytes
        self.flushInterval = flushInterval
        self.logger = logger
        self.metrics = metrics
    }

    /// Opens (creating when missing) the journal stream and both buckets.
    public static func open(_ js: JetStream, replicas: Int = 1, writer: String, flushInterval: Duration, logger: Logger,
                            metrics: ControllerMetrics = ControllerMetrics()) async throws -> StateStore {
        try await js.createOrUpdateStream(StreamConfig(name: journalStream, subjects: [journalSubject], replicas: replicas))
        let stateKV = try await js.keyValue(KeyValueConfig(bucket: Fleet.stateBucket, history: 1, replicas: replicas))
        let archiveKV = try await js.keyValue(KeyValueConfig(bucket: Fleet.archiveBucket, history: 1, replicas: replicas))
        return StateStore(js: js, stateKV: stateKV, archiveKV: archiveKV, writer: writer, flushInterval: flushInterval,
                          logger: logger, metrics: metrics)
    }

    /// The stored state as a core, read the way a new leader reads it (for tools and tests; writes nothing but the
    /// buckets and journal stream when missing, at `replicas` — the fleet's, so that a cluster's are left as they are).
    public static func read(_ js: JetStream, policy: Policy = .runbookDefaults, replicas: Int = 1, at now: Int64) async throws
        -> (core: FleetController, loaded: Loaded)
    {
        let stateKV = try await js.keyValue(KeyValueConfig(bucket: Fleet.stateBucket, history: 1, replicas: replicas))
        let archiveKV = try await js.keyValue(KeyValueConfig(bucket: Fleet.archiveBucket, history: 1, replicas: replicas))
        try await js.createOrUpdateStream(StreamConfig(name: journalStream, subjects: [journalSubject], replicas: replicas))
        let store = StateStore(js: js, stateKV: stateKV, archiveKV: archiveKV, writer: "reader", flushInterval: .seconds(3600),
                               logger: Logger(label: "archon.state.reader"), metrics: ControllerMetrics())
        let loaded = try await store.load()
        return (FleetController(policy: policy, entities: loaded.entities, at: now), loaded)
    }

    // MARK: Loading

    /// What a load found.
    public struct Loaded: Sendable {
        public var entities: [StoredEntity]
        /// Actions decided and not known to be performed, by outbox key.
        public var outbox: [String: ControllerAction]
        public var journalRecords: Int
        public var bytes: Int
    }

    /// Reads the whole state: every key, then the journal above the flushed position. Unless `forWriting` is
    /// false (a standby's read model), this store then writes after what it read.
    public func load(forWriting: Bool = true) async throws -> Loaded {
        var values: [String: [UInt8]] = [:]
        var bytes = 0
        var position: UInt64 = 0
        var bounds: (first: UInt64, last: UInt64) = (0, 0)
        var seen: [String: UInt64] = [:]
        // The keys, then the journal above the position they were flushed at. Another writer (a leader being deposed
        // while this one takes over, a standby's read model meanwhile) may flush and purge the journal between the
        // two reads: then the keys read are older than the journal's start, and the read starts over.
        for attempt in 1...Self.loadAttempts {
            values = [:]
            seen = [:]
            bytes = 0
            position = 0
            // Every key stored before the watch starts comes out of it (a value, or a newer one, or its delete
            // marker): fewer is a watch that ended early, as one may on a cluster whose servers just restarted.
            let stored = try await js.streamMessages("KV_\(Fleet.stateBucket)")
            var delivered: UInt64 = 0
            let watch = try await stateKV.watch(">")
            for await event in watch {
                guard case .entry(let entry) = event else { break }
                delivered += 1
                if entry.operation == .put {
                    seen[entry.key] = entry.revision
                    bytes += entry.value.count
                    if entry.key == Self.positionKey {
                        position = UInt64(String(decoding: entry.value, as: UTF8.self)) ?? 0
                    } else {
                        values[entry.key] = entry.value
                    }
                }
            }
            watch.stop()
            bounds = try await js.streamBounds(Self.journalStream)
            if delivered < stored {
                logger.warning("controller.state.read_incomplete", metadata: [
                    "state.keys_read": "\(delivered)", "state.keys_stored": "\(stored)", "attempt": "\(attempt)",
                    "reason": "the watch of the state's keys ended before every stored key came: reading again",
                ])
                guard attempt < Self.loadAttempts else {
                    throw StateLoadError(description: "the state's keys could not be read whole (\(Self.loadAttempts) tries): \(delivered) of \(stored)")
                }
                try await Task.sleep(for: .milliseconds(200 * attempt))
                continue
            }
            if bounds.last <= position || bounds.first <= position + 1 { break }
            logger.warning("controller.state.flushed_while_loading", metadata: [
                "state.position": "\(position)", "journal.first": "\(bounds.first)", "attempt": "\(attempt)",
                "reason": "the journal was purged past the keys read: another writer flushed meanwhile; reading again",
            ])
            guard attempt < Self.loadAttempts else {
                throw StateLoadError(description: "the state kept changing while it was read (\(Self.loadAttempts) tries): the journal starts at \(bounds.first), the keys read were flushed at \(position)")
            }
        }
        var records = 0
        var replayed: [String: [UInt8]?] = [:]  // what the journal holds that the keys do not yet
        var open: (id: String, parts: [[(String, [UInt8]?)]], expected: Int)?
        if bounds.last > position {
            for sequence in max(position + 1, bounds.first)...bounds.last {
                guard let message = try await js.message(Self.journalStream, sequence: sequence) else { continue }
                bytes += message.payload.count
                guard let part = JournalPart.parse(message.payload) else {
                    metrics.stateLoadErrors.increment()
                    logger.error("controller.state.journal_unreadable", metadata: ["journal.sequence": "\(sequence)"])
                    continue
                }
                if part.index == 0 || open?.id != part.batchID { open = (part.batchID, [], part.count) }
                open!.parts.append(part.entries)
                if open!.parts.count == open!.expected {
                    for entries in open!.parts {
                        for (key, value) in entries {
                            values[key] = value
                            replayed[key] = .some(value)
                        }
                    }
                    records += 1
                    open = nil
                }
            }
        }
        if let open {
            logger.warning("controller.state.journal_incomplete", metadata: [
                "journal.batch": "\(open.id)", "reason": "a batch whose parts were not all stored was never acknowledged; dropped",
            ])
        }
        if forWriting {
            lastSequence = bounds.last
            committedSequence = bounds.last
            // The journal's records above the keys' position are this store's to flush now: its next flush purges
            // the journal below its position, and would otherwise take them with it (found by `make chaos`: jobs
            // that completed under one leader were running again after the next two failovers).
            unflushed = replayed
            revisions = seen
            storedPosition = position
            // Message ids must never repeat one of an earlier run inside the duplicate window.
            run = String(UInt32.random(in: .min ... .max), radix: 36)
        }

        // Decoding is most of a load: spread it over the cores.
        let pairs = Array(values)
        let slices = max(1, min(8, ProcessInfo.processInfo.activeProcessorCount))
        let decoded = await withTaskGroup(of: Decoded.self) { group in
            for slice in 0..<slices {
                group.addTask {
                    Self.decodeAll(pairs[(pairs.count * slice / slices)..<(pairs.count * (slice + 1) / slices)], hashing: forWriting)
                }
            }
            var all = Decoded()
            for await part in group {
                all.entities += part.entities
                all.outbox.merge(part.outbox) { a, _ in a }
                all.jobLive.merge(part.jobLive) { a, _ in a }
                all.nodeLive.merge(part.nodeLive) { a, _ in a }
                all.hashes.merge(part.hashes) { a, _ in a }
                all.unknown += part.unknown
                all.errors += part.errors
            }
            return all
        }
        if forWriting { recordHashes = decoded.hashes }
        for key in decoded.unknown { logger.warning("controller.state.unknown_key", metadata: ["kv.key": "\(key)"]) }
        var entities = decoded.entities
        for (index, entity) in entities.enumerated() {
            switch entity {
            case .job(var job):
                guard let live = decoded.jobLive[job.record.spec.id] else { continue }
                job.apply(live)
                entities[index] = .job(job)
            case .node(var node):
                guard let live = decoded.nodeLive[node.record.id] else { continue }
                node.apply(live)
                entities[index] = .node(node)
            case .spec, .dataset, .incident, .fleet:
                continue
            }
        }
        for (key, error) in decoded.errors {
            metrics.stateLoadErrors.increment()
            logger.error("controller.state.entity_unreadable", metadata: ["kv.key": "\(key)", "error": "\(error)"])
        }
        return Loaded(entities: entities, outbox: decoded.outbox, journalRecords: records, bytes: bytes)
    }

    private struct Decoded: Sendable {
        var entities: [StoredEntity] = []
        var outbox: [String: ControllerAction] = [:]
        /// Live parts, by job and node id.
        var jobLive: [String: JobLive] = [:]
        var nodeLive: [String: NodeLive] = [:]
        /// ``StoredJob/hashWithoutLive`` and ``StoredNode/hashWithoutLive`` of the records read, by key.
        var hashes: [String: Int] = [:]
        var unknown: [String] = []
        var errors: [(String, String)] = []
    }

    private static func decodeAll(_ pairs: ArraySlice<(key: String, value: [UInt8])>, hashing: Bool) -> Decoded {
        var out = Decoded()
        out.entities.reserveCapacity(pairs.count)
        for (key, value) in pairs {
            do {
                if key.hasPrefix(outboxPrefix) {
                    out.outbox[key] = try JSONDecoder.archon.decode(ControllerAction.self, from: Data(value))
                } else if key.hasPrefix(livePrefix) {
                    switch EntityKey(String(key.dropFirst(livePrefix.count))) {
                    case .job(let id)?: out.jobLive[id] = try JSONDecoder.archon.decode(JobLive.self, from: Data(value))
                    case .node(let id)?: out.nodeLive[id] = try JSONDecoder.archon.decode(NodeLive.self, from: Data(value))
                    default: out.unknown.append(key)
                    }
                } else if let entityKey = EntityKey(key) {
                    let entity = try decode(entityKey, value)
                    if hashing {
                        switch entity {
                        case .job(let job): out.hashes[key] = job.hashWithoutLive
                        case .node(let node): out.hashes[key] = node.hashWithoutLive
                        case .spec, .dataset, .incident, .fleet: break
                        }
                    }
                    out.entities.append(entity)
                } else {
                    out.unknown.append(key)
                }
            } catch {
                out.errors.append((key, "\(error)"))
            }
        }
        return out
    }

    // MARK: Writing

    /// Stores one batch: `changes` (entities to write, nil to delete) and outbox entries, as one journal record.
    /// Returns the bytes written. Throws when any part was not stored: nothing of the batch may then be
    /// acknowledged, and the caller's in-memory state is ahead of what is durable.
    @discardableResult
    public func commit(_ changes: [(EntityKey, StoredEntity?)], outbox: [(String, ControllerAction?)]) async throws -> Int {
        var entries: [(String, [UInt8]?)] = []
        entries.reserveCapacity(changes.count + outbox.count)
        var hashes: [(String, Int?)] = []
        for (key, entity) in changes {
            let name = key.description
            let live = Self.livePrefix + name
            guard let entity else {
                entries.append((name, nil))
                switch key {
                case .job, .node:
                    entries.append((live, nil))
                    hashes.append((name, nil))
                case .spec, .dataset, .incident, .fleet:
                    break
                }
                continue
            }
            guard let (hash, part) = Self.split(entity) else {
                entries.append((name, try Self.encode(entity)))
                continue
            }
            // The record when anything but the live part changed; the live part always, so that it is never older
            // than the record it is loaded onto.
            if recordHashes[name] != hash {
                entries.append((name, try Self.encode(entity)))
                hashes.append((name, hash))
            }
            entries.append((live, part))
        }
        for (key, action) in outbox {
            entries.append((key, try action.map { Array(try JSONEncoder.state.encode($0)) }))
        }
        let batch = "\(writer)-\(run)-\(nextBatch)"
        nextBatch += 1
        let parts = JournalPart.split(entries, maxBytes: maxPartBytes)
        var written = 0
        for (index, part) in parts.enumerated() {
            let payload = JournalPart.render(batchID: batch, index: index, count: parts.count, entries: part)
            let ack = try await js.publish(
                Self.journalSubject, payload, messageID: "\(batch)-\(index)",
                expectedLastSequence: lastSequence == 0 ? nil : lastSequence)
            lastSequence = ack.sequence
            written += payload.count
        }
        committedSequence = lastSequence
        for (key, value) in entries { unflushed[key] = value }
        for (key, hash) in hashes { recordHashes[key] = hash }
        metrics.stateBytesPerBatch.record(written)
        metrics.stateBatches.increment()
        if !flushing, ContinuousClock.now - lastFlush >= flushInterval {
            flushing = true
            Task { await self.flushNow() }
        }
        return written
    }

    /// Writes what was journaled since the last flush to KV, records the position, purges the journal below it.
    /// On failure the entries stay to be flushed next time; the journal keeps them meanwhile. One flush at a time:
    /// a second one purging below its position while the first still writes would lose the first one's entities.
    public func flush() async {
        while flushing { try? await Task.sleep(for: .milliseconds(20)) }
        flushing = true
        await flushNow()
    }

    /// A flush, `flushing` already set by the caller.
    private func flushNow() async {
        defer {
            flushing = false
            lastFlush = ContinuousClock.now
        }
        let batch = unflushed
        let position = committedSequence
        unflushed = [:]
        guard !batch.isEmpty else { return }
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                var inFlight = 0
                for (key, value) in batch {
                    if inFlight >= 64 {
                        try await group.next()
                        inFlight -= 1
                    }
                    group.addTask {
                        if let value { try await self.storeFenced(key, value) } else { try await self.deleteKey(key) }
                    }
                    inFlight += 1
                }
                try await group.waitForAll()
            }
            try await storeFenced(Self.positionKey, Array(String(position).utf8))
            // Below the previous position, not this one (found by `make chaos`, seed 15 of a 20-seed run: the stored
            // position read 49 while the journal had been purged below 52, and no controller could load the state).
            if storedPosition > 0 { try await js.purge(Self.journalStream, below: min(storedPosition, position) + 1) }
            storedPosition = max(storedPosition, position)
            metrics.stateFlushes.increment()
            // Archived entities leave delete markers; drop the old ones now and then so the bucket does not keep
            // one per job ever seen.
            if batch.values.contains(where: { $0 == nil }), ContinuousClock.now - lastMarkerPurge > .seconds(3600) {
                lastMarkerPurge = ContinuousClock.now
                await purgeDeleteMarkers()
            }
        } catch {
            // Newer values journaled meanwhile win; the rest goes again next time.
            for (key, value) in batch where unflushed[key] == nil { unflushed[key] = value }
            metrics.stateWriteFailures.increment()
            logger.warning("controller.state.flush_failed", metadata: ["error": "\(error)", "state.entries": "\(batch.count)"])
        }
    }

    /// Writes `key` over the revision this store last saw of it, never blindly. Two stores write the same keys when
    /// leadership moves: a deposed leader's flush that was in flight (or waiting in nats.c's reconnect buffer) can
    /// land after the new leader's, and an unconditional put would then put an older job record back, silently
    /// (found by `make chaos`). On a conflict the journal decides: a store that still owns it (nobody appended since
    /// its last commit) holds the newest values, so it writes over the other one; a store that does not is the
    /// deposed one, and its flush stops there.
    private func storeFenced(_ key: String, _ value: [UInt8]) async throws {
        let known = revisions[key]
        var revision: UInt64
        do {
            revision = try await write(key, value, over: known)
        } catch let error as NATSError where error.code == .wrongRevision {
            let journalEnd = try await js.streamBounds(Self.journalStream).last
            guard journalEnd == lastSequence else {
                throw StateLoadError(description: "state key \(key) was written by another controller, which has since appended to the journal: this one no longer leads; its flush stops")
            }
            let current = try await stateKV.get(key)
            // The position never goes back: two stores may both own the journal's end for a moment (a new leader
            // before its first record, the old one after its last), and the old one's flush, begun at an earlier
            // position, must not undo the new one's purge (found by `make chaos`, seed 15: position 48, journal
            // from 51, and no controller could load the state again).
            if key == Self.positionKey, let current, let stored = UInt64(String(decoding: current.value, as: UTF8.self)),
               let mine = UInt64(String(decoding: value, as: UTF8.self)), stored >= mine {
                revisions[key] = current.revision
                return
            }
            revision = try await write(key, value, over: current?.revision)
        }
        revisions[key] = revision
    }

    private func write(_ key: String, _ value: [UInt8], over revision: UInt64?) async throws -> UInt64 {
        if let revision { return try await stateKV.update(key, value, expectedRevision: revision) }
        return try await stateKV.create(key, value)
    }

    private func deleteKey(_ key: String) async throws {
        try await stateKV.delete(key)
        revisions[key] = nil
    }

    /// Drops delete markers older than 30 minutes left by archived entities.
    private func purgeDeleteMarkers() async {
        do { try await stateKV.purgeDeletes() } catch {
            logger.warning("controller.state.purge_deletes_failed", metadata: ["error": "\(error)"])
        }
    }

    // MARK: Archive

    /// Stores a finished job or resolved incident in `archon_archive`.
    public func archive(_ record: ArchivedRecord) async throws {
        switch record {
        case .job(let job): try await archiveKV.put(EntityKey.job(job.spec.id).description, Array(try JSONEncoder.state.encode(job)))
        case .incident(let incident): try await archiveKV.put(EntityKey.incident(incident.id).description, Array(try JSONEncoder.state.encode(incident)))
        }
    }

    /// A job from the archive.
    public func archivedJob(_ id: String) async throws -> JobRecord? {
        guard let entry = try await archiveKV.get(EntityKey.job(id).description) else { return nil }
        return try JSONDecoder.archon.decode(JobRecord.self, from: Data(entry.value))
    }

    /// An incident from the archive.
    public func archivedIncident(_ id: String) async throws -> Incident? {
        guard let entry = try await archiveKV.get(EntityKey.incident(id).description) else { return nil }
        return try JSONDecoder.archon.decode(Incident.self, from: Data(entry.value))
    }

    // MARK: Entity codec

    /// An entity's stored bytes: the JSON of its value alone (its key says what it is).
    static func encode(_ entity: StoredEntity) throws -> [UInt8] {
        let encoder = JSONEncoder.state
        switch entity {
        case .job(let v): return Array(try encoder.encode(v))
        case .spec(let v): return Array(try encoder.encode(v))
        case .node(let v): return Array(try encoder.encode(v))
        case .dataset(let v): return Array(try encoder.encode(v))
        case .incident(let v): return Array(try encoder.encode(v))
        case .fleet(let v): return Array(try encoder.encode(v))
        }
    }

    /// The hash of an entity without its live part, and that part's bytes; nil for entities without one (a job before
    /// its first attempt, specs, datasets, incidents, the fleet record).
    static func split(_ entity: StoredEntity) -> (hash: Int, live: [UInt8])? {
        switch entity {
        case .job(let job):
            guard let live = job.live else { return nil }
            return (job.hashWithoutLive, live.json)
        case .node(let node):
            return (node.hashWithoutLive, node.live.json)
        case .spec, .dataset, .incident, .fleet:
            return nil
        }
    }

    static func decode(_ key: EntityKey, _ bytes: [UInt8]) throws -> StoredEntity {
        let decoder = JSONDecoder.archon
        let data = Data(bytes)
        switch key {
        case .job: return .job(try decoder.decode(StoredJob.self, from: data))
        case .spec: return .spec(try decoder.decode(JobSpec.self, from: data))
        case .node: return .node(try decoder.decode(StoredNode.self, from: data))
        case .dataset: return .dataset(try decoder.decode(DatasetRecord.self, from: data))
        case .incident: return .incident(try decoder.decode(StoredIncident.self, from: data))
        case .fleet: return .fleet(try decoder.decode(StoredFleet.self, from: data))
        }
    }
}

/// One part of a journal record, as bytes: a header line `<batch> <index> <count>`, then per entry a key line
/// and a value line (compact JSON, which holds no newline; an empty line deletes the key).
enum JournalPart {
    struct Parsed {
        var batchID: String
        var index: Int
        var count: Int
        var entries: [(String, [UInt8]?)]
    }

    static func render(batchID: String, index: Int, count: Int, entries: [(String, [UInt8]?)]) -> [UInt8] {
        var out = Array("\(batchID) \(index) \(count)\n".utf8)
        for (key, value) in entries {
            out += Array(key.utf8)
            out.append(0x0A)
            if let value { out += value }
            out.append(0x0A)
        }
        return out
    }

    static func parse(_ bytes: [UInt8]) -> Parsed? {
        let lines = bytes.split(separator: 0x0A, omittingEmptySubsequences: false)
        guard lines.count >= 1 else { return nil }
        let header = String(decoding: lines[0], as: UTF8.self).split(separator: " ")
        guard header.count == 3, let index = Int(header[1]), let count = Int(header[2]), index >= 0, index < count else { return nil }
        var entries: [(String, [UInt8]?)] = []
        var i = 1
        while i + 1 < lines.count {
            let key = String(decoding: lines[i], as: UTF8.self)
            let value = lines[i + 1]
            entries.append((key, value.isEmpty ? nil : Array(value)))
            i += 2
        }
        return Parsed(batchID: String(header[0]), index: index, count: count, entries: entries)
    }

    /// Groups entries into parts of at most `maxBytes` (an entry larger than that gets a part of its own).
    static func split(_ entries: [(String, [UInt8]?)], maxBytes: Int) -> [[(String, [UInt8]?)]] {
        var parts: [[(String, [UInt8]?)]] = [[]]
        var size = 0
        for entry in entries {
            let entrySize = entry.0.utf8.count + (entry.1?.count ?? 0) + 2
            if size + entrySize > maxBytes, !parts[parts.count - 1].isEmpty {
                parts.append([])
                size = 0
            }
            parts[parts.count - 1].append(entry)
            size += entrySize
        }
        return parts
    }
}

extension JSONEncoder {
    /// What the store writes: NaN and infinities as strings (a loss can be NaN); keys unsorted, which is cheaper.
    static var state: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        return encoder
    }
}

/// A load that could not read a consistent state (see ``StateStore/load(forWriting:)``); the caller tries again later.
public struct StateLoadError: Error, CustomStringConvertible {
    public let description: String
}
