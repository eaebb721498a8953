import ArchonController
import ArchonCore
import ArchonModel
import ArchonNATS
import ArchonTestSupport
import ArchonWire
import Foundation
import Testing

/// The real `archon controller` binary as a child process, with its own JSON config file and log.
///
/// `crash()` is SIGKILL: no graceful shutdown, no lease resignation, no last snapshot. `start()` again reuses
/// the config: a restart. A process still running when the test ends (or fails) is killed with its
/// `ControllerProcess`; `kill()` in a `defer` does it at once.
final class ControllerProcess: @unchecked Sendable {
    let config: ControllerConfig
    let configPath: String
    let logPath: String
    private var child: ChildProcess?
    private let lock = NSLock()

    var api: String { "http://127.0.0.1:\(config.httpPort)" }

    /// Writes the config file (httpPort must be a real port: the test has to know where to call).
    init(_ config: ControllerConfig) throws {
        precondition(config.httpPort > 0, "a child controller needs a known HTTP port")
        self.config = config
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("archon-controller-\(config.id)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        configPath = directory.appendingPathComponent("controller.json").path
        logPath = directory.appendingPathComponent("controller.log").path
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(config).write(to: URL(fileURLWithPath: configPath))
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
    }

    func start(logLevel: String = "notice") throws {
        try lock.withLock {
            guard child == nil else { return }
            child = try ChildProcess(archonBinary, ["controller", "--config", configPath, "--log-level", logLevel],
                                     environment: ProcessInfo.processInfo.environment, stdout: logPath, stderr: logPath)
        }
    }

    /// SIGKILL, without waiting (for `defer`). Idempotent.
    func kill() {
        lock.withLock {
            child?.kill()
            child = nil
        }
    }

    /// SIGKILL, and wait until it is gone (its port and its NATS connection with it).
    func crash() async {
        let child = lock.withLock { () -> ChildProcess? in
            defer { self.child = nil }
            return self.child
        }
        guard let child else { return }
        child.kill()
        _ = await child.exitStatus()
    }

    /// The end of the controller's log, for failure messages.
    var logTail: String {
        let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        return String(text.suffix(3000))
    }

    /// What it reports on GET /readyz, nil while it does not answer.
    func readiness() async -> ReadinessView? {
        guard let answer = try? await HTTP(base: api, token: nil).call("GET", "/readyz"), answer.status == 200 else { return nil }
        return try? answer.json(ReadinessView.self)
    }

    /// The role it reports on GET /readyz, nil while it does not answer.
    func role() async -> String? { await readiness()?.role }

    /// Waits until it answers /readyz with `role`.
    func waitForRole(_ role: String, timeout: Duration = .seconds(20)) async throws {
        do {
            _ = try await waitFor("\(config.id) to be \(role)", timeout: timeout) { await self.role() == role ? true : nil }
        } catch {
            Issue.record("controller \(config.id) log:\n\(logTail)")
            throw error
        }
    }
}

extension FleetHarness {
    /// A config for a child controller: the harness's, on a free loopback port.
    func childConfig(id: String, lease: Double = 2, fetchBatch: Int = 256, ackWait: Double = 2) throws -> ControllerConfig {
        var config = controllerConfig(id: id, lease: lease)
        config.httpPort = try freeLoopbackPort()
        config.fetchBatch = fetchBatch
        config.ackWaitSeconds = ackWait
        return config
    }

    /// The controller's durable consumer as JetStream reports it (`$JS.API.CONSUMER.INFO`): num_pending,
    /// num_ack_pending, num_redelivered, delivered, ack_floor.
    func consumerInfo() async throws -> [String: Any] {
        let reply = try await connection.request("$JS.API.CONSUMER.INFO.\(Fleet.eventsStream).\(Controller.durableName)", [])
        return try #require(try JSONSerialization.jsonObject(with: Data(reply.payload)) as? [String: Any])
    }

    /// The controller's stored state (KV `archon_state` plus the journal), as the next leader will read it.
    func persistedState() async throws -> FleetState {
        try await StateStore.read(js, at: UnixTime.nowMillis()).core.state
    }

    /// The assignment in KV `archon_desired` for `<node>.<job>`.
    func assignment(node: String, job: String, in desired: KeyValue? = nil) async throws -> JobAssignment? {
        let kv: KeyValue
        if let desired { kv = desired } else { kv = try await js.keyValue(KeyValueConfig(bucket: Fleet.desiredBucket)) }
        return try await kv.get("\(node).\(job)").map { try SignedAssignment.decode($0.value).unverifiedAssignment() }
    }
}
