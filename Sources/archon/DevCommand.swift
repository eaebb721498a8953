import ArchonDev
import ArgumentParser
import Foundation
import Logging
import Metrics
import Prometheus
import ServiceLifecycle

/// `archon dev`: a whole fleet on this machine, and the runbook's scenarios played on it.
struct DevCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dev",
        abstract: "Run a whole fleet on this machine: nats-server, a controller and N agents.",
        discussion: """
            Prints the NATS URL, the API URL, an admin token and a dashboard URL that logs in once (also written to \
            <data-dir>/env: `source` it to use the CLI). \
            With --scenarios it then plays the runbook's failures on the fleet, narrating each, and prints a summary. \
            Ctrl-C stops everything.
            """)

    @Option(name: .long, help: "Where nats-server's store and the agents' work directories go (default: a new temporary folder).")
    var dataDir: String?

    @Option(name: .long, help: "Number of agents (nodes n1, n2, …).")
    var nodes = 2

    @Option(name: .long, help: "NATS port (0 = any free port).")
    var natsPort = 4222

    @Option(name: .long, help: "HTTP API port (0 = any free port).")
    var apiPort = 8080

    @Option(name: .long, help: "Policy file (default: deploy/dev/policy.yaml when present: the runbook with time scaled down).")
    var policy: String?

    @Flag(name: .long, help: "Play the runbook's scenarios on the fleet (adds the broken node n3).")
    var scenarios = false

    @Option(name: .long, help: "Only these scenarios, e.g. 1,2,7.")
    var only: String?

    @Flag(name: .long, help: "Stop the fleet after the scenarios and exit non-zero if any did not end as expected (also DEMO_EXIT=1).")
    var exit = false

    @Option(name: .long, help: "Folder of the example trainers.")
    var trainers = FileManager.default.currentDirectoryPath + "/examples/trainers"

    @Option(name: .long, help: "Log level of the fleet's own logs.")
    var logLevel: String = "error"

    func run() async throws {
        let data = dataDir ?? FileManager.default.temporaryDirectory.appendingPathComponent("archon-dev-\(UUID().uuidString.prefix(8))").path
        let policyFile = policy ?? (FileManager.default.fileExists(atPath: "deploy/dev/policy.yaml") ? "deploy/dev/policy.yaml" : nil)
        let nodeCount = scenarios ? max(nodes, 3) : nodes
        var brokenNodes: [String: UInt64] = [:]
        if scenarios { brokenNodes[ScenarioCatalog.brokenNode] = ScenarioCatalog.brokenNodeMemory }
        let options = DevOptions(
            dataDirectory: data, nodes: nodeCount, natsPort: natsPort, apiPort: apiPort, policyFile: policyFile,
            brokenNodes: brokenNodes, logLevel: Logger.Level(rawValue: logLevel) ?? .error)
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        let fleet = DevFleet(options: options, registry: registry)
        var logger = Logger(label: "archon.dev")
        logger.logLevel = .error
        let service = DevService(
            fleet: fleet, scenarios: scenarios, only: only.map { Set($0.split(separator: ",").compactMap { Int($0) }) },
            exitAfter: exit || ProcessInfo.processInfo.environment["DEMO_EXIT"] == "1", trainers: trainers)
        // The service ends by itself after the scenarios with --exit: that ends the group, not an error.
        let group = ServiceGroup(configuration: .init(
            services: [.init(service: service, successTerminationBehavior: .gracefullyShutdownGroup)],
            gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        if let failed = await service.outcome.failed, failed > 0 {
            throw ExitCode(1)
        }
    }
}

/// The fleet's lifetime as a service: start, show, optionally play the scenarios, wait for Ctrl-C, stop.
struct DevService: Service {
    let fleet: DevFleet
    let scenarios: Bool
    let only: Set<Int>?
    let exitAfter: Bool
    let trainers: String
    let outcome = Outcome()

    actor Outcome {
        var failed: Int?
        func set(_ n: Int) { failed = n }
    }

    func run() async throws {
        do {
            try await fleet.start()
        } catch {
            await fleet.stop()
            print("archon dev: \(error)")
            throw ExitCode(1)
        }
        let options = fleet.options
        print("""
            Archon Fleet dev fleet is up.
              NATS     \(fleet.natsURL)
              API      \(fleet.apiURL)
              token    \(fleet.adminToken)
              dashboard \(fleet.dashboardURL)
                       (logs you in once; after that, log in with the token)
              nodes    \(options.nodeIDs.joined(separator: ", "))\(options.brokenNodes.isEmpty ? "" : " (\(options.brokenNodes.keys.sorted().joined(separator: ", ")) is broken: far less memory than it advertises)")
              data     \(options.dataDirectory)
            For the CLI:  source \(options.dataDirectory)/env
            """)
        fflush(nil)  // every stream: a pipe (a test, a log collector) sees the URLs now, not at exit
        if scenarios {
            let brokenNode = ScenarioCatalog.brokenNode
            _ = try? await fleet.client.call("POST", "/v1/nodes/\(brokenNode)/cordon",
                                             body: Data(#"{"reason":"new node, awaiting burn-in"}"#.utf8))
            let catalog = ScenarioCatalog.all(trainers: trainers).filter { only?.contains($0.number) ?? true }
            let directory = "\(options.dataDirectory)/scenarios"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let runner = ScenarioRunner(fleet: fleet, directory: directory)
            let started = ContinuousClock.now
            var results: [ScenarioResult] = []
            for scenario in catalog {
                results.append(await runner.run(scenario))
            }
            let failed = results.filter { !$0.passed }.count
            await outcome.set(failed)
            print("\nSummary (\(results.count) scenarios in \(started.duration(to: .now).formatted(.units(allowed: [.minutes, .seconds], width: .narrow)))):")
            print(ScenarioRunner.summary(results))
            print(failed == 0 ? "\nEvery scenario ended as the runbook says." : "\n\(failed) scenario(s) did not end as expected.")
        }
        if exitAfter {
            await fleet.stop()
            return
        }
        print("""

            The fleet keeps running. Open the dashboard (a fresh one-time link: \(fleet.dashboardLoginURL()) ),
            or try, in another shell:
              source \(options.dataDirectory)/env
              archon job list
              archon job show digits-oom
              archon incident list
              archon incident show <ID>     archon incident ack <ID>     archon incident resolve <ID> --root-cause "…"
              archon incident report <ID>
              archon node list
              archon job submit examples/jobs/ok.yaml && archon job watch digits-ok
            Ctrl-C stops the fleet.
            """)
        try? await gracefulShutdown()
        print("\nstopping the fleet…")
        await fleet.stop()
    }
}
