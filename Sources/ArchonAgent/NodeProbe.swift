public import ArchonModel
import Foundation

/// Reads what a node has and uses: /proc and statvfs (GPUs: ``GPUSampler``).
public enum NodeProbe {
    /// - Parameter gpus: from ``GPUSampler`` (nvidia-smi runs there, under a timeout).
    public static func capacity(workDirectory: String, gpus: [GPU] = []) -> NodeCapacity {
        NodeCapacity(
            cpuCores: ProcessInfo.processInfo.activeProcessorCount,
            memoryBytes: ProcessInfo.processInfo.physicalMemory,
            gpus: gpus,
            diskBytes: disk(workDirectory).total)
    }

    /// (used, total) bytes of the filesystem holding `path`.
    public static func disk(_ path: String) -> (used: UInt64, total: UInt64) {
        var s = statvfs()
        guard statvfs(path, &s) == 0 else { return (0, 0) }
        let total = UInt64(s.f_blocks) * UInt64(s.f_frsize)
        let free = UInt64(s.f_bavail) * UInt64(s.f_frsize)
        return (total - min(free, total), total)
    }

    /// Memory in use on the node (MemTotal - MemAvailable).
    public static func memoryUsed() -> UInt64 {
        guard let text = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8) else { return 0 }
        var values: [String: UInt64] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            if parts.count >= 2 { values[String(parts[0].dropLast())] = UInt64(parts[1]).map { $0 * 1024 } }
        }
        return (values["MemTotal"] ?? 0) - min(values["MemAvailable"] ?? 0, values["MemTotal"] ?? 0)
    }

    /// Resident memory of every process in a process group (the agent's fallback when no cgroup counts it).
    public static func rss(processGroup pgid: Int32) -> UInt64 {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return 0 }
        let pageSize = UInt64(sysconf(Int32(_SC_PAGESIZE)))
        var total: UInt64 = 0
        for entry in entries where entry.first?.isNumber == true {
            // Fields after "comm)": state ppid pgrp ... rss is field 24 (index 21 after the paren).
            guard let fields = statFields("/proc/\(entry)/stat"), fields.count > 21, Int32(fields[2]) == pgid,
                  let pages = UInt64(fields[21]) else { continue }
            total += pages * pageSize
        }
        return total
    }

    /// The live processes of a process group, to find a job's processes among nvidia-smi's.
    public static func pids(processGroup pgid: Int32) -> Set<Int32> {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        var out: Set<Int32> = []
        for entry in entries where entry.first?.isNumber == true {
            guard let pid = Int32(entry), let fields = statFields("/proc/\(entry)/stat") else { continue }
            if fields.count > 2, Int32(fields[2]) == pgid { out.insert(pid) }
        }
        return out
    }

    /// CPU seconds (user + system) used so far by a process group's live processes.
    public static func cpuSeconds(processGroup pgid: Int32) -> Double {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return 0 }
        var total = 0.0
        for entry in entries where entry.first?.isNumber == true {
            guard let fields = statFields("/proc/\(entry)/stat"), fields.count > 2, Int32(fields[2]) == pgid else { continue }
            total += cpuSeconds(fields)
        }
        return total
    }

    /// CPU seconds (user + system) one process used so far; 0 when it is gone.
    public static func cpuSeconds(pid: Int32) -> Double {
        statFields("/proc/\(pid)/stat").map(cpuSeconds) ?? 0
    }

    /// utime + stime (fields 14 and 15 of /proc/<pid>/stat, in clock ticks) as seconds.
    private static func cpuSeconds(_ fields: [Substring]) -> Double {
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// The fields of a /proc/<pid>/stat after "(comm)" (state, ppid, pgrp, …); nil when unreadable.
    private static func statFields(_ path: String) -> [Substring]? {
        guard let stat = try? String(contentsOfFile: path, encoding: .utf8), let close = stat.lastIndex(of: ")") else { return nil }
        return stat[stat.index(after: close)...].split(separator: " ")
    }

    /// Start time of a process (clock ticks since boot), to tell a live pid from a reused one.
    public static func startTime(pid: Int32) -> UInt64? {
        guard let fields = statFields("/proc/\(pid)/stat") else { return nil }
        return fields.count > 19 ? UInt64(fields[19]) : nil
    }
}
