import ArchonAgent
import ArchonModel
import Foundation
import Testing

/// nvidia-smi answers recorded from real node shapes (`Recordings/nvidia-smi/`), parsed and attributed.
@Suite struct NvidiaSMITests {
    static let mib: UInt64 = 1 << 20

    static func recording(_ name: String) throws -> String {
        let url = try #require(Bundle.module.url(forResource: "Recordings/nvidia-smi/\(name)", withExtension: "csv"))
        return try String(contentsOf: url, encoding: .utf8)
    }

    static func facts(_ node: String) throws -> GPUFacts {
        GPUFacts(gpus: NvidiaSMI.parseGPUs(try recording("\(node)-gpus")).items,
                 apps: NvidiaSMI.parseComputeApps(try recording("\(node)-apps")).items)
    }

    @Test func anEightH100NodeOffersEightH100Of80GB() throws {
        let parsed = NvidiaSMI.parseGPUs(try Self.recording("h100x8-gpus"))
        #expect(parsed.skipped.isEmpty)
        let capacity = GPUFacts(gpus: parsed.items, apps: []).capacity
        #expect(capacity.map(\.index) == Array(0..<8))
        #expect(Set(capacity.map(\.gpuClass)) == ["h100-80gb"])
        #expect(capacity[0].name == "NVIDIA H100 80GB HBM3")
        #expect(capacity[0].memoryBytes == 81559 * Self.mib)
    }

    @Test func aJobIsChargedForItsOwnProcessesAndTheGPUsTheyUse() throws {
        let facts = try Self.facts("h100x8")
        // torchrun's eight workers, one per GPU; pid 52230 (someone else's) shares GPU 7.
        let job = try #require(facts.job(pids: Set(41007...41014)))
        #expect(job.memoryUsedBytes == (78116 * 2 + 78114 * 5 + 78118) * Self.mib)
        #expect(job.memoryTotalBytes == 8 * 81559 * Self.mib)
        #expect(abs(job.utilization - 0.9725) < 1e-9)

        let other = try #require(facts.job(pids: [52230, 1]))
        #expect(other.memoryUsedBytes == 1024 * Self.mib)
        #expect(other.memoryTotalBytes == 81559 * Self.mib)
        #expect(other.utilization == 0.95)

        #expect(facts.job(pids: [41006, 99999]) == nil)
    }

    @Test func nodeUsageSumsEveryGPU() throws {
        let node = try Self.facts("h100x8").node
        #expect(node.memoryUsedBytes == (78643 * 2 + 78641 * 4 + 78645 + 79665) * Self.mib)
        #expect(node.memoryTotalBytes == 8 * 81559 * Self.mib)
        #expect(abs(node.utilization - 0.9725) < 1e-9)
    }

    @Test func anIdleH200IsH200Of141GBWithNoProcesses() throws {
        let facts = try Self.facts("h200")
        #expect(facts.capacity.map(\.gpuClass) == ["h200-141gb"])
        #expect(facts.apps.isEmpty)
        #expect(NvidiaSMI.parseComputeApps(try Self.recording("h200-apps")).skipped.isEmpty)
        #expect(facts.node.memoryUsedBytes == 0)
        #expect(facts.node.utilization == 0)
    }

    @Test func notAvailableValuesAreUnknownNotZeroOrFatal() throws {
        let facts = try Self.facts("a100-40gb")
        #expect(facts.capacity.map(\.gpuClass) == ["a100-40gb", "a100-40gb"])
        #expect(facts.gpus[0].utilizationPercent == nil)  // [N/A]
        #expect(facts.gpus[1].utilizationPercent == nil)  // [Not Supported]
        #expect(facts.gpus[1].memoryUsedMiB == nil)
        #expect(facts.node.memoryUsedBytes == 38211 * Self.mib)
        #expect(facts.node.utilization == 0)

        // One process on both GPUs, its second share unknown: the known share counts, both GPUs' memory is the total.
        let job = try #require(facts.job(pids: [7731]))
        #expect(job.memoryUsedBytes == 37804 * Self.mib)
        #expect(job.memoryTotalBytes == 2 * 40960 * Self.mib)
    }

    @Test func malformedLinesAreSkippedAndCounted() throws {
        let gpus = NvidiaSMI.parseGPUs(try Self.recording("malformed-gpus"))
        #expect(gpus.items.map(\.index) == [0])
        #expect(gpus.items.first?.gpu.gpuClass == "a100-80gb")
        #expect(gpus.skipped.count == 4)
        #expect(gpus.skipped.first?.hasPrefix("Unable to determine") == true)

        let apps = NvidiaSMI.parseComputeApps(try Self.recording("malformed-apps"))
        #expect(apps.items == [NvidiaSMI.ComputeApp(pid: 812, gpuUUID: "GPU-2a8f6c1d-9e04-b73a-5d2f-c18e4b7a0963", usedMemoryMiB: 4096)])
        #expect(apps.skipped.count == 3)
    }

    @Test func garbageAndEmptyOutputGiveNoFacts() {
        for text in ["", "\n\n", "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.", "\u{0}\u{1}garbage,,,,,,"] {
            #expect(NvidiaSMI.parseGPUs(text).items.isEmpty)
            #expect(NvidiaSMI.parseComputeApps(text).items.isEmpty)
        }
    }

    @Test func theOldTwoColumnAppsQueryStillParses() {
        let apps = NvidiaSMI.parseComputeApps("4242, 1536\n")
        #expect(apps.items == [NvidiaSMI.ComputeApp(pid: 4242, gpuUUID: "", usedMemoryMiB: 1536)])
    }

    @Test func hugeNumbersSaturateInsteadOfWrapping() {
        let gpus = NvidiaSMI.parseGPUs("0, GPU-x, NVIDIA H100 80GB HBM3, 18446744073709551615, 18446744073709551615, 50\n1, GPU-y, NVIDIA H100 80GB HBM3, 81559, 100, 50")
        let node = GPUFacts(gpus: gpus.items, apps: []).node
        #expect(node.memoryTotalBytes == .max)
        #expect(node.memoryUsedBytes == .max)
    }
}
