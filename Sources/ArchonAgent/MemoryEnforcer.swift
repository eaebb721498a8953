public import ArchonModel
import Foundation
public import Logging

/// Per-job memory (and CPU, pids) limits through a cgroup of the job's own, v2 or v1, with
/// fallbacks where no cgroup is writable: `RLIMIT_AS` set at spawn plus the agent's RSS watchdog.
public struct MemoryEnforcer: Sendable {
    public enum Mode: String, Sendable, CaseIterable {
        /// cgroup v2, else v1, else rlimit + watchdog.
        case auto
        case cgroup
        case rlimit
        case watchdog
        case none
    }

    /// What the agent could set up on this node.
    public let capabilities: EnforcementCapabilities
    /// The folder under which job cgroups are made, for the memory controller.
    let memoryRoot: String?
    let cpuRoot: String?
    let pidsRoot: String?
    let version: Enforcement

    /// Probes the node by creating (and removing) a test cgroup. `delegated` (cgroup v2, systemd `Delegate=yes`): the
    /// agent's own cgroup is the base instead of `/sys/fs/cgroup`; the agent first moves itself into `<own>/agent`,
    /// since a cgroup whose children have controllers may hold no process of its own.
    public init(mode: Mode, nodeID: String, delegated: Bool = false, logger: Logger) {
        let group = "archon/\(nodeID)"
        var base = "/sys/fs/cgroup"
        var delegationNote = ""
        if delegated, mode == .auto || mode == .cgroup {
            if let own = Self.read("/proc/self/cgroup").flatMap(Self.unifiedCgroup), own != "/" {
                let agentLeaf = "/sys/fs/cgroup\(own)/agent"
                if (try? FileManager.default.createDirectory(atPath: agentLeaf, withIntermediateDirectories: true)) != nil,
                   Self.write("\(getpid())", to: "\(agentLeaf)/cgroup.procs") {
                    base = "/sys/fs/cgroup\(own)"
                } else {
                    delegationNote = "cgroup delegated: cannot move the agent into \(agentLeaf) (is Delegate=yes set?); "
                }
            } else {
                delegationNote = "cgroup delegated: the agent is in no cgroup v2 group of its own; "
            }
        }
        func writable(_ root: String) -> String? {
            let dir = "\(root)/\(group)"
            do {
                try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
                return dir
            } catch {
                return nil
            }
        }
        var memoryRoot: String?
        var cpuRoot: String?
        var pidsRoot: String?
        var version = Enforcement.none
        var note = ""
        if mode == .auto || mode == .cgroup {
            let unified = FileManager.default.fileExists(atPath: "/sys/fs/cgroup/cgroup.controllers")
            if unified {
                let controllers = (try? String(contentsOfFile: "/sys/fs/cgroup/cgroup.controllers", encoding: .utf8)) ?? ""
                if controllers.contains("memory"), let dir = writable(base) {
                    // Children of our group need the controllers enabled in every ancestor's subtree_control.
                    var ok = true
                    for path in [base, "\(base)/archon", dir] {
                        let control = "\(path)/cgroup.subtree_control"
                        ok = ok && (Self.write("+memory +pids +cpu", to: control) || Self.write("+memory", to: control))
                    }
                    if ok {
                        memoryRoot = dir
                        cpuRoot = dir
                        pidsRoot = dir
                        version = .cgroupV2
                    } else {
                        note = "cgroup v2: cannot enable the memory controller under \(base)/archon"
                    }
                } else {
                    note = "cgroup v2: /sys/fs/cgroup is not writable"
                }
            } else if let dir = writable("/sys/fs/cgroup/memory") {
                memoryRoot = dir
                cpuRoot = writable("/sys/fs/cgroup/cpu")
                pidsRoot = writable("/sys/fs/cgroup/pids")
                version = .cgroupV1
            } else {
                note = "cgroup v1: /sys/fs/cgroup/memory is not writable"
            }
        }
        note = delegationNote + note
        let memory: Enforcement
        switch mode {
        case .none: memory = .none
        case .watchdog: memory = .watchdog
        case .rlimit: memory = .rlimit
        case .auto, .cgroup: memory = memoryRoot != nil ? version : .rlimit
        }
        if memory == .rlimit, mode != .rlimit {
            note += note.isEmpty ? "" : "; "
            note += "no writable cgroup: memory limited by RLIMIT_AS (malloc fails instead of an OOM kill) and the agent's RSS watchdog"
            logger.warning("agent.memory.no_cgroup", metadata: ["agent.note": "\(note)"])
        }
        if memory == .rlimit {
            note += note.isEmpty ? "" : "; "
            note += Self.gpuJobsNote
        }
        self.memoryRoot = memory == .cgroupV1 || memory == .cgroupV2 ? memoryRoot : nil
        self.cpuRoot = self.memoryRoot != nil ? cpuRoot : nil
        self.pidsRoot = self.memoryRoot != nil ? pidsRoot : nil
        self.version = version
        capabilities = EnforcementCapabilities(
            memory: memory,
            cpu: self.cpuRoot != nil ? version : .none,
            pids: self.pidsRoot != nil ? version : .none,
            note: note)
    }

    /// Why GPU jobs are not given RLIMIT_AS, for NodeStatus and the job's log.
    static let gpuJobsNote =
        "jobs that request GPUs get the RSS watchdog instead of RLIMIT_AS (CUDA reserves far more address space than it uses, so RLIMIT_AS makes it fail to start)"

    /// How one job's memory limit is enforced: the node's way, except that a job requesting GPUs never runs under
    /// RLIMIT_AS — the agent's RSS watchdog holds the limit instead. The note says why when it differs.
    public static func enforcement(forJob resources: Resources, node: Enforcement) -> (memory: Enforcement, note: String?) {
        switch node {
        case .rlimit where resources.gpuCount > 0:
            return (.watchdog, gpuJobsNote)
        case .unspecified, .none, .cgroupV2, .cgroupV1, .rlimit, .watchdog:
            return (node, nil)
        }
    }

    /// The cgroup v2 path in `/proc/self/cgroup` (the `0::<path>` line), nil on a v1-only host.
    public static func unifiedCgroup(_ procSelfCgroup: String) -> String? {
        procSelfCgroup.split(separator: "\n").first { $0.hasPrefix("0::") }.map { String($0.dropFirst(3)) }
    }

    static func write(_ text: String, to path: String) -> Bool {
        guard let handle = FileHandle(forWritingAtPath: path) else { return false }
        defer { try? handle.close() }
        return (try? handle.write(contentsOf: Data(text.utf8))) != nil
    }

    static func read(_ path: String) -> String? {
        try? String(contentsOfFile: path, encoding: .utf8)
    }

    /// The cgroup folders of one job.
    public struct JobCgroup: Sendable, Codable, Equatable {
        public var memory: String?
        public var cpu: String?
        public var pids: String?
        public var version: Enforcement

        /// The `cgroup.procs` the trainer joins (all controllers of v2 share one folder; v1 joins memory
        /// here and the others after spawn).
        var procs: String? { memory.map { "\($0)/cgroup.procs" } }
    }

    /// Creates the job's cgroup with its limits; nil when cgroups are not in force here.
    public func prepare(jobID: String, attempt: Int, resources: Resources) -> JobCgroup? {
        guard let memoryRoot else { return nil }
        let name = "\(jobID)-\(attempt)"
        func make(_ root: String?) -> String? {
            guard let root else { return nil }
            let dir = "\(root)/\(name)"
            try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            return FileManager.default.fileExists(atPath: dir) ? dir : nil
        }
        guard let memory = make(memoryRoot) else { return nil }
        let cgroup = JobCgroup(memory: memory, cpu: version == .cgroupV1 ? make(cpuRoot) : memory,
                               pids: version == .cgroupV1 ? make(pidsRoot) : memory, version: version)
        if resources.memoryBytes > 0 {
            switch version {
            case .cgroupV2:
                _ = Self.write("\(resources.memoryBytes)", to: "\(memory)/memory.max")
                _ = Self.write("0", to: "\(memory)/memory.swap.max")
            default:
                _ = Self.write("\(resources.memoryBytes)", to: "\(memory)/memory.limit_in_bytes")
                _ = Self.write("\(resources.memoryBytes)", to: "\(memory)/memory.memsw.limit_in_bytes")
            }
        }
        if resources.cpuCores > 0, let cpu = cgroup.cpu {
            let period = 100_000
            let quota = Int(resources.cpuCores * Double(period))
            switch version {
            case .cgroupV2: _ = Self.write("\(quota) \(period)", to: "\(cpu)/cpu.max")
            default:
                _ = Self.write("\(period)", to: "\(cpu)/cpu.cfs_period_us")
                _ = Self.write("\(quota)", to: "\(cpu)/cpu.cfs_quota_us")
            }
        }
        if let pids = cgroup.pids { _ = Self.write("4096", to: "\(pids)/pids.max") }
        return cgroup
    }

    /// Moves a process into the job's v1 cpu and pids cgroups (v1 joins memory at spawn).
    public func join(_ cgroup: JobCgroup, pid: Int32) {
        guard cgroup.version == .cgroupV1 else { return }
        for dir in [cgroup.cpu, cgroup.pids].compactMap({ $0 }) {
            _ = Self.write("\(pid)", to: "\(dir)/cgroup.procs")
        }
    }

    /// The kernel OOM killer's kills in this cgroup so far.
    public static func oomKills(_ cgroup: JobCgroup) -> Int {
        guard let memory = cgroup.memory else { return 0 }
        let file = cgroup.version == .cgroupV2 ? "\(memory)/memory.events" : "\(memory)/memory.oom_control"
        guard let text = read(file) else { return 0 }
        for line in text.split(separator: "\n") where line.hasPrefix("oom_kill ") {
            return Int(line.dropFirst("oom_kill ".count).trimmingCharacters(in: .whitespaces)) ?? 0
        }
        return 0
    }

    /// Memory in use by the cgroup's processes.
    public static func memoryUsed(_ cgroup: JobCgroup) -> UInt64? {
        guard let memory = cgroup.memory else { return nil }
        let file = cgroup.version == .cgroupV2 ? "\(memory)/memory.current" : "\(memory)/memory.usage_in_bytes"
        return read(file).flatMap { UInt64($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    /// Removes the job's cgroup folders (they must be empty of processes).
    public static func remove(_ cgroup: JobCgroup) {
        for dir in Set([cgroup.memory, cgroup.cpu, cgroup.pids].compactMap { $0 }) {
            rmdir(dir)
        }
    }
}
