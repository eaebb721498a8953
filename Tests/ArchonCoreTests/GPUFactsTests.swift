import ArchonModel
import Testing

@testable import ArchonCore

/// Nodes report GPUs under the policy's class names, and their sampled GPU memory reaches the pressure rules.
@Suite struct GPUFactsTests {
    /// nvidia-smi's product names and `memory.total` (MiB) as real boards report them.
    static let boards: [(name: String, mib: UInt64?, gpuClass: String)] = [
        ("Tesla T4", 15360, "t4-16gb"),
        ("NVIDIA A10", 23028, "a10-24gb"),
        ("NVIDIA A10G", 23028, "a10g-24gb"),
        ("NVIDIA A100-SXM4-40GB", 40960, "a100-40gb"),
        ("NVIDIA A100-PCIE-40GB", 40536, "a100-40gb"),
        ("NVIDIA A100-SXM4-80GB", 81920, "a100-80gb"),
        ("NVIDIA A100 80GB PCIe", 81920, "a100-80gb"),
        ("NVIDIA H100 80GB HBM3", 81559, "h100-80gb"),
        ("NVIDIA H100 PCIe", 81559, "h100-80gb"),
        ("NVIDIA H100 NVL", 95830, "h100-94gb"),
        ("NVIDIA H200", 143771, "h200-141gb"),
        ("NVIDIA GH200 480GB", 97871, "gh200-96gb"),
        ("NVIDIA L4", 23034, "l4-24gb"),
        ("NVIDIA L40S", 46068, "l40s-48gb"),
        ("Tesla V100-SXM2-16GB", 16160, "v100-16gb"),
        ("Tesla V100-SXM2-32GB", 32510, "v100-32gb"),
        ("NVIDIA B200", 183359, "b200-180gb"),
        // Unknown products: their model words and whole GiB.
        ("NVIDIA RTX A6000", 49140, "rtx-a6000-48gb"),
        ("NVIDIA GeForce RTX 4090", 24564, "rtx-4090-24gb"),
        ("NVIDIA A100 120GB Prototype", 122880, "a100-120gb"),
        // What nvidia-smi could not read.
        ("NVIDIA A100-SXM4-40GB", nil, "a100-40gb"),
        ("NVIDIA H200", nil, "h200-141gb"),
        ("NVIDIA A100-SXM4", nil, "a100"),
        ("[N/A]", 81559, "gpu-80gb"),
        ("", nil, "gpu"),
    ]

    @Test(arguments: boards)
    func nvidiaSMINamesBecomePlacementClasses(_ board: (name: String, mib: UInt64?, gpuClass: String)) {
        #expect(GPUClass.canonical(productName: board.name, memoryMiB: board.mib) == board.gpuClass)
    }

    @Test func everyClassOfTheUpgradeTableIsOneANodeCanReport() {
        let reported = Set(Self.boards.map(\.gpuClass))
        for upgrade in RemediationPolicy().gpuUpgrades {
            #expect(reported.contains(upgrade.from), "no board reports \(upgrade.from)")
            #expect(reported.contains(upgrade.to), "no board reports \(upgrade.to)")
        }
    }

    static func node(_ product: String, mib: UInt64, count: Int = 1) -> [GPU] {
        (0..<count).map { GPU(index: $0, name: product, gpuClass: GPUClass.canonical(productName: product, memoryMiB: mib), memoryBytes: mib << 20) }
    }

    @Test func aCUDAOOMOnA100Of40GBMovesUpTheTableToAnA100Of80GBNode() throws {
        var fleet = Fleet(policy: .noBackoff, nodes: [])
        fleet.addNode("n1", gpus: Self.node("NVIDIA A100-SXM4-40GB", mib: 40960, count: 8))
        fleet.addNode("n2", gpus: Self.node("NVIDIA A100-SXM4-80GB", mib: 81920, count: 8))
        var job = spec("job-1", batch: 4)
        job.config.resources.gpuClass = "a100-40gb"
        job.config.resources.gpuCount = 8
        _ = fleet.submit(job)
        _ = fleet.start("job-1")
        let cudaOOM = "torch.cuda.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"
        // The policy's outOfMemory ladder: halve the batch twice, then the next GPU class.
        #expect(decisions(fleet.exit("job-1", failure: .outOfMemory, detail: cudaOOM)) == ["assign job-1#2 → n1"])
        _ = fleet.start("job-1")
        #expect(decisions(fleet.exit("job-1", failure: .outOfMemory, detail: cudaOOM)) == ["assign job-1#3 → n1"])
        _ = fleet.start("job-1")
        let actions = fleet.exit("job-1", failure: .outOfMemory, detail: cudaOOM)
        #expect(decisions(actions) == ["stop job-1#3 on n1", "assign job-1#4 → n2"])
        let resources = try #require(assignments(actions).first).spec.config.resources
        #expect(resources.gpuClass == "a100-80gb")
        #expect(resources.gpuCount == 8)
        #expect(resources.memoryBytes == 8 * gib)  // host memory untouched: it was the GPU that ran out
        let reason = try #require(assignments(actions).first).reason
        #expect(reason.contains("CUDA out of memory"))
        #expect(reason.hasSuffix("resources.gpuClass a100-40gb -> a100-80gb"))
    }

    @Test func aJobsGPUMemoryNearFullIsResourcePressure() {
        var fleet = Fleet()
        _ = fleet.submit(spec("job-1"))
        _ = fleet.start("job-1")
        // As the agent samples it: the job's processes hold 76 GiB of its one GPU's 80.
        let sample = ResourceSample(memoryUsedBytes: 2 * gib, memoryLimitBytes: 8 * gib, gpuMemoryUsedBytes: 76 * gib, gpuMemoryTotalBytes: 80 * gib, gpuUtilization: 0.97)
        let actions = fleet.send("job-1", .resources(sample))
        #expect(decisions(actions) == ["opened INC-1 L1 Training Notice - job-1: resource pressure"])
        #expect(fleet.incident("INC-1").symptoms == ["attempt 1: GPU memory 76 GiB of 80 GiB (95%, limit 90%)"])
        #expect(fleet.job("job-1").status == .running)  // a notice, never a restart
        // Back below the threshold: the notice resolves itself.
        let low = fleet.send("job-1", .resources(ResourceSample(memoryUsedBytes: 2 * gib, memoryLimitBytes: 8 * gib, gpuMemoryUsedBytes: 40 * gib, gpuMemoryTotalBytes: 80 * gib)))
        #expect(decisions(low) == ["resolved INC-1 L1 Training Notice - job-1: resource pressure"])
    }

    @Test func nodesWithTheirGPUMemoryNearFullAreASystemResourceIssue() {
        var fleet = Fleet(policy: .noBackoff, nodes: [])
        let gpus = Self.node("NVIDIA H100 80GB HBM3", mib: 81559, count: 8)
        for id in ["n1", "n2", "n3", "n4"] { fleet.addNode(id, gpus: gpus) }
        func status(_ node: String, gpuMemoryUsed: UInt64) -> TrainingEvent {
            TrainingEvent(
                jobID: "", nodeID: node, attempt: 0, sequence: 0, timeMs: fleet.now,
                body: .nodeStatus(NodeStatus(
                    nodeID: node, hostname: node,
                    capacity: NodeCapacity(cpuCores: 16, memoryBytes: 64 * gib, gpus: gpus, diskBytes: 1000 * gib),
                    usage: NodeUsage(gpuMemoryUsedBytes: gpuMemoryUsed, gpuUtilization: 0.98))))
        }
        let nearlyFull = 8 * 78_000 << 20  // of 8 × 81559 MiB: 95.6 %
        #expect(decisions(fleet.controller.eventReceived(status("n1", gpuMemoryUsed: UInt64(nearlyFull)), subjectNode: "n1", at: fleet.now)) == [])
        let actions = fleet.controller.eventReceived(status("n2", gpuMemoryUsed: UInt64(nearlyFull)), subjectNode: "n2", at: fleet.now)
        #expect(decisions(actions) == ["freeze outOfMemory", "opened INC-1 L3 Training Failure Escalation - fleet gpuMemory"])
        #expect(firstReason(actions)?.evidence == "2 of 4 nodes (50%) above 90% gpuMemory: n1, n2")
    }
}
