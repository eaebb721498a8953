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
            guard let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")")
            else { continue }
            // Fields after "comm)": state ppid pgrp ... rss is field 24 (index 21 after the paren).
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 21, Int32(fields[2]) == pgid, let pages = UInt64(fields[21]) else { continue }
            total += pages * pageSize
        }
        return total
    }

    /// The live processes of a process group, to find a job's processes among nvidia-smi's.
    public static func pids(processGroup pgid: Int32) -> Set<Int32> {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        var out: Set<Int32> = []
        for entry in entries where entry.first?.isNumber == true {
            guard let pid = Int32(entry), let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")")
            else { continue }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 2, Int32(fields[2]) == pgid { out.insert(pid) }
        }
        return out
    }

    /// CPU seconds (user + system) used so far by a process group's live processes.
    public static func cpuSeconds(processGroup pgid: Int32) -> Double {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return 0 }
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        var total = 0.0
        for entry in entries where entry.first?.isNumber == true {
            guard let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")")
            else { continue }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 13, Int32(fields[2]) == pgid,
                  let user = Double(fields[11]), let system = Double(fields[12])
            else { continue }
            total += (user + system) / ticks
        }
        return total
    }

    /// Start time of a process (clock ticks since boot), to tell a live pid from a reused one.
    public static func startTime(pid: Int32) -> UInt64? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")")
        else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return fields.count > 19 ? UInt64(fields[19]) : nil
    }
}
