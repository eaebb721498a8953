import ArchonController
import ArgumentParser
import Foundation
import Logging
import Metrics
import Prometheus
import ServiceLifecycle

/// `archon controller`: consumes the fleet's events, remediates, escalates, serves the HTTP API.
struct ControllerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "controller",
        abstract: "Run the controller: consume fleet events, remediate, escalate, serve the HTTP API.",
        discussion: "Run two or more for high availability: one leads (KV archon_leader), the others stand by. See docs/operations.md.")

    @Option(name: .long, help: "Controller config file (JSON): id, nats, httpHost, httpPort, tokens, sinks, datasets, policyFile, leaseSeconds, replicas, fetchBatch, ackWaitSeconds.")
    var config: String?

    @Option(name: .long, help: "NATS server URL(s), comma-separated (overrides the config file).")
    var nats: String?

    @Option(name: .long, help: "This replica's id (overrides the config file).")
    var id: String?

    @Option(name: .long, help: "HTTP port (overrides the config file; 0 = any free port).")
    var httpPort: Int?

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    func run() async throws {
        let logger = makeLogger(label: "archon.controller", level: logLevel)
        var settings = try config.map(ControllerConfig.load) ?? ControllerConfig()
        if let nats { settings.nats = nats }
        if let id { settings.id = id }
        if let httpPort { settings.httpPort = httpPort }
        if settings.tokens.isEmpty {
            logger.warning("controller.no_tokens", metadata: ["hint": "no API tokens configured: every API call will get 401"])
        }
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        let controller = try Controller(config: settings, logger: logger)
        let app = APIServer.application(controller: controller, registry: registry, logger: logger) { port in
            logger.notice("controller.api.listening", metadata: ["http.port": "\(port)"])
        }
        let group = ServiceGroup(configuration: .init(
            services: [controller, app], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}
