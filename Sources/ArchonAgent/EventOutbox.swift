public import ArchonModel
import ArchonNATS
import ArchonWire
import Foundation
public import Logging
import Metrics
import Synchronization

/// The agent's outgoing events, spooled on disk until JetStream acknowledges them.
///
/// Every event is written to a file of its own (named by a counter, so the folder sorts in order)
/// before anything is sent. One sender publishes the oldest with its message id, deletes it on the
/// stream's ack, and on failure retries the same one with backoff: while NATS is unreachable events
/// accumulate on disk, and when it returns they go out in order — none lost, and a republish after a
/// crash between ack and delete is dropped by the stream's de-duplication window.
///
/// When the file cannot be written (the node's disk is full or read-only — often the very fault the event
/// reports) the event waits in memory instead, in the same order: it is lost only if the agent also restarts
/// before NATS acknowledges it. Each such event is logged.
public final class EventOutbox: Sendable {
    /// Publishes one event; throws when it was not acknowledged.
    public typealias Publish = @Sendable (_ subject: String, _ payload: [UInt8], _ messageID: String) async throws -> Void

    private struct State {
        var next: UInt64
        /// File names, in order; a name in `inMemory` has no file.
        var pending: [String]
        /// Events whose file could not be written, by name.
        var inMemory: [String: [UInt8]] = [:]
        var wakeUp: CheckedContinuation<Void, Never>?
    }

    private let directory: String
    private let logger: Logger
    private let state: Mutex<State>

    // Made at first use, after the executable bootstraps its metrics backend (`archon agent --metrics-port`).
    /// Events spooled and not yet acknowledged by JetStream: grows while NATS is away.
    static let spoolDepth = Gauge(label: "archon_agent_spool_depth")
    static let published = Counter(label: "archon_agent_events_published_total")
    static let publishFailures = Counter(label: "archon_agent_publish_failures_total")

    public init(directory: String, logger: Logger) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let pending = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".pb") }.sorted()
        let next = pending.last.flatMap { UInt64($0.dropLast(3)) }.map { $0 + 1 } ?? 0
        self.directory = directory
        self.logger = logger
        state = Mutex(State(next: next, pending: pending, wakeUp: nil))
        Self.spoolDepth.record(pending.count)
        _ = (Self.published, Self.publishFailures)  // on /metrics from the start, at 0
        if !pending.isEmpty {
            logger.info("agent.outbox.recovered", metadata: ["outbox.pending": "\(pending.count)"])
        }
    }

    /// Events written but not yet acknowledged by the stream.
    public var pendingCount: Int { state.withLock { $0.pending.count } }

    /// Events waiting in memory because their file could not be written.
    public var inMemoryCount: Int { state.withLock { $0.inMemory.count } }

    /// Spools an event; it is sent by ``run(publish:)``. Thread-safe; keeps the order of calls. A failed write does not
    /// lose the event: it waits in memory then (see the type's note).
    public func append(_ event: TrainingEvent) {
        let bytes = event.encoded()
        let (waiter, writeError): (CheckedContinuation<Void, Never>?, (any Error)?) = state.withLock { s in
            let name = String(format: "%020llu.pb", s.next)
            var failure: (any Error)?
            do {
                try Data(bytes).write(to: URL(fileURLWithPath: "\(directory)/\(name)"))
            } catch {
                try? FileManager.default.removeItem(atPath: "\(directory)/\(name)")  // a partial file must not be sent
                s.inMemory[name] = bytes
                failure = error
            }
            s.next += 1
            s.pending.append(name)
            Self.spoolDepth.record(s.pending.count)
            defer { s.wakeUp = nil }
            return (s.wakeUp, failure)
        }
        if let writeError {
            logger.error("agent.outbox.held_in_memory", metadata: [
                "event.message_id": "\(event.messageID)", "outbox.in_memory": "\(inMemoryCount)", "error": "\(writeError)",
            ])
        }
        waiter?.resume()
    }

    /// Sends spooled events until cancelled.
    public func run(publish: Publish) async {
        var backoff = Duration.milliseconds(100)
        while !Task.isCancelled {
            guard let name = await nextPending() else { return }
            let path = "\(directory)/\(name)"
            guard let data = state.withLock({ $0.inMemory[name] }).map({ Data($0) }) ?? FileManager.default.contents(atPath: path) else {
                logger.error("agent.outbox.unreadable", metadata: ["outbox.file": "\(path)"])
                drop(name)
                continue
            }
            let event: TrainingEvent
            do {
                event = try TrainingEvent.decode(Array(data))
            } catch {
                logger.error("agent.outbox.corrupt", metadata: ["outbox.file": "\(path)", "error": "\(error)"])
                drop(name)
                continue
            }
            do {
                try await publish(Self.subject(for: event), Array(data), event.messageID)
                Self.published.increment()
                drop(name)
                backoff = .milliseconds(100)
            } catch {
                Self.publishFailures.increment()
                logger.warning("agent.outbox.publish_failed", metadata: [
                    "outbox.pending": "\(pendingCount)", "error": "\(error)", "retry.in": "\(backoff)",
                ])
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 2, .seconds(5))
            }
        }
    }

    /// `archon.v1.events.<node>.<job>`, or `archon.v1.events.<node>._node` for node-wide events.
    public static func subject(for event: TrainingEvent) -> String {
        Fleet.eventsSubject(node: event.nodeID, job: event.jobID.isEmpty ? nil : event.jobID)
    }

    private func drop(_ name: String) {
        let onDisk = state.withLock { $0.inMemory[name] == nil }
        if onDisk { try? FileManager.default.removeItem(atPath: "\(directory)/\(name)") }
        state.withLock { s in
            s.inMemory[name] = nil
            if s.pending.first == name { s.pending.removeFirst() }
            Self.spoolDepth.record(s.pending.count)
        }
    }

    private func nextPending() async -> String? {
        while !Task.isCancelled {
            if let first = state.withLock({ $0.pending.first }) { return first }
            await withTaskCancellationHandler {
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let resumeNow = state.withLock { s in
                        if !s.pending.isEmpty || Task.isCancelled { return true }
                        s.wakeUp = continuation
                        return false
                    }
                    if resumeNow { continuation.resume() }
                }
            } onCancel: {
                let waiter = state.withLock { s in
                    defer { s.wakeUp = nil }
                    return s.wakeUp
                }
                waiter?.resume()
            }
        }
        return nil
    }
}
