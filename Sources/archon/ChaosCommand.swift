import ArchonDev
import ArgumentParser
import Foundation

/// `archon chaos`: the fault suite (docs/reliability.md).
struct ChaosCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chaos",
        abstract: "Run a fleet on a 3-server NATS cluster under seeded faults and check that nothing was lost or done twice.",
        discussion: """
            Each run starts the shipped 3-server nats-server cluster on loopback (TLS and authentication on, streams \
            and buckets at 3 replicas), two controllers and three agents as processes, and plays a workload that fails \
            in the runbook's ways, first without faults, then once per seed with --faults faults drawn from the seed: \
            SIGKILL of a controller or an agent, SIGSTOP of one past its lease, SIGKILL of a nats-server (the stream \
            leader included), a nats-server cut from its peers. After each run it checks, from the streams, the KV \
            history, the stored state and the process table, that every event was applied once, no job ran twice at \
            once, every job ended as in the fault-free run, no incident paged twice or for a fault that healed, and no \
            stale leader's assignment ran. Run from the repository (it reads deploy/ and examples/trainers/).
            """)

    @Option(help: "Seeds to run: a count N (seeds 1…N), or one seed as =N (=17 replays seed 17).") var seeds = "1"
    @Option(help: "Faults per seeded run.") var faults = 4
    @Option(help: "Folder of the runs' data and logs.") var directory = ".build/chaos"

    func run() async throws {
        let seedList: [UInt64]
        if seeds.hasPrefix("="), let one = UInt64(seeds.dropFirst()) {
            seedList = [one]
        } else if let count = UInt64(seeds), count > 0 {
            seedList = Array(1...count)
        } else {
            throw ValidationError("--seeds takes a count (20) or one seed (=17)")
        }
        let repository = FileManager.default.currentDirectoryPath
        guard FileManager.default.fileExists(atPath: "\(repository)/deploy/nats/cluster/nats-1.conf") else {
            throw ValidationError("run it from the repository: deploy/nats/cluster is not in \(repository)")
        }
        let archon = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        let base = directory.hasPrefix("/") ? directory : "\(repository)/\(directory)"
        let say: @Sendable (String) -> Void = { line in FileHandle.standardOutput.write(Data((line + "\n").utf8)) }

        say("chaos: the fault-free run")
        let baseline = try await ChaosRun(ChaosOptions(seed: 0, faults: 0, directory: "\(base)/fault-free", archon: archon, repository: repository),
                                          log: say).run()
        report(baseline, name: "fault-free", say: say)
        guard baseline.violations.isEmpty else { throw ExitCode.failure }

        var failed: [UInt64] = []
        for seed in seedList {
            say("chaos: seed \(seed), \(faults) faults")
            var result = try await ChaosRun(ChaosOptions(seed: seed, faults: faults, directory: "\(base)/seed-\(seed)", archon: archon,
                                                         repository: repository), log: say).run()
            for (job, expected) in baseline.jobs.sorted(by: { $0.key < $1.key }) where result.jobs[job]?.matches(expected) != true {
                result.violations.append("\(job) ended \(result.jobs[job].map { "\($0)" } ?? "missing"); without faults: \(expected)")
            }
            for cause in result.pagedCauses.subtracting(baseline.pagedCauses).sorted() {
                result.violations.append("paged for \(cause), which the fault-free run never paged for")
            }
            report(result, name: "seed \(seed)", say: say)
            if !result.violations.isEmpty { failed.append(seed) }
        }
        say(failed.isEmpty
            ? "chaos: \(seedList.count) seeds × \(faults) faults, every invariant held"
            : "chaos: FAILED for seeds \(failed.map(String.init).joined(separator: ", ")) (replay one: archon chaos --seeds =\(failed[0]) --faults \(faults))")
        if !failed.isEmpty { throw ExitCode.failure }
    }

    private func report(_ result: ChaosResult, name: String, say: (String) -> Void) {
        let figures = result.checked.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
        say(String(format: "  %@: %.0f s; checked %@", name, result.seconds, figures))
        for job in result.jobs.sorted(by: { $0.key < $1.key }) { say("    \(job.key): \(job.value)") }
        say("    paged: \(result.pagedCauses.sorted().joined(separator: "; "))")
        for violation in result.violations { say("  VIOLATION \(violation)") }
    }
}
