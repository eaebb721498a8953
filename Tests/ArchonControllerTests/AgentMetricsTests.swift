import ArchonController
import ArchonTestSupport
import Foundation
import Testing

/// `archon agent --metrics-port`: what Prometheus scrapes on every node (deploy/observability).
@Suite("The agent's metrics endpoint", .serialized)
struct AgentMetricsTests {
    @Test func anAgentServesItsSpoolAndPublishCountersAndTheyMove() async throws {
        let fleet = try await FleetHarness()
        let controller = try await RunningController(config: fleet.controllerConfig())
        let api = HTTP(base: controller.api, token: adminToken.token)
        let port = Int.random(in: 20_000...60_000)
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("archon-metrics-n1-\(UUID().uuidString)").path
        let agent = try ChildProcess(archonBinary, [
            "agent", "--node-id", "n1", "--nats", fleet.server.url, "--work-dir", work,
            "--nats-nkey-seed", fleet.credentials.nodeSeedFile("n1"),
            "--assignment-public-key", fleet.credentials.signingPublicKeyFile,
            "--heartbeat", "0.5", "--metrics-port", "\(port)", "--metrics-host", "127.0.0.1", "--log-level", "warning",
        ], environment: ProcessInfo.processInfo.environment, stdout: "\(work).log", stderr: "\(work).log")
        defer { agent.kill(SIGKILL) }
        _ = try await waitFor("node n1") { try await api.call("GET", "/v1/nodes").json([NodeView].self).first { $0.id == "n1" } }

        let scrape = HTTP(base: "http://127.0.0.1:\(port)", token: nil)
        let published = try await waitFor("events published, on /metrics") { () -> Double? in
            let text = try await scrape.call("GET", "/metrics").text
            let value = text.split(separator: "\n").first { $0.hasPrefix("archon_agent_events_published_total ") }
                .flatMap { Double($0.split(separator: " ").last ?? "") }
            return (value ?? 0) >= 2 ? value : nil  // node status and heartbeats
        }
        #expect(published >= 2)
        let text = try await scrape.call("GET", "/metrics").text
        #expect(text.contains("archon_agent_spool_depth ") && text.contains("archon_agent_publish_failures_total "), "\(text)")
        #expect(try await scrape.call("GET", "/healthz").status == 200)
        await controller.stop()
    }
}
