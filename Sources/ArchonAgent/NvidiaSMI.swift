public import ArchonModel
import Foundation

/// nvidia-smi's CSV answers (`--format=csv,noheader,nounits`), parsed by pure functions, and the facts the agent
/// reports from them. A line that does not parse is skipped and counted, never fatal: drivers print `[N/A]`,
/// `[Not Supported]` and their own messages where a number is expected.
public enum NvidiaSMI {
    /// `--query-gpu` fields, in order: one line per GPU.
    public static let gpuQuery = ["--query-gpu=index,uuid,name,memory.total,memory.used,utilization.gpu", "--format=csv,noheader,nounits"]
    /// `--query-compute-apps` fields: one line per process and GPU. `gpu_uuid` ties a process to its GPU, so a job's
    /// share is measured against the memory of the GPUs it actually uses.
    public static let computeAppsQuery = ["--query-compute-apps=pid,gpu_uuid,used_memory", "--format=csv,noheader,nounits"]

    /// Where drivers install it; the first executable one is used.
    public static let candidatePaths = ["/usr/bin/nvidia-smi", "/usr/local/bin/nvidia-smi", "/usr/local/nvidia/bin/nvidia-smi"]

    /// The nvidia-smi on this machine, or nil (no NVIDIA driver: no GPU facts).
    public static func locate() -> String? {
        candidatePaths.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// One GPU line.
    public struct GPUReading: Sendable, Hashable {
        public var index: Int
        public var uuid: String
        public var name: String
        /// nil where nvidia-smi printed `[N/A]` or the like.
        public var memoryTotalMiB: UInt64?
        public var memoryUsedMiB: UInt64?
        /// 0...100.
        public var utilizationPercent: Double?

        public init(index: Int, uuid: String, name: String, memoryTotalMiB: UInt64?, memoryUsedMiB: UInt64?, utilizationPercent: Double?) {
            self.index = index
            self.uuid = uuid
            self.name = name
            self.memoryTotalMiB = memoryTotalMiB
            self.memoryUsedMiB = memoryUsedMiB
            self.utilizationPercent = utilizationPercent
        }

        /// As placement sees it: the canonical class, and the memory nvidia-smi reports.
        public var gpu: GPU {
            GPU(index: index, name: name, gpuClass: GPUClass.canonical(productName: name, memoryMiB: memoryTotalMiB),
                memoryBytes: NvidiaSMI.bytes(mib: memoryTotalMiB ?? 0))
        }
    }

    /// One process using a GPU.
    public struct ComputeApp: Sendable, Hashable {
        public var pid: Int32
        /// Empty when the query had no `gpu_uuid` column.
        public var gpuUUID: String
        public var usedMemoryMiB: UInt64?

        public init(pid: Int32, gpuUUID: String, usedMemoryMiB: UInt64?) {
            self.pid = pid
            self.gpuUUID = gpuUUID
            self.usedMemoryMiB = usedMemoryMiB
        }
    }

    /// Parsed lines and the lines that were not understood.
    public struct Parsed<Item: Sendable & Hashable>: Sendable, Hashable {
        public var items: [Item]
        public var skipped: [String]
    }

    /// MiB to bytes, saturating: a garbled huge number must not wrap to a small one.
    static func bytes(mib: UInt64) -> UInt64 {
        let (value, overflow) = mib.multipliedReportingOverflow(by: 1 << 20)
        return overflow ? .max : value
    }

    /// `index, uuid, name, memory.total, memory.used, utilization.gpu` lines. A line needs an index and a uuid;
    /// numbers that are not numbers become nil. The name is everything between the uuid and the last three fields,
    /// so a comma in a product name cannot shift the numbers.
    public static func parseGPUs(_ text: String) -> Parsed<GPUReading> {
        var out = Parsed<GPUReading>(items: [], skipped: [])
        for line in lines(text) {
            let fields = line.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard fields.count >= 6, let index = Int(fields[0]), index >= 0, !fields[1].isEmpty, !fields[1].hasPrefix("[") else {
                out.skipped.append(line)
                continue
            }
            let n = fields.count
            out.items.append(GPUReading(
                index: index, uuid: fields[1], name: fields[2..<(n - 3)].joined(separator: ","),
                memoryTotalMiB: UInt64(fields[n - 3]), memoryUsedMiB: UInt64(fields[n - 2]),
                utilizationPercent: Double(fields[n - 1]).flatMap { $0.isFinite && $0 >= 0 ? min($0, 100) : nil }))
        }
        return out
    }

    /// `pid, gpu_uuid, used_memory` lines (or `pid, used_memory`). "No running processes found" is no process, not an
    /// error.
    public static func parseComputeApps(_ text: String) -> Parsed<ComputeApp> {
        var out = Parsed<ComputeApp>(items: [], skipped: [])
        for line in lines(text) where !line.lowercased().hasPrefix("no running") {
            let fields = line.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard fields.count == 2 || fields.count == 3, let pid = Int32(fields[0]), pid > 0 else {
                out.skipped.append(line)
                continue
            }
            let uuid = fields.count == 3 ? fields[1] : ""
            out.items.append(ComputeApp(pid: pid, gpuUUID: uuid.hasPrefix("[") ? "" : uuid, usedMemoryMiB: UInt64(fields[fields.count - 1])))
        }
        return out
    }

    private static func lines(_ text: String) -> [String] {
        text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }
}

/// What nvidia-smi said about this node at one moment.
public struct GPUFacts: Sendable, Hashable {
    public var gpus: [NvidiaSMI.GPUReading]
    public var apps: [NvidiaSMI.ComputeApp]

    public init(gpus: [NvidiaSMI.GPUReading], apps: [NvidiaSMI.ComputeApp]) {
        self.gpus = gpus
        self.apps = apps
    }

    /// GPU usage of a node or of one job.
    public struct Usage: Sendable, Hashable {
        public var memoryUsedBytes: UInt64
        /// Memory of the GPUs counted (for a job: the GPUs its processes use).
        public var memoryTotalBytes: UInt64
        /// 0...1, mean over the GPUs counted that report it.
        public var utilization: Double
    }

    /// The node's GPUs as capacity.
    public var capacity: [GPU] { gpus.map(\.gpu).sorted { $0.index < $1.index } }

    /// All GPUs together.
    public var node: Usage { usage(of: gpus, used: gpus.compactMap(\.memoryUsedMiB)) }

    /// The GPUs used by any of `pids` (a job's process group or cgroup), with the memory those processes hold;
    /// nil when none of them uses a GPU. A process nvidia-smi lists without a GPU uuid counts towards memory
    /// used only.
    public func job(pids: Set<Int32>) -> Usage? {
        let mine = apps.filter { pids.contains($0.pid) }
        guard !mine.isEmpty else { return nil }
        let uuids = Set(mine.map(\.gpuUUID))
        return usage(of: gpus.filter { uuids.contains($0.uuid) }, used: mine.compactMap(\.usedMemoryMiB))
    }

    private func usage(of gpus: [NvidiaSMI.GPUReading], used: [UInt64]) -> Usage {
        func sum(_ mibs: [UInt64]) -> UInt64 {
            mibs.reduce(UInt64(0)) { total, mib in
                let (value, overflow) = total.addingReportingOverflow(NvidiaSMI.bytes(mib: mib))
                return overflow ? .max : value
            }
        }
        let utilizations = gpus.compactMap(\.utilizationPercent)
        return Usage(
            memoryUsedBytes: sum(used),
            memoryTotalBytes: sum(gpus.compactMap(\.memoryTotalMiB)),
            utilization: utilizations.isEmpty ? 0 : min(1, utilizations.reduce(0, +) / Double(utilizations.count) / 100))
    }
}
