import ArchonAgent
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
}
