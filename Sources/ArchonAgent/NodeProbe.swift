public import ArchonModel
import Foundation

/// Reads what a node has and uses: /proc, statvfs, and nvidia-smi when present.
public enum NodeProbe {
    public static func capacity(workDirectory: String) -> NodeCapacity {
        NodeCapacity(
            cpuCores: ProcessInfo.processInfo.activeProcessorCount,
            memoryBytes: ProcessInfo.processInfo.physicalMemory,
            gpus: gpus(),
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

    /// GPUs from `nvidia-smi`, or none when it is absent or fails.
    public static func gpus() -> [GPU] {
        let candidates = ["/usr/bin/nvidia-smi", "/usr/local/bin/nvidia-smi", "/usr/local/nvidia/bin/nvidia-smi"]
        guard let smi = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else { return [] }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: smi)
        process.arguments = ["--query-gpu=index,name,memory.total", "--format=csv,noheader,nounits"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return [] }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { return [] }
        return String(decoding: data, as: UTF8.self).split(separator: "\n").compactMap { line in
            let parts = line.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count >= 3, let index = Int(parts[0]), let mib = UInt64(parts[2]) else { return nil }
            let gib = (mib + 512) / 1024
            let model = parts[1].lowercased().replacingOccurrences(of: "nvidia ", with: "").replacingOccurrences(of: " ", with: "-")
            return GPU(index: index, name: parts[1], gpuClass: "\(model)-\(gib)gb", memoryBytes: mib * 1024 * 1024)
        }
    }
}
