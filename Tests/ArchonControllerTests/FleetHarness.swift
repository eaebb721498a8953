import ArchonAgent
import ArchonController
import ArchonCore
import ArchonModel
import ArchonNATS
import ArchonTestSupport
import ArchonWire
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Logging
import Metrics
import Prometheus
import ServiceLifecycle

let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
let faultTrainer = "\(repositoryRoot)/examples/trainers/fault_trainer.py"
/// The `archon` binary built beside the test bundle.
let archonBinary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("archon").path

/// A test's API token: the secret a client sends, and the entry the controller's config holds (its hash).
struct TestToken {
    let name: String
    let token: String
    let scopes: [Scope]
    var entry: APIToken { APIToken(name: name, token: token, scopes: scopes) }
    func allows(_ scope: Scope) -> Bool { entry.allows(scope) }
}

let adminToken = TestToken(name: "admin", token: "admin-secret", scopes: [.admin])
let readerToken = TestToken(name: "reader", token: "reader-secret", scopes: [.trainingRead, .datasetRead])
let operatorToken = TestToken(name: "oncall", token: "oncall-secret", scopes: [.trainingRead, .trainingStart, .incidentAck])

/// Prometheus is bootstrapped once per test process, as the executable does once per run.
let metricsRegistry: PrometheusCollectorRegistry = {
    let registry = PrometheusCollectorRegistry()
    MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
    return registry
}()

/// A policy for tests: the runbook's rules with short backoffs and a short stop grace.
let fastPolicy = #"{"remediation": {"backoff": {"initial": "200ms", "max": "1s"}, "stopGrace": "10s"}, "escalation": {"groupWait": "1s"}}"#

func fastPolicyFile(_ json: String = fastPolicy) throws -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("policy-\(UUID().uuidString).json").path
    try json.write(toFile: path, atomically: true, encoding: .utf8)
    return path
}

/// One controller running in this process: its service group, its API port.
final class RunningController: @unchecked Sendable {
    let controller: Controller
    let port: Int
    private let task: Task<Void, Error>

    var api: String { "http://127.0.0.1:\(port)" }

    init(config: ControllerConfig) async throws {
        var logger = Logger(label: "test.controller.\(config.id)")
        logger.logLevel = .warning
        // Bootstrap metrics before the controller makes its counters, as the executable does: counters
        // made before the bootstrap are no-ops and never show on /metrics.
        let registry = metricsRegistry
        let controller = try Controller(config: config, logger: logger)
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let app = APIServer.application(controller: controller, registry: registry, logger: logger) { continuation.yield($0) }
        task = Task {
            let group = ServiceGroup(configuration: .init(services: [controller, app], logger: logger))
            try await group.run()
        }
        var iterator = ports.makeAsyncIterator()
        self.port = await iterator.next() ?? 0
        self.controller = controller
    }

    func stop() async {
        task.cancel()
        _ = try? await task.value
    }

    deinit { task.cancel() }
}

/// A real fleet in one process: nats-server, controllers, agents.
final class FleetHarness: @unchecked Sendable {
    let server: NATSServer
    /// Authentication is on, as in production: the test client is the admin identity.
    let credentials: FleetCredentials
    let connection: NATSConnection
    let js: JetStream
    private(set) var agents: [String: Agent] = [:]
    private var agentTasks: [Task<Void, Error>] = []
    let policyFile: String

    init(policy: String = fastPolicy) async throws {
        // The nodes tests run agents on have identities from the start: a reload makes nats-server 2.9 answer
        // "JetStream not enabled" for a moment, which the daemons ride out but a test need not wait for.
        credentials = try FleetCredentials.create(
            in: FileManager.default.temporaryDirectory.appendingPathComponent("archon-creds-\(UUID().uuidString)").path, nodes: ["n1", "n2"])
        server = try NATSServer(authorizationFile: credentials.authorizationFile)
        var logger = Logger(label: "test.client")
        logger.logLevel = .warning
        connection = try await connectTestClient(
            credentials.natsOptions(servers: [server.url], name: "test-client", seedFile: credentials.adminSeedFile), to: server, logger: logger)
        js = try connection.jetStream()
        try await Fleet.ensureStreams(js)
        policyFile = try fastPolicyFile(policy)
    }

    deinit {
        for task in agentTasks { task.cancel() }
    }

    /// A connection as the admin identity (every subject).
    func clientOptions(name: String) throws -> NATSOptions {
        try credentials.natsOptions(servers: [server.url], name: name, seedFile: credentials.adminSeedFile)
    }

    func controllerConfig(id: String = "c1", sinks: [SinkConfig] = [], lease: Double = 2) -> ControllerConfig {
        var config = ControllerConfig(
            id: id, nats: server.url, httpHost: "127.0.0.1", httpPort: 0, tokens: [adminToken, readerToken, operatorToken].map(\.entry),
            sinks: sinks, datasets: [Dataset(id: "digits", location: "")], policyFile: policyFile, leaseSeconds: lease)
        config.natsNKeySeedFile = credentials.controllerSeedFile
        config.assignmentSigningKeyFile = credentials.signingKeyFile
        return config
    }

    /// Adds `node`'s identity to the running server (as an operator would: `archon credentials`, then reload).
    func identity(for node: String) throws -> NATSOptions {
        if !credentials.nodes().contains(node) {
            try credentials.add(nodes: [node])
            try server.reload()
        }
        return try credentials.natsOptions(servers: [server.url], name: "archon-agent-\(node)", seedFile: credentials.nodeSeedFile(node), node: node)
    }

    func startController(id: String = "c1", sinks: [SinkConfig] = [], lease: Double = 2) async throws -> RunningController {
        try await RunningController(config: controllerConfig(id: id, sinks: sinks, lease: lease))
    }

    /// A synthetic agent for `nodeID` that announced itself, once the controller behind `api` lists the node.
    func announcedNode(_ nodeID: String = "n1", api: HTTP) async throws -> SyntheticAgent {
        let agent = SyntheticAgent(nodeID: nodeID, js: js)
        try await agent.publishStatus()
        _ = try await waitFor("node \(nodeID)") { try await api.call("GET", "/v1/nodes").json([NodeView].self).first { $0.id == nodeID } }
        return agent
    }

    /// Starts a real agent for `nodeID`, on `workDirectory` when given (e.g. a small tmpfs), else a new temporary folder.
    /// `checkpointStorage`: nil = the agent's default, local storage in its work directory.
    func startAgent(_ nodeID: String, memory: UInt64 = 8 << 30, workDirectory: String? = nil, checkpointStorage: CheckpointStorage? = nil) async throws {
        var logger = Logger(label: "test.agent.\(nodeID)")
        logger.logLevel = .warning
        let work = workDirectory ?? FileManager.default.temporaryDirectory.appendingPathComponent("archon-fleet-\(nodeID)-\(UUID().uuidString)").path
        // Reconnect at once: nats.c 3.4 refuses about one NKey connect in 256 (a signature whose first byte is 0
        // goes out empty), and the next try succeeds; a 2 s wait would outlast the tests' 3 s node silence.
        var nats = try identity(for: nodeID)
        nats.reconnectDelay = .milliseconds(50)
        nats.maxReconnectDelay = .milliseconds(250)
        let agent = try Agent(config: AgentConfig(
            nodeID: nodeID, nats: nats, assignments: try AssignmentVerifier(publicKeyFile: credentials.signingPublicKeyFile),
            workDirectory: work, heartbeatInterval: .milliseconds(500),
            sampleInterval: .seconds(1), statusInterval: .seconds(2), gracePeriod: .seconds(1), tickInterval: .milliseconds(50),
            advertisedMemoryBytes: memory, checkpointStorage: checkpointStorage), logger: logger)
        agents[nodeID] = agent
        agentTasks.append(Task { try await agent.run() })
    }
}

/// A tiny HTTP client for the API in tests.
struct HTTP {
    let base: String
    let token: String?

    struct Answer {
        let status: Int
        let body: Data
        var text: String { String(decoding: body, as: UTF8.self) }
        func json<T: Decodable>(_ type: T.Type) throws -> T {
            let decoder = JSONDecoder()
            decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
            return try decoder.decode(type, from: body)
        }
    }

    func call(_ method: String, _ path: String, body: String? = nil) async throws -> Answer {
        var request = URLRequest(url: URL(string: base + path)!)
        request.httpMethod = method
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        if let body { request.httpBody = Data(body.utf8) }
        let (data, response) = try await URLSession.shared.data(for: request)
        return Answer(status: (response as! HTTPURLResponse).statusCode, body: data)
    }
}

func faultSpec(_ id: String, fault: String, epochs: Int = 3, batch: Int = 32, memory: UInt64 = 0, hyper: [String: String] = [:]) -> String {
    var h = hyper
    h["fault"] = fault
    let hyperJSON = h.map { "\"\($0.key)\": \"\($0.value)\"" }.joined(separator: ", ")
    return """
    {"id": "\(id)", "name": "\(fault)", "team": "ml", "command": ["python3", "\(faultTrainer)"],
     "config": {"batchSize": \(batch), "epochs": \(epochs), "learningRate": 0.01, "dataset": "digits",
                "resources": {"memoryBytes": \(memory), "cpuCores": 0.5},
                "checkpoint": {"everyEpochs": 1, "keepLast": 3}, "hyperparameters": {\(hyperJSON)}},
     "labels": {"kind": "fault-\(fault)"}}
    """
}
