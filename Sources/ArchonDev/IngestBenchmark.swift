import ArchonController
import ArchonCore
import ArchonModel
import ArchonNATS
import ArchonWire
import Foundation
public import Logging
import ServiceLifecycle

/// `archon bench ingest`: how fast the controller consumes the event stream, against the yardstick of a bare pull
/// consumer over the same nats.c wrapper draining the same stream with the same batch, only counting and acking.
///
/// Each round starts a fresh nats-server, stores a fleet of `jobs` running jobs that have reported progress as the controller's state (through
/// the real `StateStore`), fills the events stream with `events` events of those jobs from ``EventSimulator``, then
/// lets the bare consumer and a real ``Controller`` (leader, in this process) each drain their own durable consumer
/// of it, one after the other. A rate is events over the time from the consumer's first acknowledgement to its
/// last — for the bare consumer the server's account of it (its ack floor), for the controller its acknowledgements
/// as they cross the wire; a controller that has not drained the stream after 30 s is measured on what it
/// consumed by then.
public enum IngestBenchmark {
    public struct Row: Codable, Sendable {
        /// Jobs the controller tracks; 0 = every event is of a job it does not know.
        public var trackedJobs: Int
        public var nodes: Int
        public var events: Int
        public var batch: Int
        /// Events per second, one entry per round.
        public var controller: [Double]
        public var bare: [Double]
        /// Median controller rate over median bare rate.
        public var ratio: Double
        /// Mean stored size of one event, bytes.
        public var eventBytes: Int
    }

    public static func run(trackedJobs: Int, simulatedJobs: Int, events: Int, rounds: Int, batch: Int,
                           logger: Logger, progress: @Sendable (String) -> Void = { _ in }) async throws -> Row {
        let now = UnixTime.nowMillis()
        let nodes = max(1, (max(trackedJobs, simulatedJobs) + 3) / 4)  // 4 jobs of one GPU on nodes of 8: all placed
        let fleet = trackedJobs > 0 ? StateScale.copiedRunningFleet(jobs: trackedJobs, nodes: nodes, training: true, at: now) : nil
        let placements = fleet.map(StateScale.runningPlacements) ?? EventSimulator.placements(jobs: simulatedJobs, nodes: nodes)
        var controllerRates: [Double] = []
        var bareRates: [Double] = []
        var eventBytes = 0
        for round in 1...max(1, rounds) {
            let bench = try await Bench.Server.start(name: "archon-bench-ingest", storing: fleet, logger: logger)
            defer { bench.stop() }
            eventBytes = try await fill(bench, placements: placements, events: events, seed: UInt64(round), at: now)
            progress("round \(round): \(events) events stored; bare consumer…")
            bareRates.append(try await drainBare(bench.js, events: events, batch: batch))
            progress("round \(round): bare \(Int(bareRates.last!)) events/s; controller…")
            controllerRates.append(try await drainController(server: bench.server, connection: bench.connection, events: events, batch: batch, logger: logger))
            progress("round \(round): controller \(Int(controllerRates.last!)) events/s")
        }
        let ratio = Bench.median(controllerRates) / max(Bench.median(bareRates), 1)
        return Row(trackedJobs: trackedJobs, nodes: nodes, events: events, batch: batch, controller: controllerRates, bare: bareRates,
                   ratio: ratio, eventBytes: eventBytes)
    }

    /// Publishes `events` simulated events, stamped one millisecond apart, and waits until the stream holds them all.
    /// Returns the mean payload size.
    static func fill(_ bench: Bench.Server, placements: [EventSimulator.Placement], events: Int, seed: UInt64, at now: Int64) async throws -> Int {
        var simulator = EventSimulator(jobs: placements, options: EventSimulator.Options(seed: seed))
        let bytes = try await simulator.publish(events, on: bench.connection) { now + Int64($0) }
        let deadline = ContinuousClock.now + .seconds(120)
        while try await bench.js.streamBounds(Fleet.eventsStream).last < UInt64(events) {
            guard ContinuousClock.now < deadline else { throw DevError("the events stream did not reach \(events) messages") }
            try await Task.sleep(for: .milliseconds(50))
        }
        return bytes / max(events, 1)
    }

    /// The yardstick: fetch `batch`, acknowledge each message, count; events per second.
    static func drainBare(_ js: JetStream, events: Int, batch: Int) async throws -> Double {
        let durable = "bench-bare"
        let consumer = try await js.pullConsumer(stream: Fleet.eventsStream, durable: durable, filterSubject: Fleet.eventsSubjects)
        var seen = 0
        var started: ContinuousClock.Instant?
        while seen < events {
            let messages = try await consumer.fetch(batch: batch, timeout: .seconds(2))
            guard !messages.isEmpty else { throw DevError("the bare consumer stopped at \(seen) of \(events) events") }
            if started == nil { started = .now }
            for message in messages { try message.ack() }
            seen += messages.count
        }
        // The rate counts from the first batch to the last acknowledgement the server has recorded.
        try await waitForAckFloor(js, durable: durable, events: events)
        return Double(events - batch) / Bench.seconds(ContinuousClock.now - started!)
    }

    /// A real controller, leader of an empty election, consuming with its own durable; events per second.
    ///
    /// Its progress is read from the wire: a subscriber of the consumer's acknowledgement subject sees each `+ACK` the
    /// controller sends. Asking the server for the consumer's ack floor instead costs, on nats-server 2.9, a walk over
    /// every subject of the stream with the consumer locked: at 10,000 jobs one look every 500 ms kept the server busy
    /// for most of a second at a time while the controller waited, and slowed it by a third.
    static func drainController(server: NATSServer, connection: NATSConnection, events: Int, batch: Int, logger: Logger,
                                window: Duration = .seconds(30)) async throws -> Double {
        let acks = try connection.subscribe("$JS.ACK.\(Fleet.eventsStream).\(Controller.durableName).>", bufferLimit: 1 << 20)
        try await connection.flush()
        let config = ControllerConfig(id: "bench", nats: server.url, httpPort: 0, leaseSeconds: 10, fetchBatch: batch,
                                      ackWaitSeconds: 60, stateFlushSeconds: 3600)
        let controller = try Controller(config: config, logger: logger)
        let task = Task {
            try await ServiceGroup(configuration: .init(services: [controller], logger: logger)).run()
        }
        defer { task.cancel() }
        let watchdog = Task {
            try await Task.sleep(for: .seconds(600))
            acks.unsubscribe()
        }
        defer { watchdog.cancel() }
        var acknowledged = 0
        var first: (at: ContinuousClock.Instant, count: Int)?
        for await messages in acks {
            // Naks and terms travel on the same subject; only acknowledgements count (an empty body is one too).
            acknowledged += messages.count { $0.payload.isEmpty || $0.payload.starts(with: Array("+ACK".utf8)) }
            guard let start = first else {
                first = (.now, acknowledged)
                continue
            }
            // The whole stream, or what it consumed in `window` when slower: a rate either way.
            if acknowledged >= events || ContinuousClock.now - start.at >= window {
                guard acks.dropped == 0 else { throw DevError("\(acks.dropped) acknowledgements were not seen: no rate") }
                let rate = Double(acknowledged - start.count) / Bench.seconds(ContinuousClock.now - start.at)
                // Stopped before the round's server is: no controller of this round runs into the next.
                task.cancel()
                _ = try? await task.value
                return rate
            }
        }
        throw DevError("the controller did not consume \(events) events within 10 minutes (\(acknowledged) acknowledged)")
    }

    static func waitForAckFloor(_ js: JetStream, durable: String, events: Int) async throws {
        while try await js.consumerProgress(stream: Fleet.eventsStream, durable: durable).ackFloor < UInt64(events) {
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// The table `archon bench ingest` prints.
    public static func table(_ rows: [Row]) -> String {
        var out = "| tracked jobs | nodes | events | bytes/event | controller events/s | bare consumer events/s | ratio |\n"
        out += "|---:|---:|---:|---:|---:|---:|---:|\n"
        for r in rows {
            let controller = r.controller.map { String(format: "%.0f", $0) }.joined(separator: " / ")
            let bare = r.bare.map { String(format: "%.0f", $0) }.joined(separator: " / ")
            out += "| \(r.trackedJobs == 0 ? "0 (unknown jobs)" : "\(r.trackedJobs)") | \(r.nodes) | \(r.events) | \(r.eventBytes) | "
            out += "\(controller) | \(bare) | " + String(format: "%.2f", r.ratio) + " |\n"
        }
        return out
    }
}
