import ArchonController
import ArchonCore
public import ArchonModel
public import ArchonNATS
import ArchonWire
import Logging

extension EventSimulator {
    /// Publishes `count` events (nil: until the task is cancelled) on the agents' subjects, at `rate` per second
    /// (0: as fast as the server takes them; ahead of the rate it sleeps in steps of at least 10 ms). Core NATS
    /// publishes flushed every 10,000, or, given `acknowledging`, each awaiting its JetStream acknowledgement (with
    /// the agent's message id). `timeMs` stamps the i-th event. Returns the bytes published.
    @discardableResult
    public mutating func publish(
        _ count: Int?, on connection: NATSConnection, rate: Double = 0, acknowledging js: JetStream? = nil,
        timeMs: (Int) -> Int64 = { _ in UnixTime.nowMillis() }
    ) async throws -> Int {
        let started = ContinuousClock.now
        let interval = rate > 0 ? Duration.nanoseconds(Int64(1e9 / rate)) : .zero
        var bytes = 0
        var i = 0
        while count.map({ i < $0 }) ?? !Task.isCancelled {
            if rate > 0 {
                let due = started + interval * i
                if due - .now > .milliseconds(10) { try await Task.sleep(until: due) }
            }
            let (subject, event) = next(timeMs: timeMs(i))
            let payload = event.encoded()
            bytes += payload.count
            if let js {
                _ = try await js.publish(subject, payload, messageID: "\(event.nodeID)-\(event.jobID)-\(event.attempt)-\(event.sequence)")
            } else {
                try connection.publish(subject, payload)
                if i % 10_000 == 9_999 { try await connection.flush(timeout: .seconds(30)) }
            }
            i += 1
        }
        try await connection.flush(timeout: .seconds(30))
        return bytes
    }
}

/// What the benchmarks share: a fresh nats-server holding the fleet's streams and, optionally, a stored controller
/// state; a duration in seconds; a median.
enum Bench {
    struct Server {
        let server: NATSServer
        let connection: NATSConnection
        let js: JetStream

        /// A new server on a free loopback port, the fleet's streams, and `core` stored as the controller's state
        /// through the real `StateStore` (nothing stored when nil).
        static func start(name: String, storing core: FleetController?, logger: Logger) async throws -> Server {
            let server = try NATSServer()
            let connection = try await NATSConnection.connect(NATSOptions(servers: [server.url], name: name), logger: logger)
            let js = try connection.jetStream(timeout: .seconds(30))
            try await Fleet.ensureStreams(js)
            if let core {
                let store = try await StateStore.open(js, writer: "bench", flushInterval: .seconds(3600), logger: logger)
                _ = try await store.commit(StateScale.entities(of: core), outbox: [])
                await store.flush()
            }
            return Server(server: server, connection: connection, js: js)
        }

        func stop() {
            connection.close()
            server.stop()
        }
    }

    static func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }

    /// The middle value; of an even count, the mean of the middle two (`make bench`'s two ingest rounds are both in
    /// their median); 0 of none.
    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return 0 }
        let middle = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }
}
