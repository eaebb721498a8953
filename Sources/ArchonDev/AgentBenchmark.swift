import ArchonAgent
import ArchonModel
import ArchonNATS
import ArchonWire
import Foundation
public import Logging

/// `archon bench agent`: what a node agent costs while its trainers talk. A real `archon agent` runs as a child process
/// (so that its CPU time is its own) against a fresh nats-server; `trainers` jobs of a stdlib-only trainer each write
/// `rate` step lines a second on fd 3; over `seconds` after a warm-up the agent's CPU time and resident memory are read
/// from /proc, the events it published from the stream. The trainers' own CPU is reported beside it.
public enum AgentBenchmark {
    public struct Row: Codable, Sendable {
        public var trainers: Int
        public var linesPerSecondEach: Int
        public var eventsPerSecond: Double
        /// Of one core.
        public var agentCPUPercent: Double
        public var agentMicrosecondsPerEvent: Double
        public var agentResidentMiB: Double
        public var agentPeakResidentMiB: Double
        public var trainersCPUPercent: Double
    }

    /// Writes `rate` step events a second on the events fd for `seconds`, then exits 0.
    static let trainer = #"""
        import json, os, sys, time
        rate, seconds = float(sys.argv[1]), float(sys.argv[2])
        out = os.fdopen(int(os.environ.get("ARCHON_EVENTS_FD", "3")), "w", buffering=1)
        start, step = time.monotonic(), 0
        while time.monotonic() - start < seconds:
            step += 1
            out.write(json.dumps({"type": "step", "step": step, "epoch": 1, "loss": 1.0 / step, "learningRate": 0.001,
                                  "samplesPerSecond": 100.0}) + "\n")
            time.sleep(max(0.0, start + step / rate - time.monotonic()))
        """#

    public static func run(trainers: Int, rates: [Int], seconds: Double, archon: String, logger: Logger,
                           progress: (String) -> Void) async throws -> [Row] {
        let bench = try await Bench.Server.start(name: "bench-agent", storing: nil, logger: logger)
        defer { bench.stop() }
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("archon-bench-agent-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        let script = "\(work)/bench_trainer.py"
        try trainer.write(toFile: script, atomically: true, encoding: .utf8)
        // A leadership lease whose revision makes fencing epoch 1 believable.
        _ = try await bench.js.keyValue(KeyValueConfig(bucket: Fleet.leaderBucket)).put("lease", Array("bench".utf8))
        let desired = try await bench.js.keyValue(KeyValueConfig(bucket: Fleet.desiredBucket))

        let agent = Process()
        agent.executableURL = URL(fileURLWithPath: archon)
        agent.arguments = ["agent", "--node-id", "bench", "--nats", bench.server.url, "--work-dir", "\(work)/agent",
                           "--insecure-unsigned-assignments", "--memory-enforcement", "none", "--stop-jobs-on-exit"]
        agent.standardOutput = FileHandle.nullDevice
        agent.standardError = FileHandle.nullDevice
        try agent.run()
        defer {
            agent.terminate()
            agent.waitUntilExit()
        }
        var rows: [Row] = []
        for rate in rates {
            progress("\(trainers) trainers at \(rate) lines/s each…")
            let jobs = (0..<trainers).map { "bench-\(rate)-\($0)" }
            for job in jobs {
                var spec = JobSpec(id: job, name: "bench", team: "bench", command: ["python3", script, "\(rate)", "\(Int(seconds) + 15)"])
                spec.config.epochs = 1
                let assignment = JobAssignment(spec: spec, attempt: 1, fencingEpoch: 1, nodeID: "bench", assignedAtMs: UnixTime.nowMillis())
                _ = try await desired.put("bench.\(job)", SignedAssignment(unsigned: assignment).encoded())
            }
            // The trainers start, then the agent settles.
            let started = ContinuousClock.now + .seconds(20)
            while trainerPIDs(script).count < trainers, ContinuousClock.now < started { try await Task.sleep(for: .milliseconds(200)) }
            try await Task.sleep(for: .seconds(3))
            let pids = trainerPIDs(script)
            guard pids.count == trainers else { throw DevError("\(pids.count) of \(trainers) trainers run after 20 s (is python3 on PATH?)") }
            let before = (agent: NodeProbe.cpuSeconds(pid: agent.processIdentifier), trainers: pids.map { NodeProbe.cpuSeconds(pid: $0) }.reduce(0, +),
                          events: try await bench.js.streamBounds(Fleet.eventsStream).last, at: ContinuousClock.now)
            try await Task.sleep(for: .milliseconds(Int(seconds * 1000)))
            let elapsed = Bench.seconds(ContinuousClock.now - before.at)
            let agentCPU = NodeProbe.cpuSeconds(pid: agent.processIdentifier) - before.agent
            let trainersCPU = pids.map { NodeProbe.cpuSeconds(pid: $0) }.reduce(0, +) - before.trainers
            let events = Double(try await bench.js.streamBounds(Fleet.eventsStream).last - before.events)
            let memory = residentMiB(agent.processIdentifier)
            rows.append(Row(trainers: trainers, linesPerSecondEach: rate, eventsPerSecond: events / elapsed,
                            agentCPUPercent: agentCPU / elapsed * 100, agentMicrosecondsPerEvent: events > 0 ? agentCPU / events * 1e6 : 0,
                            agentResidentMiB: memory.current, agentPeakResidentMiB: memory.peak, trainersCPUPercent: trainersCPU / elapsed * 100))
            for job in jobs { try await desired.delete("bench.\(job)") }
            let deadline = ContinuousClock.now + .seconds(30)
            while !trainerPIDs(script).isEmpty, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(200)) }
        }
        return rows
    }

    /// The processes running `script`.
    static func trainerPIDs(_ script: String) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap(Int32.init).filter { pid in
            guard let cmdline = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
            return String(decoding: cmdline, as: UTF8.self).contains(script)
        }
    }

    /// VmRSS and VmHWM of a process, MiB.
    static func residentMiB(_ pid: Int32) -> (current: Double, peak: Double) {
        let text = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        func field(_ name: String) -> Double {
            guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(name + ":") }),
                  let kib = Double(line.split(separator: " ").dropFirst().first ?? "") else { return 0 }
            return kib / 1024
        }
        return (field("VmRSS"), field("VmHWM"))
    }

    public static func table(_ rows: [Row]) -> String {
        var out = "| trainers × lines/s | events/s published | agent CPU (% of a core) | agent CPU per event | agent RSS (peak) | trainers' CPU |\n"
        out += "|---|---:|---:|---:|---:|---:|\n"
        for r in rows {
            out += "| \(r.trainers) × \(r.linesPerSecondEach) | " + String(format: "%.0f", r.eventsPerSecond)
                + " | " + String(format: "%.1f %%", r.agentCPUPercent) + " | " + String(format: "%.0f µs", r.agentMicrosecondsPerEvent)
                + " | " + String(format: "%.1f MiB (%.1f)", r.agentResidentMiB, r.agentPeakResidentMiB)
                + " | " + String(format: "%.1f %%", r.trainersCPUPercent) + " |\n"
        }
        return out
    }
}
