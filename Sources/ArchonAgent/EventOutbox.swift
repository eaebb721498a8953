public import ArchonModel
import ArchonNATS
import ArchonWire
import Foundation
import Glibc
public import Logging
import Metrics
import Synchronization

/// The agent's outgoing events: numbered, spooled on disk, published in order, deleted once JetStream acknowledges
/// them.
///
/// **Spool.** One append-only file at a time (`outbox/<n>.log`, frames of length, CRC-32 and the event's protobuf
/// bytes), written by one flusher thread in **group commits**: whatever was appended since the last commit is written
/// and `fdatasync`ed together, at most every `commitInterval` (10 ms), so a busy node pays one sync per commit rather
/// than per event. An event is published only once its commit is on disk: a crash never leaves a published event that
/// the restarted agent does not know of. A file is deleted when every event in it is acknowledged; a restarted agent
/// reads the files left and publishes what they hold, in order (a republish is dropped by the stream's de-duplication).
///
/// **Sequence numbers** (per attempt, gap-free, message id `<job>.<attempt>.<sequence>`) are handed out here, in
/// memory, and are durable through the spool: a restarted agent continues after the highest number its files hold
/// or its per-attempt `sequence` file says, whichever is higher. A sequence file is written only when spool files
/// holding that attempt's events are deleted (so that the numbers they held are never used again), not per event.
///
/// **A full or read-only disk** — often the very fault an event reports — does not stop the reports: a commit that
/// cannot be written keeps its events in memory, publishable in their place in the order (`agent.outbox.held_in_memory`);
/// they are lost only if the agent also restarts before NATS acknowledges them.
public final class EventOutbox: Sendable {
    /// Publishes one event; throws when it was not acknowledged.
    public typealias Publish = @Sendable (_ subject: String, _ payload: [UInt8], _ messageID: String) async throws -> Void

    /// A spool file past this size is closed and a new one begun (8 MiB unless a test says otherwise).
    private let segmentBytes: UInt64
    /// Events whose bytes stay in memory; older unacknowledged ones are read back from their file when sent.
    static let bytesInMemory = 50_000

    /// Whose numbering an event continues: an attempt of a job, or the node (`job` empty, `attempt` 0).
    struct SequenceKey: Hashable, Sendable {
        var job: String
        var attempt: Int

        init(_ event: TrainingEvent) {
            job = event.jobID
            attempt = event.jobID.isEmpty ? 0 : event.attempt
        }
    }

    /// Where a key's numbering is kept between agents: `sequenceFile(job, attempt)`, as the agent lays its folder out.
    public typealias SequenceFile = @Sendable (_ jobID: String, _ attempt: Int) -> String

    private struct Record {
        var bytes: [UInt8]?
        var subject: String
        var messageID: String
        var key: SequenceKey
        var sequence: UInt64
        /// Where its frame starts, once written (nil: not written, or could not be).
        var segment: UInt64?
        var offset: UInt64 = 0
        var length = 0
        var committed = false
    }

    private struct SequenceCounter {
        var next: UInt64
        /// What its file holds (the next number after the last one that left the spool).
        var stored: UInt64
        var lastUsed: ContinuousClock.Instant
    }

    /// Indexes are absolute (counted from the first record this agent process held): `records[i - base]`.
    private struct State {
        var records: [Record] = []
        var base = 0
        /// The oldest unacknowledged record.
        var head = 0
        /// Records from here on are appended but not committed.
        var uncommittedFrom = 0
        /// Records below this one that are on disk no longer keep their bytes in memory.
        var bytesDroppedBelow = 0
        /// One-file-per-event spool files of older agents, removed once their events are in a commit.
        var legacyFiles: [String] = []
        var end: Int { base + records.count }
        var counters: [SequenceKey: SequenceCounter] = [:]
        /// Highest sequence per key found in the spool at start (consulted when a counter is made).
        var recovered: [SequenceKey: UInt64] = [:]
        /// Unacknowledged records per spool file, and per file the highest sequence per key it held.
        var segmentLive: [UInt64: Int] = [:]
        var segmentKeys: [UInt64: [SequenceKey: UInt64]] = [:]
        var segment: UInt64 = 0
        var segmentSize: UInt64 = 0
        var inMemoryOnly = 0
        var commits = 0
        var publisherWaiting: CheckedContinuation<Void, Never>?
    }

    private let directory: String
    private let sequenceFile: SequenceFile
    private let logger: Logger
    private let state: Mutex<State>
    private let commitInterval: Duration
    /// Wakes the flusher thread (a count of appends is fine: it drains everything on each wake-up).
    private let appended = DispatchSemaphore(value: 0)
    /// One collection of spool files at a time (the flusher and the publisher both start one).
    private let collecting = Mutex(())

    // Made at first use, after the executable bootstraps its metrics backend (`archon agent --metrics-port`).
    /// Events spooled and not yet acknowledged by JetStream: grows while NATS is away.
    static let spoolDepth = Gauge(label: "archon_agent_spool_depth")
    static let published = Counter(label: "archon_agent_events_published_total")
    static let publishFailures = Counter(label: "archon_agent_publish_failures_total")
    static let commits = Counter(label: "archon_agent_spool_commits_total")

    /// `sequenceFile` says where each attempt's (and the node's) numbering is kept between agents.
    public init(directory: String, sequenceFile: @escaping SequenceFile, logger: Logger, commitInterval: Duration = .milliseconds(10),
                segmentBytes: UInt64 = 8 << 20) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        self.directory = directory
        self.sequenceFile = sequenceFile
        self.logger = logger
        self.commitInterval = commitInterval
        self.segmentBytes = max(segmentBytes, 1)
        var s = State()
        let recovered = Self.recover(directory: directory, logger: logger, into: &s)
        state = Mutex(s)
        Self.spoolDepth.record(s.records.count)
        _ = (Self.published, Self.publishFailures, Self.commits)  // on /metrics from the start, at 0
        if recovered > 0 { logger.info("agent.outbox.recovered", metadata: ["outbox.pending": "\(recovered)"]) }
        // The flusher holds the outbox weakly: it ends (closing its file) once the outbox is released.
        let appended = self.appended
        let thread = Thread { [weak self] in
            var file = SpoolFile()
            defer { file.close() }
            while true {
                appended.wait()
                guard let outbox = self else { return }
                outbox.commit(&file)
            }
        }
        thread.name = "archon.agent.spool"
        thread.start()
        if s.uncommittedFrom < s.end { appended.signal() }  // an older agent's events: into the spool without waiting for a new one
    }

    deinit {
        appended.signal()  // the flusher wakes, finds the outbox gone, and ends
    }

    /// Events written but not yet acknowledged by the stream.
    public var pendingCount: Int { state.withLock { $0.end - $0.head } }

    /// Group commits made (tests: appends are committed together).
    var commitCount: Int { state.withLock { $0.commits } }

    /// Events waiting in memory because their commit could not be written.
    public var inMemoryCount: Int { state.withLock { $0.inMemoryOnly } }

    // MARK: Appending

    /// Numbers and spools an event of `jobID`'s `attempt` (an empty job and attempt 0: a node event). Thread-safe;
    /// keeps the order of calls. Returns the sequence used.
    @discardableResult
    public func append(jobID: String, attempt: Int, nodeID: String, timeMs: Int64, body: TrainingEvent.Body) -> UInt64 {
        state.withLock { s -> UInt64 in
            var event = TrainingEvent(jobID: jobID, nodeID: nodeID, attempt: jobID.isEmpty ? 0 : attempt, sequence: 0, timeMs: timeMs, body: body)
            let key = SequenceKey(event)
            var counter = s.counters[key] ?? Self.counter(file: sequenceFile(key.job, key.attempt), recovered: s.recovered[key])
            event.sequence = counter.next
            counter.next += 1
            counter.lastUsed = .now
            s.counters[key] = counter
            let bytes = event.encoded()
            s.records.append(Record(bytes: bytes, subject: Self.subject(for: event), messageID: event.messageID, key: key,
                                    sequence: event.sequence))
            Self.spoolDepth.record(s.end - s.head)
            appended.signal()
            return event.sequence
        }
    }

    private static func counter(file: String, recovered: UInt64?) -> SequenceCounter {
        let stored = (try? String(contentsOfFile: file, encoding: .utf8)).flatMap { UInt64($0.trimmingCharacters(in: .whitespacesAndNewlines)) } ?? 1
        return SequenceCounter(next: max(stored, (recovered ?? 0) + 1, 1), stored: stored, lastUsed: .now)
    }

    // MARK: Group commit

    /// The flusher's open spool file.
    struct SpoolFile {
        var fd: Int32 = -1
        var segment: UInt64?

        mutating func close() {
            if fd >= 0 { _ = Glibc.close(fd) }
            fd = -1
            segment = nil
        }
    }

    /// One group commit: everything appended since the last one, written and synced together, then handed to the
    /// publisher. Runs on the flusher thread only.
    private func commit(_ file: inout SpoolFile) {
        // Let a burst gather: one sync for all that arrives within the commit interval.
        let c = commitInterval.components
        if c.seconds > 0 || c.attoseconds > 0 { Thread.sleep(forTimeInterval: Double(c.seconds) + Double(c.attoseconds) / 1e18) }
        while appended.wait(timeout: .now()) == .success {}
        let (first, batch, segment, size) = state.withLock { s -> (Int, [[UInt8]], UInt64, UInt64) in
            let batch = (s.uncommittedFrom..<s.end).map { s.records[$0 - s.base].bytes ?? [] }
            return (s.uncommittedFrom, batch, s.segment, s.segmentSize)
        }
        guard !batch.isEmpty else { return }
        var frames: [UInt8] = []
        var offsets: [UInt64] = []
        for bytes in batch {
            offsets.append(size + UInt64(frames.count))
            Self.frame(bytes, into: &frames)
        }
        var failure = ""
        if file.segment != segment {
            file.close()
            file.fd = open("\(directory)/\(Self.segmentName(segment))", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
            if file.fd >= 0 { file.segment = segment } else { failure = "cannot open \(Self.segmentName(segment)): \(String(cString: strerror(errno)))" }
        }
        var written = false
        if file.fd >= 0 {
            if Self.writeAll(file.fd, frames), fdatasync(file.fd) == 0 {
                written = true
            } else {
                failure = String(cString: strerror(errno))
                _ = ftruncate(file.fd, off_t(size))  // a torn frame must not end the file
            }
        }
        Self.commits.increment()
        let (waiter, legacy) = state.withLock { s -> (CheckedContinuation<Void, Never>?, [String]) in
            for n in batch.indices {
                let i = first + n - s.base
                s.records[i].committed = true
                if written {
                    s.records[i].segment = segment
                    s.records[i].offset = offsets[n]
                    s.records[i].length = batch[n].count
                    let key = s.records[i].key
                    s.segmentLive[segment, default: 0] += 1
                    s.segmentKeys[segment, default: [:]][key] = max(s.segmentKeys[segment]?[key] ?? 0, s.records[i].sequence)
                } else {
                    s.inMemoryOnly += 1
                }
            }
            s.uncommittedFrom = first + batch.count
            s.commits += 1
            var legacy: [String] = []
            if written {
                s.segmentSize = size + UInt64(frames.count)
                if s.segmentSize >= self.segmentBytes {
                    s.segment += 1
                    s.segmentSize = 0
                }
                swap(&legacy, &s.legacyFiles)
                // Beyond the newest `bytesInMemory`, what is on disk is read back from there when sent.
                let keepFrom = max(s.head, s.end - Self.bytesInMemory)
                if keepFrom > s.bytesDroppedBelow {
                    for i in max(s.bytesDroppedBelow, s.base)..<keepFrom where s.records[i - s.base].segment != nil {
                        s.records[i - s.base].bytes = nil
                    }
                    s.bytesDroppedBelow = keepFrom
                }
            }
            defer { s.publisherWaiting = nil }
            return (s.publisherWaiting, legacy)
        }
        for path in legacy { try? FileManager.default.removeItem(atPath: path) }
        if !written {
            logger.error("agent.outbox.held_in_memory", metadata: [
                "outbox.events": "\(batch.count)", "outbox.in_memory": "\(inMemoryCount)", "error": "\(failure)",
            ])
        }
        waiter?.resume()
        if written { collectSegments() }
    }

    /// Length (4 bytes, little-endian), CRC-32 of the payload (4 bytes), payload.
    static func frame(_ payload: [UInt8], into out: inout [UInt8]) {
        let length = UInt32(payload.count)
        let crc = CRC32.checksum(payload)
        for shift in stride(from: 0, to: 32, by: 8) { out.append(UInt8(truncatingIfNeeded: length >> UInt32(shift))) }
        for shift in stride(from: 0, to: 32, by: 8) { out.append(UInt8(truncatingIfNeeded: crc >> UInt32(shift))) }
        out.append(contentsOf: payload)
    }

    private static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + done, bytes.count - done) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { return false }
            done += n
        }
        return true
    }

    static func segmentName(_ n: UInt64) -> String { String(format: "%020llu.log", n) }

    // MARK: Publishing

    /// Publishes events in order and says how many leading ones JetStream acknowledged (the rest are sent again).
    public typealias PublishBatch = @Sendable (_ events: [(subject: String, payload: [UInt8], messageID: String)]) async -> Int

    /// Events a batch publish carries at most.
    static let publishBatch = 256

    /// Sends committed events one at a time, in order, until cancelled (see ``run(publishBatch:)``).
    public func run(publish: @escaping Publish) async {
        await run(publishBatch: { events in
            var done = 0
            for event in events {
                do { try await publish(event.subject, event.payload, event.messageID) } catch { break }
                done += 1
            }
            return done
        })
    }

    /// Sends committed events in batches, in order, until cancelled: what is committed (up to 256 events) goes out at
    /// once; the acknowledged leading part is forgotten, the rest is sent again after a backoff, before anything later.
    public func run(publishBatch: PublishBatch) async {
        var backoff = Duration.milliseconds(100)
        while !Task.isCancelled {
            guard await nextCommitted() != nil else { return }
            let records = state.withLock { s -> [Record] in
                var out: [Record] = []
                var i = s.head
                while i < s.end, out.count < Self.publishBatch, s.records[i - s.base].committed {
                    out.append(s.records[i - s.base])
                    i += 1
                }
                return out
            }
            // The bytes of each (read back from its file when memory no longer holds them); one that cannot be read
            // is given up when it is first, else ends the batch.
            var batch: [(subject: String, payload: [UInt8], messageID: String)] = []
            for record in records {
                guard let payload = record.bytes ?? read(record) else { break }
                batch.append((record.subject, payload, record.messageID))
            }
            if batch.isEmpty {
                logger.error("agent.outbox.unreadable", metadata: ["event.message_id": "\(records[0].messageID)"])
                acknowledged(records[0])
                continue
            }
            let done = await publishBatch(batch)
            Self.published.increment(by: done)
            for record in records.prefix(done) { acknowledged(record) }
            if done < batch.count {
                Self.publishFailures.increment()
                logger.warning("agent.outbox.publish_failed", metadata: [
                    "outbox.pending": "\(pendingCount)", "outbox.sent": "\(done) of \(batch.count)", "retry.in": "\(backoff)",
                ])
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 2, .seconds(5))
            } else {
                backoff = .milliseconds(100)
            }
        }
    }

    /// `archon.v1.events.<node>.<job>`, or `archon.v1.events.<node>._node` for node-wide events.
    public static func subject(for event: TrainingEvent) -> String {
        Fleet.eventsSubject(node: event.nodeID, job: event.jobID.isEmpty ? nil : event.jobID)
    }

    private func nextCommitted() async -> Record? {
        while !Task.isCancelled {
            if let record = state.withLock({ s in s.head < s.end && s.records[s.head - s.base].committed ? s.records[s.head - s.base] : nil }) {
                return record
            }
            await withTaskCancellationHandler {
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let resumeNow = state.withLock { s in
                        if (s.head < s.end && s.records[s.head - s.base].committed) || Task.isCancelled { return true }
                        s.publisherWaiting = continuation
                        return false
                    }
                    if resumeNow { continuation.resume() }
                }
            } onCancel: {
                let waiter = state.withLock { s in
                    defer { s.publisherWaiting = nil }
                    return s.publisherWaiting
                }
                waiter?.resume()
            }
        }
        return nil
    }

    /// The oldest record is acknowledged (or given up as unreadable): forget it.
    private func acknowledged(_ record: Record) {
        state.withLock { s in
            guard s.head < s.end, s.records[s.head - s.base].messageID == record.messageID else { return }
            if let segment = s.records[s.head - s.base].segment { s.segmentLive[segment, default: 1] -= 1 } else { s.inMemoryOnly -= 1 }
            s.head += 1
            // Forget acknowledged records now and then (not one by one: that would move the array each time).
            if s.head - s.base >= 4096, (s.head - s.base) * 2 >= s.records.count {
                s.records.removeFirst(s.head - s.base)
                s.base = s.head
            }
            Self.spoolDepth.record(s.end - s.head)
        }
        if record.segment.map({ seg in state.withLock { $0.segmentLive[seg] == 0 && seg != $0.segment } }) ?? false {
            collectSegments()
        }
    }

    /// Deletes spool files whose events are all acknowledged (never the one being written), first storing in each
    /// key's sequence file the next number after the highest the file held — also for keys known only from a spool an
    /// older agent left — so that none is used again. One collection at a time.
    private func collectSegments() {
        collecting.withLock { _ in
            let done = state.withLock { s -> [(UInt64, [(SequenceKey, UInt64)])] in
                s.segmentLive.filter { $0.value == 0 && $0.key != s.segment }.keys.sorted().map { segment in
                    (segment, (s.segmentKeys[segment] ?? [:]).map { key, highest in (key, max(highest + 1, s.counters[key]?.next ?? 0)) })
                }
            }
            for (segment, keys) in done {
                var stored = true
                for (key, next) in keys {
                    let file = sequenceFile(key.job, key.attempt)
                    let current = state.withLock { $0.counters[key]?.stored ?? 0 }
                    // A job whose folder is gone (removed from this node) has nothing left to number.
                    guard current < next, FileManager.default.fileExists(atPath: (file as NSString).deletingLastPathComponent) else { continue }
                    do {
                        try "\(next)".write(toFile: file, atomically: true, encoding: .utf8)
                        state.withLock { $0.counters[key]?.stored = next }
                    } catch {
                        stored = false
                        logger.warning("agent.sequence.write_failed", metadata: ["sequence.file": "\(file)", "error": "\(error)"])
                    }
                }
                guard stored else { continue }  // the file stays: its numbers must not be forgotten
                try? FileManager.default.removeItem(atPath: "\(directory)/\(Self.segmentName(segment))")
                state.withLock { s in
                    s.segmentLive[segment] = nil
                    s.segmentKeys[segment] = nil
                    // Counters unused for ten minutes whose file is current are read again from it when needed.
                    let idle = ContinuousClock.now - .seconds(600)
                    s.counters = s.counters.filter { $0.value.lastUsed > idle || $0.value.stored < $0.value.next }
                }
            }
        }
    }

    /// The bytes of a record whose copy in memory was dropped, from its spool file.
    private func read(_ record: Record) -> [UInt8]? {
        guard let segment = record.segment, let handle = FileHandle(forReadingAtPath: "\(directory)/\(Self.segmentName(segment))") else { return nil }
        defer { try? handle.close() }
        guard (try? handle.seek(toOffset: record.offset + 8)) != nil, let data = try? handle.read(upToCount: record.length),
              data.count == record.length else { return nil }
        return Array(data)
    }

    // MARK: Recovery

    /// Reads the spool files a previous agent left (and the one-file-per-event spool of older agents), in order;
    /// returns how many events are pending. A torn frame at the end of a file (a crash mid-write) ends that file.
    private static func recover(directory: String, logger: Logger, into s: inout State) -> Int {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted()
        var lastSegment: UInt64?
        for name in names where name.hasSuffix(".log") {
            guard let segment = UInt64(name.dropLast(4)), let data = FileManager.default.contents(atPath: "\(directory)/\(name)") else { continue }
            lastSegment = segment
            let bytes = [UInt8](data)
            var at = 0
            var live = 0
            while at + 8 <= bytes.count {
                let length = Int(bytes[at]) | Int(bytes[at + 1]) << 8 | Int(bytes[at + 2]) << 16 | Int(bytes[at + 3]) << 24
                let crc = UInt32(bytes[at + 4]) | UInt32(bytes[at + 5]) << 8 | UInt32(bytes[at + 6]) << 16 | UInt32(bytes[at + 7]) << 24
                guard at + 8 + length <= bytes.count else { break }
                let payload = Array(bytes[(at + 8)..<(at + 8 + length)])
                guard CRC32.checksum(payload) == crc, let event = try? TrainingEvent.decode(payload) else {
                    logger.error("agent.outbox.corrupt", metadata: ["outbox.file": "\(name)", "outbox.offset": "\(at)"])
                    break
                }
                let key = SequenceKey(event)
                s.records.append(Record(bytes: s.records.count < bytesInMemory ? payload : nil, subject: subject(for: event),
                                        messageID: event.messageID, key: key, sequence: event.sequence, segment: segment,
                                        offset: UInt64(at), length: length, committed: true))
                s.recovered[key] = max(s.recovered[key] ?? 0, event.sequence)
                s.segmentKeys[segment, default: [:]][key] = max(s.segmentKeys[segment]?[key] ?? 0, event.sequence)
                live += 1
                at += 8 + length
            }
            s.segmentLive[segment] = live
        }
        // Events of agents that spooled one file per event (`<n>.pb`), before this format: sent after the above, in
        // their order; their files are removed once the first commit holds them.
        for name in names where name.hasSuffix(".pb") {
            let path = "\(directory)/\(name)"
            guard let data = FileManager.default.contents(atPath: path), let event = try? TrainingEvent.decode([UInt8](data)) else {
                logger.error("agent.outbox.corrupt", metadata: ["outbox.file": "\(name)"])
                continue
            }
            let key = SequenceKey(event)
            s.records.append(Record(bytes: [UInt8](data), subject: subject(for: event), messageID: event.messageID, key: key,
                                    sequence: event.sequence, committed: false))
            s.recovered[key] = max(s.recovered[key] ?? 0, event.sequence)
            s.legacyFiles.append(path)
        }
        // New events go to a new file; the uncommitted legacy ones are written to it by the first commit.
        s.segment = (lastSegment ?? 0) + (lastSegment == nil ? 0 : 1)
        s.uncommittedFrom = s.records.firstIndex { !$0.committed } ?? s.records.count
        s.bytesDroppedBelow = 0
        return s.records.count
    }
}

/// CRC-32 (IEEE), for the spool's frames.
enum CRC32 {
    static let table: [UInt32] = (0..<256).map { i -> UInt32 in
        var c = UInt32(i)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    static func checksum(_ bytes: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes { c = table[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }
}
