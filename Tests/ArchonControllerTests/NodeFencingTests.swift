import ArchonController
import ArchonDev
import Foundation
import Synchronization
import Testing

/// An agent that is frozen or cut off from NATS cannot stop its trainers itself, and the controller runs its jobs
/// elsewhere once the node has been silent for `detection.nodeSilence`. The trainers' shims fence them first
/// (`--fence-after`, then `--grace-period`): at no instant do two live copies of one job run.
@Suite("A frozen or cut-off agent never leaves a second copy of a job running", .serialized)
struct NodeFencingTests {
    /// The live trainer processes of `jobID` on this machine, whatever node started them: Python processes with the
    /// contract's `ARCHON_JOB_ID` in their environment (shims are forks of the agent and do not carry it; launchers
    /// such as pyenv's shim scripts carry it for a moment but run no training).
    static func liveCopies(of jobID: String) -> [pid_t] {
        let marker = Array("ARCHON_JOB_ID=\(jobID)".utf8)
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { name -> pid_t? in
            guard let pid = pid_t(name), let environ = FileManager.default.contents(atPath: "/proc/\(name)/environ"),
                  let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(name)/exe"),
                  (exe as NSString).lastPathComponent.hasPrefix("python")
            else { return nil }
            let stat = (try? String(contentsOfFile: "/proc/\(name)/stat", encoding: .utf8)) ?? ""
            if let close = stat.lastIndex(of: ")"), stat[stat.index(close, offsetBy: 2)] == "Z" { return nil }  // a zombie runs nothing
            return environ.split(separator: 0).contains { Array($0) == marker } ? pid : nil
        }
    }

    /// A fleet whose controller declares a node lost after 6 s of silence, an agent n1 as its own process (fence
    /// after 2 s, grace 1 s) running a slow job, and an in-process agent n2 with room for it.
    func fleetWithJobOnSeparateAgent(job: String) async throws -> (FleetHarness, RunningController, ChildProcess, HTTP) {
        let fleet = try await FleetHarness()
        let policy = FileManager.default.temporaryDirectory.appendingPathComponent("fence-policy-\(UUID().uuidString).json").path
        try #"{"detection": {"nodeSilence": "6s"}, "remediation": {"backoff": {"initial": "200ms", "max": "1s"}}}"#
            .write(toFile: policy, atomically: true, encoding: .utf8)
        var config = fleet.controllerConfig()
        config.policyFile = policy
        let controller = try await RunningController(config: config)
        let api = HTTP(base: controller.api, token: adminToken.token)

        let work = FileManager.default.temporaryDirectory.appendingPathComponent("archon-fence-n1-\(UUID().uuidString)").path
        let log = "\(work).log"
        let agent = try ChildProcess(archonBinary, [
            "agent", "--node-id", "n1", "--nats", fleet.server.url, "--work-dir", work,
            "--nats-nkey-seed", fleet.credentials.nodeSeedFile("n1"),
            "--assignment-public-key", fleet.credentials.signingPublicKeyFile,
            "--fence-after", "2", "--grace-period", "1", "--heartbeat", "0.5", "--log-level", "notice",
        ], environment: ProcessInfo.processInfo.environment, stdout: log, stderr: log)
        _ = try await waitFor("node n1") { try await api.call("GET", "/v1/nodes").json([NodeView].self).first { $0.id == "n1" } }

        let spec = faultSpec(job, fault: "slow", epochs: 40, hyper: ["epochSeconds": "0.5"])
        #expect(try await api.call("POST", "/v1/training/jobs", body: spec).status == 201)
        _ = try await waitFor("job \(job) running on n1") {
            let view = try await api.call("GET", "/v1/training/jobs/\(job)").json(JobView.self)
            return view.status == "running" && view.node == "n1" && Self.liveCopies(of: job).count == 1 ? true : nil
        }
        try await fleet.startAgent("n2")
        _ = try await waitFor("node n2") { try await api.call("GET", "/v1/nodes").json([NodeView].self).first { $0.id == "n2" } }
        return (fleet, controller, agent, api)
    }

    /// After the fault: the job runs again on n2, and never were two copies alive.
    func expectMovedWithoutOverlap(_ job: String, _ api: HTTP, _ monitor: CopyMonitor, original: [pid_t]) async throws {
        let moved = try await waitFor("job \(job) running on n2", timeout: .seconds(40)) { () -> JobView? in
            let view = try await api.call("GET", "/v1/training/jobs/\(job)").json(JobView.self)
            return view.status == "running" && view.node == "n2" && Self.liveCopies(of: job).count == 1 ? view : nil
        }
        #expect(moved.history.first?.failureClass == "node_fault", "\(moved.history.map(\.outcome))")
        for pid in original { #expect(kill(pid, 0) != 0, "the trainer n1 started (pid \(pid)) is gone") }
        #expect(monitor.stop() == 1, "at most one live copy of the job at any instant; \(moved.history.map { "\($0.attempt)@\($0.node) \($0.failureClass) \($0.outcome) \($0.startedAt)-\($0.endedAt)" }); copies now: \(Self.liveCopies(of: job).map { pid in (try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8)) ?? "?" })")
    }

    @Test func aFrozenAgentsTrainersAreStoppedBeforeTheJobRunsElsewhere() async throws {
        let (fleet, controller, agent, api) = try await fleetWithJobOnSeparateAgent(job: "frozen")
        defer { agent.kill(SIGCONT); agent.kill(SIGKILL) }
        let original = Self.liveCopies(of: "frozen")
        let monitor = CopyMonitor(jobID: "frozen")
        agent.kill(SIGSTOP)
        try await expectMovedWithoutOverlap("frozen", api, monitor, original: original)
        await controller.stop()
        withExtendedLifetime(fleet) {}
    }

    @Test func aCutOffAgentsTrainersAreStoppedBeforeTheJobRunsElsewhere() async throws {
        let (fleet, controller, agent, api) = try await fleetWithJobOnSeparateAgent(job: "cutoff")
        defer { agent.kill(SIGKILL) }
        let original = Self.liveCopies(of: "cutoff")
        let monitor = CopyMonitor(jobID: "cutoff")
        // The agent keeps running; NATS stops accepting it (its identity withdrawn, as a partition would cut it).
        let file = fleet.credentials.authorizationFile
        let text = try String(contentsOfFile: file, encoding: .utf8)
        let start = try #require(text.range(of: "    # node n1\n"))
        let end = try #require(text.range(of: "    } }\n", range: start.upperBound..<text.endIndex))
        try text.replacingCharacters(in: start.lowerBound..<end.upperBound, with: "").write(toFile: file, atomically: true, encoding: .utf8)
        try fleet.server.reload()
        try await expectMovedWithoutOverlap("cutoff", api, monitor, original: original)
        await controller.stop()
    }
}

/// Samples the live copies of a job every 20 ms until stopped; the most seen at once.
final class CopyMonitor: Sendable {
    private final class Most: Sendable {
        let value = Mutex(0)
    }
    private let most = Most()
    private let task: Task<Void, Never>

    init(jobID: String) {
        let most = most
        task = Task.detached {
            while !Task.isCancelled {
                let now = NodeFencingTests.liveCopies(of: jobID).count
                most.value.withLock { $0 = max($0, now) }
                try? await Task.sleep(for: .milliseconds(20))
            }
        }
    }

    func stop() -> Int {
        task.cancel()
        return most.value.withLock { $0 }
    }
}
