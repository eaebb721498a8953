public import ArchonModel

/// A resource whose exhaustion the core watches.
public enum ResourceKind: String, Codable, Sendable, CaseIterable, Comparable {
    case memory
    case gpuMemory
    case disk
    /// Time: what timeouts exhaust.
    case compute

    /// The symptom whose config changes stop when the resource is short fleet-wide.
    public var frozenSymptom: Symptom? {
        switch self {
        case .memory, .gpuMemory: .outOfMemory
        case .compute: .timeout
        case .disk: nil
        }
    }

    /// The resource a failing symptom points at, for the system-wide rule.
    public static func exhausted(by symptom: Symptom) -> ResourceKind? {
        switch symptom {
        case .outOfMemory: .memory
        case .timeout: .compute
        case .stuckQueued, .crash, .hang, .divergingLoss, .datasetNotFound, .permissionDenied, .dataCorruption,
            .nodeFault, .poorPerformance, .resourcePressure:
            nil
        }
    }

    public static func < (a: ResourceKind, b: ResourceKind) -> Bool { a.rawValue < b.rawValue }
}

/// Usage against capacity, for jobs (resource samples) and nodes (status).
public enum ResourcePressure {
    /// Resources of a job's sample above `threshold`, with the evidence.
    public static func of(_ sample: ResourceSample, memoryLimit: UInt64, threshold: Double) -> [(ResourceKind, String)] {
        var out: [(ResourceKind, String)] = []
        func check(_ kind: ResourceKind, _ name: String, used: UInt64, total: UInt64) {
            guard total > 0 else { return }
            let fraction = Double(used) / Double(total)
            if fraction > threshold {
                out.append((kind, "\(name) \(ByteCount.human(used)) of \(ByteCount.human(total)) (\(percent(fraction)), limit \(percent(threshold)))"))
            }
        }
        check(.memory, "memory", used: sample.memoryUsedBytes, total: memoryLimit)
        check(.gpuMemory, "GPU memory", used: sample.gpuMemoryUsedBytes, total: sample.gpuMemoryTotalBytes)
        check(.disk, "disk", used: sample.diskUsedBytes, total: sample.diskTotalBytes)
        return out
    }

    /// The resources a job's sample measures (a total to compare with): only those can be said to have recovered.
    public static func measured(_ sample: ResourceSample, memoryLimit: UInt64) -> [ResourceKind] {
        [(ResourceKind.memory, memoryLimit), (.gpuMemory, sample.gpuMemoryTotalBytes), (.disk, sample.diskTotalBytes)]
            .filter { $0.1 > 0 }.map(\.0)
    }

    /// Resources of a node above `threshold`.
    public static func of(_ status: NodeStatus, threshold: Double) -> [ResourceKind] {
        var out: [ResourceKind] = []
        let gpuTotal = status.capacity.gpus.reduce(UInt64(0)) { $0.addingSaturated($1.memoryBytes) }
        let checks: [(ResourceKind, UInt64, UInt64)] = [
            (.memory, status.usage.memoryUsedBytes, status.capacity.memoryBytes),
            (.gpuMemory, status.usage.gpuMemoryUsedBytes, gpuTotal),
            (.disk, status.usage.diskUsedBytes, status.capacity.diskBytes),
        ]
        for (kind, used, total) in checks where total > 0 && Double(used) / Double(total) > threshold {
            out.append(kind)
        }
        return out
    }

    static func percent(_ fraction: Double) -> String { "\(Int(saturating: fraction * 100))%" }
}
