import ArchonAgent
import Logging
import ArchonModel
import Testing

/// Which way a job's memory limit is held, by node capability and GPU request.
@Suite struct MemoryEnforcerTests {
    static let table: [(node: Enforcement, gpus: Int, expected: Enforcement, explained: Bool)] = [
        (.rlimit, 0, .rlimit, false),
        // CUDA reserves tens of GiB of address space at init: RLIMIT_AS would make every GPU job fail to start.
        (.rlimit, 1, .watchdog, true),
        (.rlimit, 8, .watchdog, true),
        (.cgroupV2, 8, .cgroupV2, false),
        (.cgroupV1, 1, .cgroupV1, false),
        (.watchdog, 1, .watchdog, false),
        (.none, 1, .none, false),
    ]

    @Test(arguments: table)
    func gpuJobsNeverRunUnderRLIMITAS(_ row: (node: Enforcement, gpus: Int, expected: Enforcement, explained: Bool)) {
        let resources = Resources(memoryBytes: 64 << 30, gpuClass: row.gpus > 0 ? "h100-80gb" : "", gpuCount: row.gpus)
        let (memory, note) = MemoryEnforcer.enforcement(forJob: resources, node: row.node)
        #expect(memory == row.expected)
        #expect((note != nil) == row.explained)
        if let note { #expect(note.contains("RLIMIT_AS") && note.contains("CUDA")) }
    }

    /// Under systemd with Delegate=yes the agent's base is its own cgroup, read from /proc/self/cgroup.
    @Test func theAgentsOwnCgroupIsTheUnifiedLine() {
        #expect(MemoryEnforcer.unifiedCgroup("0::/system.slice/archon-agent.service\n") == "/system.slice/archon-agent.service")
        #expect(MemoryEnforcer.unifiedCgroup("12:pids:/x\n11:memory:/x\n0::/user.slice\n") == "/user.slice")
        #expect(MemoryEnforcer.unifiedCgroup("12:pids:/x\n11:memory:/x\n") == nil, "a cgroup v1 host has no unified line")
    }

    static var isCgroupV1Host: Bool {
        MemoryEnforcer.unifiedCgroup((try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8)) ?? "") == nil
    }

    /// Asked to use a delegated cgroup on a cgroup v1 host, the agent says so and still enforces memory some way. (On
    /// a v2 host this would move the test runner into a cgroup of its own: not run there.)
    @Test(.enabled(if: isCgroupV1Host)) func aDelegationThatIsNotThereIsReportedNotFatal() {
        let enforcer = MemoryEnforcer(mode: .auto, nodeID: "delegation-probe", delegated: true, logger: Logger(label: "test"))
        #expect(enforcer.capabilities.memory != .none)
        #expect(enforcer.capabilities.note.contains("cgroup delegated"), "\(enforcer.capabilities.note)")
    }
}
