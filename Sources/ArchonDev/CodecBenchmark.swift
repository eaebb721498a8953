public import ArchonModel
import ArchonWire
import Foundation

/// `archon bench codec`: what encoding and decoding one message of each kind costs (protobuf-c through ArchonWire),
/// in nanoseconds per message, with its size. Each kind is timed for at least `seconds`, three rounds, median kept.
public enum CodecBenchmark {
    public struct Row: Codable, Sendable {
        public var kind: String
        public var bytes: Int
        public var encodeNanoseconds: Double
        public var decodeNanoseconds: Double
    }

    /// One representative event of each kind, as agents send them (a GPU node's status: 8 GPUs, 12 running jobs).
    public static func samples() -> [(String, TrainingEvent)] {
        let gpus = (0..<8).map { GPU(index: $0, name: "NVIDIA H100 80GB HBM3", gpuClass: "h100", memoryBytes: 80 << 30) }
        let status = NodeStatus(
            nodeID: "gpu-node-0042", hostname: "gpu-node-0042.cluster.local", agentVersion: "0.9.0",
            capacity: NodeCapacity(cpuCores: 128, memoryBytes: 2 << 40, gpus: gpus, diskBytes: 30 << 40),
            usage: NodeUsage(memoryReservedBytes: 1 << 40, memoryUsedBytes: 900 << 30, cpuUtilization: 0.6, gpuMemoryUsedBytes: 500 << 30,
                             gpuUtilization: 0.9, diskUsedBytes: 10 << 40, runningJobs: 12),
            labels: ["zone": "eu-west-4b", "rack": "r17"], enforcement: EnforcementCapabilities(memory: .cgroupV2, cpu: .cgroupV2, pids: .cgroupV2),
            startedAtMs: 1_764_000_000_000, runningJobs: (0..<12).map { "llm-pretrain-\($0)" })
        let bodies: [(String, TrainingEvent.Body)] = [
            ("accepted", .accepted(JobAccepted(fencingEpoch: 1234, resumeFrom: "/ckpt/llm-pretrain-7/attempt-2/ckpt-epoch-0041.pt"))),
            ("started", .started(JobStarted(pid: 424_242, resumeFrom: "/ckpt/llm-pretrain-7/attempt-2/ckpt-epoch-0041.pt",
                                            memoryLimitBytes: 64 << 30, memoryEnforcement: .cgroupV2))),
            ("step", .step(StepProgress(step: 123_456, epoch: 42, loss: 1.8734, learningRate: 3e-4, samplesPerSecond: 912.5))),
            ("epoch", .epoch(EpochMetrics(epoch: 42, totalEpochs: 100, loss: 1.8734, learningRate: 3e-4, durationSeconds: 3600, step: 123_456,
                                          validation: Validation(loss: 1.95, accuracy: 0.61)))),
            ("checkpoint", .checkpoint(CheckpointWritten(path: "/ckpt/llm-pretrain-7/attempt-3/ckpt-epoch-0042.pt", epoch: 42, step: 123_456,
                                                         sizeBytes: 14 << 30, sha256: String(repeating: "ab", count: 32)))),
            ("resources", .resources(ResourceSample(memoryUsedBytes: 50 << 30, memoryLimitBytes: 64 << 30, cpuCores: 11.5,
                                                    gpuMemoryUsedBytes: 600 << 30, gpuMemoryTotalBytes: 640 << 30, gpuUtilization: 0.93))),
            ("exited", .exited(JobExited(exitCode: 0, signal: 9, oomKilled: true, failureClass: .outOfMemory,
                                         detail: "killed by the kernel OOM killer (SIGKILL, cgroup oom_kill rose)",
                                         logTail: (0..<20).map { "step \($0): loss 1.87 lr 3e-4 tokens/s 912000 grad-norm 0.98" },
                                         runtimeSeconds: 151_200, epochsCompleted: 41))),
            ("heartbeat", .heartbeat(Heartbeat(runningJobs: 1, secondsSinceProgress: 2.5))),
            ("nodeStatus", .nodeStatus(status)),
            ("securityAlert", .securityAlert(SecurityAlert(kind: .assignmentRejected, detail: "signature does not verify", subject: "gpu-node-0042.llm-7"))),
        ]
        return bodies.map { name, body in
            let job = name == "nodeStatus" ? "" : "llm-pretrain-7"
            return (name, TrainingEvent(jobID: job, nodeID: "gpu-node-0042", attempt: job.isEmpty ? 0 : 3, sequence: 98_765,
                                        timeMs: 1_764_000_000_000, body: body))
        }
    }

    public static func run(seconds: Double = 0.2, rounds: Int = 3) throws -> [Row] {
        try samples().map { kind, event in
            let bytes = event.encoded()
            var encode: [Double] = []
            var decode: [Double] = []
            for _ in 0..<max(1, rounds) {
                encode.append(time(seconds) { event.encoded().count })
                decode.append(try timeThrowing(seconds) { try TrainingEvent.decode(bytes).sequence == 98_765 ? 1 : 0 })
            }
            guard try TrainingEvent.decode(bytes) == event else { throw DevError("the \(kind) event does not survive encode and decode") }
            return Row(kind: kind, bytes: bytes.count, encodeNanoseconds: Bench.median(encode), decodeNanoseconds: Bench.median(decode))
        }
    }

    /// Nanoseconds per call of `body`, over at least `seconds`; what it returns is summed so that it is not optimised away.
    private static func time(_ seconds: Double, _ body: () -> Int) -> Double {
        (try? timeThrowing(seconds, body)) ?? 0
    }

    private static func timeThrowing(_ seconds: Double, _ body: () throws -> Int) throws -> Double {
        var sink = 0
        var calls = 0
        let clock = ContinuousClock()
        let start = clock.now
        var elapsed = Duration.zero
        repeat {
            for _ in 0..<256 { sink &+= try body() }
            calls += 256
            elapsed = clock.now - start
        } while elapsed < .milliseconds(Int(seconds * 1000))
        if sink == Int.min { print(sink) }
        return (Double(elapsed.components.seconds) * 1e9 + Double(elapsed.components.attoseconds) / 1e9) / Double(calls)
    }

    public static func table(_ rows: [Row]) -> String {
        var out = "| event kind | bytes | encode ns/op | decode ns/op |\n|---|---:|---:|---:|\n"
        for r in rows {
            out += "| \(r.kind) | \(r.bytes) | " + String(format: "%.0f | %.0f", r.encodeNanoseconds, r.decodeNanoseconds) + " |\n"
        }
        return out
    }
}
