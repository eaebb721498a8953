import ArchonController
import ArchonCore
import ArchonModel
import ArchonNATS
import ArchonWire
import Foundation
import Histogram
public import Logging
import ServiceLifecycle

/// `archon bench latency`: from a failure event stored in the stream to the remediated assignment in KV, the
/// controller's decision latency, at idle and under a background load of simulated events.
///
/// A fleet of `jobs` running jobs is stored as the controller's state (restart backoff 0, so that nothing but the
/// controller stands between the two; the fleet-wide correlation rules off, since a few hundred made-up failures in
/// a minute would rightly freeze remediation); a real ``Controller`` (leader, in this process) consumes. Then, one job at a
/// time, an out-of-memory exit of a job that has not failed yet is published with its JetStream acknowledgement
/// awaited, and the clock runs until the watcher of `archon_desired` sees that job's new assignment. Under load,
/// ``EventSimulator`` events of the other jobs are published meanwhile at `loadRate` events per second. Sampling starts
/// once the new leader has written every running job's assignment (the stored fleet has none); under load, a
/// remediation later than a second ends that load's row as "did not keep up".
public enum LatencyBenchmark {
    public struct Row: Codable, Sendable {
        /// Background events per second while measuring; 0 = idle.
        public var loadRate: Int
        public var samples: Int
        public var p50Millis: Double
        public var p99Millis: Double
        public var p999Millis: Double
        public var maxMillis: Double
        /// Under this load a remediation took over a second: the controller did not keep up (the samples
        /// before it are the row's).
        public var overran = false
    }

    public static func run(jobs: Int, samples: Int, loadRates: [Int], logger: Logger,
                           progress: @Sendable (String) -> Void = { _ in }) async throws -> [Row] {
        let now = UnixTime.nowMillis()
        let nodes = max(1, (jobs + 3) / 4)
        let core = StateScale.copiedRunningFleet(jobs: jobs, nodes: nodes, at: now)
        let running = StateScale.runningPlacements(core)
        guard running.count >= samples * max(1, loadRates.count) + 1 else {
            throw DevError("\(jobs) jobs give \(running.count) running ones: too few for \(samples) samples at \(loadRates.count) rates")
        }
        let bench = try await Bench.Server.start(name: "archon-bench-latency", storing: core, logger: logger)
        defer { bench.stop() }
        let js = bench.js

        let policy = FileManager.default.temporaryDirectory.appendingPathComponent("archon-bench-policy-\(UUID().uuidString).yaml")
        // Backoff 0: nothing but the controller between the failure and the restart. The fleet rules off: hundreds of
        // made-up OOMs in a minute are a fleet-wide problem to them, and they would rightly freeze remediation.
        try """
            remediation:
              backoff: {initial: 0s, multiplier: 1, max: 0s}
            correlation:
              systemResource: {enabled: false}
              multiAgent: {enabled: false}
              badNode: {enabled: false}

            """.write(to: policy, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: policy) }
        let config = ControllerConfig(id: "bench", nats: bench.server.url, httpPort: 0, policyFile: policy.path, leaseSeconds: 10,
                                      ackWaitSeconds: 60, stateFlushSeconds: 3600)
        let controller = try Controller(config: config, logger: logger)
        let service = Task { try await ServiceGroup(configuration: .init(services: [controller], logger: logger)).run() }
        defer { service.cancel() }

        let desired = try await js.keyValue(KeyValueConfig(bucket: Fleet.desiredBucket))
        let watch = try await desired.watch(">")
        let assigned = AssignmentClock()
        let watcher = Task {
            for await event in watch {
                // A put of a later attempt than the one that failed: the remediation (reconciliation rewrites the same).
                guard case .entry(let entry) = event, entry.operation == .put,
                      let assignment = try? SignedAssignment.decode(entry.value).unverifiedAssignment()
                else { continue }
                if assignment.attempt > 1 { assigned.saw(assignment.spec.id) } else { assigned.sawFirstAttempt(assignment.spec.id) }
            }
        }
        defer { watcher.cancel() }
        try await waitUntilConsuming(js)
        // The stored fleet has no desired state yet: the new leader writes every running job's assignment first
        // (its takeover's reconciliation). A fleet at work has them; the samples start once they are all written.
        try await assigned.waitForFirstAttempts(running.count, timeout: .seconds(120))

        var pool = running.makeIterator()
        let loadJobs = Array(running.suffix(max(1, running.count - samples * loadRates.count)))
        var rows: [Row] = []
        for rate in loadRates {
            let load = rate > 0 ? Task {
                var simulator = EventSimulator(jobs: loadJobs, options: EventSimulator.Options(nodeHeartbeatShare: 0, seed: UInt64(rate)))
                try await simulator.publish(nil, on: bench.connection, rate: Double(rate))
            } : nil
            defer { load?.cancel() }
            if load != nil { try await Task.sleep(for: .seconds(1)) }  // the load settles
            var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
            var overran = false
            for _ in 0..<samples {
                guard let job = pool.next() else { break }
                let failure = TrainingEvent(jobID: job.jobID, nodeID: job.nodeID, attempt: job.attempt, sequence: job.nextSequence,
                                            timeMs: UnixTime.nowMillis(),
                                            body: .exited(JobExited(exitCode: -9, signal: 9, oomKilled: true, failureClass: .outOfMemory,
                                                                    detail: "bench", runtimeSeconds: 60)))
                assigned.expect(job.jobID)
                let started = ContinuousClock.now
                _ = try await js.publish("archon.v1.events.\(job.nodeID).\(job.jobID)", failure.encoded(),
                                         messageID: "bench-\(job.jobID)-\(job.attempt)-\(job.nextSequence)")
                // Under load, a remediation later than a second is a backlog that grows: the controller did not keep
                // up, and waiting for it would only measure the backlog (and take minutes).
                guard let seen = try await assigned.wait(for: job.jobID, timeout: rate > 0 ? .seconds(1) : .seconds(30)) else {
                    // Idle, that is a remediation that never comes: an error. Under load, a rate it cannot keep up
                    // with: the row says so and the next rate is measured.
                    guard rate > 0 else { throw DevError("no new assignment for \(job.jobID) within 30 s") }
                    overran = true
                    break
                }
                histogram.record(UInt64(max(0, Bench.seconds(seen - started) * 1e6)))
            }
            let row = Row(loadRate: rate, samples: Int(histogram.totalCount),
                          p50Millis: Double(histogram.valueAtPercentile(50)) / 1000,
                          p99Millis: Double(histogram.valueAtPercentile(99)) / 1000,
                          p999Millis: Double(histogram.valueAtPercentile(99.9)) / 1000,
                          maxMillis: Double(histogram.max) / 1000, overran: overran)
            progress(String(format: "load %d events/s: p50 %.1f ms, p99 %.1f ms", rate, row.p50Millis, row.p99Millis)
                     + (overran ? " — did not keep up (a remediation took over 1 s)" : ""))
            rows.append(row)
        }
        return rows
    }

    /// The table `archon bench latency` prints.
    public static func table(_ rows: [Row]) -> String {
        var out = "| background load | samples | p50 | p99 | p99.9 | max |\n|---:|---:|---:|---:|---:|---:|\n"
        for r in rows {
            out += "| \(r.loadRate == 0 ? "idle" : "\(r.loadRate) events/s") | \(r.samples) | "
            out += [r.p50Millis, r.p99Millis, r.p999Millis, r.maxMillis].map { String(format: "%.1f ms", $0) }.joined(separator: " | ")
            out += r.overran ? " (then a remediation took over 1 s: did not keep up) |\n" : " |\n"
        }
        return out
    }

    static func waitUntilConsuming(_ js: JetStream) async throws {
        let deadline = ContinuousClock.now + .seconds(60)
        while (try? await js.consumerProgress(stream: Fleet.eventsStream, durable: Controller.durableName)) == nil {
            guard ContinuousClock.now < deadline else { throw DevError("the controller did not start consuming within 60 s") }
            try await Task.sleep(for: .milliseconds(50))
        }
    }
}

/// When each awaited job's next assignment was seen.
final class AssignmentClock: @unchecked Sendable {
    private let lock = NSLock()
    private var awaited: Set<String> = []
    private var seen: [String: ContinuousClock.Instant] = [:]

    private var firstAttempts: Set<String> = []

    func expect(_ job: String) { lock.withLock { _ = awaited.insert(job) } }

    func sawFirstAttempt(_ job: String) { lock.withLock { _ = firstAttempts.insert(job) } }

    func waitForFirstAttempts(_ count: Int, timeout: Duration) async throws {
        let deadline = ContinuousClock.now + timeout
        while lock.withLock({ firstAttempts.count }) < count {
            guard ContinuousClock.now < deadline else {
                throw DevError("the controller wrote \(lock.withLock { firstAttempts.count }) of \(count) assignments at takeover within \(timeout)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    func saw(_ job: String) {
        let now = ContinuousClock.now
        lock.withLock {
            if awaited.remove(job) != nil { seen[job] = now }
        }
    }

    func wait(for job: String, timeout: Duration) async throws -> ContinuousClock.Instant? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let instant = lock.withLock({ seen.removeValue(forKey: job) }) { return instant }
            try await Task.sleep(for: .microseconds(200))
        }
        return nil
    }
}
