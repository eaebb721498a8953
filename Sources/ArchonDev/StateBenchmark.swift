import ArchonController
import ArchonCore
import ArchonModel
import ArchonNATS
import Foundation
public import Logging

/// `archon bench state`: what the controller's state costs at a fleet size, measured through the real store
/// on a real nats-server (started here, on a free loopback port, with its store in a temporary folder).
public enum StateBenchmark {
    public struct Row: Codable, Sendable {
        public var jobs: Int
        public var nodes: Int
        public var running: Int
        /// The first commit holds every entity: what a full snapshot would write, for comparison.
        public var fullStateBytes: Int
        /// Bytes one journal record takes for a batch of 256 epoch events of 256 distinct running jobs (median of 100).
        public var epochBatchBytes: Int
        /// Bytes one journal record takes for 256 node heartbeats.
        public var heartbeatBatchBytes: Int
        /// Milliseconds to store one batch of 256 epoch events (median, the publish round trips included).
        public var epochBatchMillis: Double
        /// Seconds a new leader takes to read KV and replay the journal (100 batches) into a core.
        public var rebuildSeconds: Double
        /// Resident memory of this process after the rebuild, MiB (two cores are alive then: an upper bound).
        public var residentMiB: Int
    }

    public static func run(jobs: Int, nodes: Int, logger: Logger) async throws -> Row {
        let server = try NATSServer()
        defer { server.stop() }
        let connection = try await NATSConnection.connect(NATSOptions(servers: [server.url], name: "archon-bench"), logger: logger)
        defer { connection.close() }
        let js = try connection.jetStream()
        let now = UnixTime.nowMillis()
        var core = StateScale.copiedRunningFleet(jobs: jobs, nodes: nodes, at: now)
        let running = core.jobs.filter { $0.status == .running }.count
        let store = try await StateStore.open(js, writer: "bench", flushInterval: .seconds(3600), logger: logger)
        let everything = StateScale.entities(of: core)
        let fullBytes = try await store.commit(everything, outbox: [])
        await store.flush()

        var epochBytes: [Int] = []
        var epochMillis: [Double] = []
        for batch in 1...100 {
            _ = StateScale.epochBatch(&core, count: 256, epoch: batch, at: now + Int64(batch) * 1000)
            let changes = core.takeChanges().map { ($0, core.stored($0)) }
            let started = ContinuousClock.now
            epochBytes.append(try await store.commit(changes, outbox: []))
            epochMillis.append(Bench.seconds(ContinuousClock.now - started) * 1000)
        }
        for n in 0..<min(256, nodes) {
            let beat = TrainingEvent(jobID: "", nodeID: "node-\(n)", attempt: 0, sequence: 0, timeMs: now + 200_000, body: .heartbeat(Heartbeat()))
            _ = core.eventReceived(beat, subjectNode: "node-\(n)", at: now + 200_000)
        }
        let heartbeatBytes = try await store.commit(core.takeChanges().map { ($0, core.stored($0)) }, outbox: [])

        let started = ContinuousClock.now
        let (rebuilt, _) = try await StateStore.read(js, policy: core.policy, at: now + 300_000)
        let rebuild = ContinuousClock.now - started
        guard rebuilt.state.jobs.count == jobs, rebuilt.state.nodes.count == nodes else {
            throw DevError("rebuilt \(rebuilt.state.jobs.count) jobs and \(rebuilt.state.nodes.count) nodes, expected \(jobs) and \(nodes)")
        }
        return Row(
            jobs: jobs, nodes: nodes, running: running, fullStateBytes: fullBytes,
            epochBatchBytes: Int(Bench.median(epochBytes.map(Double.init))), heartbeatBatchBytes: heartbeatBytes, epochBatchMillis: Bench.median(epochMillis),
            rebuildSeconds: Bench.seconds(rebuild),
            residentMiB: residentMiB())
    }

    static func residentMiB() -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kib = Int(line.split(separator: " ").dropFirst().first ?? "")
        else { return 0 }
        return kib / 1024
    }

    /// The table `archon bench state` prints.
    public static func table(_ rows: [Row]) -> String {
        var out = "| jobs | nodes | running | full state (one record) | bytes / batch of 256 epochs | ms / batch | bytes / 256 heartbeats | rebuild | RSS after rebuild |\n"
        out += "|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
        for r in rows {
            out += "| \(r.jobs) | \(r.nodes) | \(r.running) | \(ByteCountText.human(r.fullStateBytes)) | \(ByteCountText.human(r.epochBatchBytes)) | "
            out += String(format: "%.1f", r.epochBatchMillis)
            out += " | \(ByteCountText.human(r.heartbeatBatchBytes)) | " + String(format: "%.2f s", r.rebuildSeconds) + " | \(r.residentMiB) MiB |\n"
        }
        return out
    }
}

enum ByteCountText {
    static func human(_ bytes: Int) -> String {
        if bytes >= 1 << 20 { return String(format: "%.1f MiB", Double(bytes) / 1_048_576) }
        if bytes >= 1 << 10 { return String(format: "%.1f KiB", Double(bytes) / 1024) }
        return "\(bytes) B"
    }
}
