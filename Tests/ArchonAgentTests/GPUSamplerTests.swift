import ArchonAgent
import ArchonModel
import Foundation
import Logging
import Testing

/// The sampler against real child processes standing in for nvidia-smi: an answer, a failure, a hang.
@Suite struct GPUSamplerTests {
    /// A script that answers like nvidia-smi: the GPU query with `gpus`, the compute-apps query with `apps`.
    func fakeSMI(gpus: String, apps: String, before: String = "") throws -> (path: String, directory: String) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("archon-smi-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = "\(directory)/nvidia-smi"
        let script = """
            #!/bin/sh
            \(before)
            case "$1" in
            --query-gpu=*) printf '%s\\n' '\(gpus)' ;;
            --query-compute-apps=*) printf '%s\\n' '\(apps)' ;;
            *) exit 2 ;;
            esac
            """
        try script.write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o755)
        return (path, directory)
    }

    @Test func anAnswerBecomesFactsAndCapacity() throws {
        let smi = try fakeSMI(gpus: "0, GPU-a, NVIDIA H200, 143771, 71000, 64", apps: "4242, GPU-a, 70000")
        defer { try? FileManager.default.removeItem(atPath: smi.directory) }
        let sampler = GPUSampler(executable: smi.path, timeout: .seconds(10), logger: Logger(label: "test"))
        sampler.refresh()
        #expect(sampler.gpus.map(\.gpuClass) == ["h200-141gb"])
        let facts = try #require(sampler.facts(maxAge: .seconds(60)))
        #expect(facts.job(pids: [4242])?.memoryUsedBytes == 70000 << 20)
        #expect(facts.node.utilization == 0.64)
        #expect(sampler.facts(maxAge: .seconds(60), now: .now + .seconds(61)) == nil)  // stale facts are no facts
    }

    @Test func aFailingNvidiaSMIMeansNoFactsButTheGPUsStay() throws {
        let good = try fakeSMI(gpus: "0, GPU-a, NVIDIA A100-SXM4-40GB, 40960, 1, 0", apps: "No running processes found")
        let bad = try fakeSMI(gpus: "", apps: "", before: "echo 'Failed to initialize NVML: Driver/library version mismatch'; exit 18")
        defer {
            try? FileManager.default.removeItem(atPath: good.directory)
            try? FileManager.default.removeItem(atPath: bad.directory)
        }
        #expect(GPUSampler.run(bad.path, NvidiaSMI.gpuQuery, timeout: .seconds(10)) == .failed("\(bad.path) --query-gpu=index,uuid,name,memory.total,memory.used,utilization.gpu ended with status 18"))
        let sampler = GPUSampler(executable: good.path, timeout: .seconds(10), logger: Logger(label: "test"))
        sampler.refresh()
        #expect(sampler.facts(maxAge: .seconds(60)) != nil)
        try FileManager.default.removeItem(atPath: good.path)
        try FileManager.default.copyItem(atPath: bad.path, toPath: good.path)
        sampler.refresh()
        #expect(sampler.facts(maxAge: .seconds(60)) == nil)
        #expect(sampler.gpus.map(\.gpuClass) == ["a100-40gb"])
    }

    @Test func aHungNvidiaSMIIsKilledAtTheTimeout() throws {
        let hung = try fakeSMI(gpus: "", apps: "", before: "exec sleep 30")
        defer { try? FileManager.default.removeItem(atPath: hung.directory) }
        let started = ContinuousClock.now
        let outcome = GPUSampler.run(hung.path, NvidiaSMI.gpuQuery, timeout: .milliseconds(300))
        #expect(ContinuousClock.now - started < .seconds(10))
        guard case .timedOut = outcome else {
            Issue.record("expected a timeout, got \(outcome)")
            return
        }
        let sampler = GPUSampler(executable: hung.path, timeout: .milliseconds(300), logger: Logger(label: "test"))
        sampler.refresh()
        #expect(sampler.facts(maxAge: .seconds(60)) == nil)
        #expect(sampler.gpus.isEmpty)
    }

    @Test func noNvidiaSMIRunsNothing() {
        let sampler = GPUSampler(executable: nil, logger: Logger(label: "test"))
        sampler.refresh()
        #expect(sampler.facts(maxAge: .seconds(60)) == nil)
        #expect(sampler.gpus.isEmpty)
    }
}
