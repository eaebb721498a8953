import ArchonAgent
public import ArchonController
import ArchonCore
import ArchonModel
import ArchonNATS
import ArchonWire
import Foundation
public import Logging
import Metrics
public import Prometheus
import ServiceLifecycle

/// How `archon dev` lays out its fleet.
public struct DevOptions: Sendable {
    /// nats-server's store, the agents' work directories and the `env` file live here.
    public var dataDirectory: String
    public var nodes: Int
    /// 0 = a free port.
    public var natsPort: Int
    public var apiPort: Int
    /// Policy file; nil = the runbook's defaults.
    public var policyFile: String?
    /// Memory each node advertises.
    public var nodeMemoryBytes: UInt64
    /// Nodes that really have far less memory than they advertise: node id → what a job there really gets.
    public var brokenNodes: [String: UInt64]
    public var logLevel: Logger.Level

    public init(
        dataDirectory: String, nodes: Int = 2, natsPort: Int = 0, apiPort: Int = 0, policyFile: String? = nil,
        nodeMemoryBytes: UInt64 = 8 << 30, brokenNodes: [String: UInt64] = [:], logLevel: Logger.Level = .warning
    ) {
        self.dataDirectory = dataDirectory
        self.nodes = nodes
        self.natsPort = natsPort
        self.apiPort = apiPort
        self.policyFile = policyFile
        self.nodeMemoryBytes = nodeMemoryBytes
        self.brokenNodes = brokenNodes
        self.logLevel = logLevel
    }

    /// `n1`, `n2`, …
    public var nodeIDs: [String] { (1...max(nodes, 1)).map { "n\($0)" } }
}

/// A whole fleet on one machine: nats-server (a child process), a controller with its HTTP API, and
/// N agents, each with its own work directory — all real, as in production, only closer together.
public final class DevFleet: @unchecked Sendable {
    public let options: DevOptions
    public let adminToken: String
    public private(set) var nats: NATSServer?
    /// The fleet's identities and signing key (`<data>/credentials`): NATS runs with authentication on.
    public private(set) var credentials: FleetCredentials?
    public private(set) var apiPort = 0
    /// The running controller (nil while stopped).
    public private(set) var controller: Controller?
    /// The dashboard URL printed at start and written to `<data>/env`: it logs the admin in once (a one-time code).
    public private(set) var dashboardURL = ""
    private var controllerTask: Task<Void, Error>?
    private var agentTasks: [Task<Void, Error>] = []
    private let logger: Logger
    private let registry: PrometheusCollectorRegistry

    public var natsURL: String { nats?.url ?? "" }
    public var apiURL: String { "http://127.0.0.1:\(apiPort)" }
    public var client: ControllerClient { ControllerClient(base: apiURL, token: adminToken) }

    /// Metrics go to `registry` (bootstrap it as the process's metrics backend to see them on /metrics).
    public init(options: DevOptions, registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.options = options
        self.registry = registry
        adminToken = "dev-" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(24)
        var logger = Logger(label: "archon.dev")
        logger.logLevel = options.logLevel
        self.logger = logger
    }

    deinit {
        controllerTask?.cancel()
        for task in agentTasks { task.cancel() }
    }

    /// Starts nats-server, the controller and the agents; returns once the API answers and every node has reported.
    public func start() async throws {
        let fm = FileManager.default
        try fm.createDirectory(atPath: options.dataDirectory, withIntermediateDirectories: true)
        let credentials = try FleetCredentials.create(in: "\(options.dataDirectory)/credentials", nodes: options.nodeIDs)
        self.credentials = credentials
        nats = try NATSServer(port: options.natsPort, storeDirectory: URL(fileURLWithPath: "\(options.dataDirectory)/nats"),
                              authorizationFile: credentials.authorizationFile)
        try await startController()
        let verifier = try AssignmentVerifier(publicKeyFile: credentials.signingPublicKeyFile)
        // The dev nodes share one machine, so one folder is truly shared storage: a job moved between them resumes.
        let sharedCheckpoints = CheckpointStorage(root: "\(options.dataDirectory)/shared-checkpoints", shared: true)
        try fm.createDirectory(atPath: sharedCheckpoints.root, withIntermediateDirectories: true)
        for node in options.nodeIDs {
            var logger = self.logger
            logger[metadataKey: "node.id"] = "\(node)"
            let agent = try Agent(config: AgentConfig(
                nodeID: node,
                nats: try credentials.natsOptions(servers: [natsURL], name: "archon-agent-\(node)", seedFile: credentials.nodeSeedFile(node), node: node),
                assignments: verifier,
                workDirectory: "\(options.dataDirectory)/\(node)", labels: ["dev": "true"],
                heartbeatInterval: .seconds(1), sampleInterval: .seconds(2), statusInterval: .seconds(5), gracePeriod: .seconds(2),
                defaultHangSeconds: 60, tickInterval: .milliseconds(100), advertisedMemoryBytes: options.nodeMemoryBytes,
                memoryCeilingBytes: options.brokenNodes[node], fenceAfter: .seconds(60), checkpointStorage: sharedCheckpoints), logger: logger)
            agentTasks.append(Task { try await agent.run() })
        }
        dashboardURL = dashboardLoginURL()
        let env = """
            export ARCHON_NATS=\(natsURL)
            export ARCHON_API=\(apiURL)
            export ARCHON_TOKEN=\(adminToken)
            export ARCHON_DASHBOARD_URL='\(dashboardURL)'
            export ARCHON_NATS_NKEY_SEED=\(credentials.adminSeedFile)

            """
        try env.write(toFile: "\(options.dataDirectory)/env", atomically: true, encoding: .utf8)
        let expected = Set(options.nodeIDs)
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            if let nodes = try? await client.nodes(), expected.isSubset(of: Set(nodes.map(\.id))) { return }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw DevError("the fleet did not come up: nodes \(expected.sorted()) did not all report within 30 s")
    }

    /// Starts a controller (again, after ``stopController()``) on the same API port.
    public func startController() async throws {
        var config = ControllerConfig(
            id: "dev-controller", nats: natsURL, httpHost: "127.0.0.1", httpPort: apiPort == 0 ? options.apiPort : apiPort,
            tokens: [APIToken(name: "admin", token: adminToken, scopes: [.admin])],
            datasets: [Dataset(id: "digits", location: "")], policyFile: options.policyFile, leaseSeconds: 3)
        config.fetchBatch = 256
        config.natsNKeySeedFile = credentials?.controllerSeedFile
        config.assignmentSigningKeyFile = credentials?.signingKeyFile
        let controller = try Controller(config: config, logger: logger)
        self.controller = controller
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        // Hummingbird reports a cancelled server (a controller restart) as errors: quiet it below critical.
        var serverLogger = logger
        serverLogger.logLevel = .critical
        let app = APIServer.application(controller: controller, registry: registry, logger: serverLogger) { continuation.yield($0) }
        let logger = self.logger
        controllerTask = Task {
            try await ServiceGroup(configuration: .init(services: [controller, app], logger: logger)).run()
        }
        var iterator = ports.makeAsyncIterator()
        apiPort = await iterator.next() ?? 0
    }

    /// Stops the controller as a crash would, mid-whatever it was doing; agents and NATS keep running.
    public func stopController() async {
        controllerTask?.cancel()
        _ = try? await controllerTask?.value
        controllerTask = nil
        controller = nil
    }

    /// A dashboard URL that logs the admin in by itself, once, within ten minutes (a one-time code the first visit
    /// trades for the session cookie).
    public func dashboardLoginURL() -> String {
        guard let controller else { return "\(apiURL)/ui/login" }
        return "\(apiURL)/ui/login?code=\(controller.dashboardLogins.mint(token: adminToken, now: controller.now()))"
    }

    /// Stops everything: the controller, the agents (their jobs keep running only until nats-server stops… and are
    /// stopped with them), nats-server.
    public func stop() async {
        await stopController()
        for task in agentTasks { task.cancel() }
        for task in agentTasks { _ = try? await task.value }
        agentTasks.removeAll()
        nats?.stop()
        nats = nil
    }
}
