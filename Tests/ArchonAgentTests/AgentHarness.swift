import ArchonAgent
import ArchonModel
import ArchonNATS
import ArchonTestSupport
import ArchonWire
import Foundation
import Logging

let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
let faultTrainer = "\(repositoryRoot)/examples/trainers/fault_trainer.py"

/// A real nats-server, a real agent on a temporary work directory, and a client that plays the controller.
final class AgentHarness: @unchecked Sendable {
    let server: NATSServer
    let workDirectory: String
    let nodeID: String
    let connection: NATSConnection
    let js: JetStream
    let desired: KeyValue
    /// Authentication on; `connection` is the controller's identity, and assignments are signed with its key.
    let credentials: FleetCredentials
    let signer: AssignmentSigner
    let memoryMode: MemoryEnforcer.Mode
    private(set) var agent: Agent?
    private var agentTask: Task<Void, Error>?
    private var consumers = 0

    init(nodeID: String = "n1", memoryMode: MemoryEnforcer.Mode = .auto) async throws {
        credentials = try FleetCredentials.create(
            in: FileManager.default.temporaryDirectory.appendingPathComponent("archon-creds-\(UUID().uuidString)").path, nodes: [nodeID])
        signer = try AssignmentSigner(keyFile: credentials.signingKeyFile)
        server = try NATSServer(authorizationFile: credentials.authorizationFile)
        workDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("archon-agent-\(UUID().uuidString)").path
        self.nodeID = nodeID
        self.memoryMode = memoryMode
        var logger = Logger(label: "test.controller")
        logger.logLevel = .warning
        connection = try await connectTestClient(
            credentials.natsOptions(servers: [server.url], name: "test-controller", seedFile: credentials.controllerSeedFile), to: server, logger: logger)
        js = try connection.jetStream()
        try await Fleet.ensureStreams(js)
        desired = try await js.keyValue(KeyValueConfig(bucket: Fleet.desiredBucket))
        // The leadership lease, renewed a few times: fencing epochs up to its revision are believable.
        let leader = try await js.keyValue(KeyValueConfig(bucket: Fleet.leaderBucket))
        for _ in 0..<10 { try await leader.put("lease", Array("test-controller".utf8)) }
    }

    deinit {
        // The work directory stays (under the temporary folder): a cancelled agent may still be finishing with it.
        agentTask?.cancel()
    }

    func startAgent(gracePeriod: Duration = .seconds(2), hangAfter: Int = 300, rules: ExecutionRules = ExecutionRules(),
                    runAs: RunAsIdentity? = nil, checkpointStorage: CheckpointStorage? = nil, allowedCheckpointRoots: [String] = [],
                    fenceAfter: Duration? = nil, unconfirmedEpochGrace: Duration = .seconds(30)) async throws {
        var logger = Logger(label: "test.agent")
        logger.logLevel = .notice
        var config = AgentConfig(
            nodeID: nodeID,
            nats: try {
                var options = try credentials.natsOptions(servers: [server.url], name: "archon-agent-\(nodeID)",
                                                          seedFile: credentials.nodeSeedFile(nodeID), node: nodeID)
                options.reconnectDelay = .milliseconds(50)
                options.maxReconnectDelay = .milliseconds(250)
                return options
            }(),
            assignments: try AssignmentVerifier(publicKeyFile: credentials.signingPublicKeyFile),
            workDirectory: workDirectory, memoryMode: memoryMode, heartbeatInterval: .milliseconds(500),
            sampleInterval: .milliseconds(500), gracePeriod: gracePeriod, defaultHangSeconds: hangAfter,
            tickInterval: .milliseconds(50), executionRules: rules, runAs: runAs, fenceAfter: fenceAfter,
            checkpointStorage: checkpointStorage, allowedCheckpointRoots: allowedCheckpointRoots)
        config.unconfirmedEpochGrace = unconfirmedEpochGrace
        let agent = try Agent(config: config, logger: logger)
        self.agent = agent
        agentTask = Task { try await agent.run() }
    }

    /// Stops the agent process's work (as a crash or SIGTERM would); its jobs stay running.
    func stopAgent() async {
        agentTask?.cancel()
        _ = try? await agentTask?.value
        agentTask = nil
        agent = nil
    }

    func assign(_ spec: JobSpec, attempt: Int = 1, epoch: UInt64 = 1, state: JobAssignment.DesiredState = .running,
                resumeFrom: String = "", resumeSHA256: String = "") async throws {
        let assignment = JobAssignment(spec: spec, attempt: attempt, fencingEpoch: epoch, desiredState: state, nodeID: nodeID,
                                       resumeFrom: resumeFrom, resumeSHA256: resumeSHA256)
        try await desired.put("\(nodeID).\(spec.id)", try signer.sign(assignment).encoded())
    }

    /// The job's events from the stream, in order, once `until` holds (or the timeout passes).
    func events(_ jobID: String, timeout: Duration = .seconds(30), until: ([TrainingEvent]) -> Bool) async throws -> [TrainingEvent] {
        consumers += 1
        let consumer = try await js.pullConsumer(
            stream: Fleet.eventsStream, durable: "test-\(consumers)-\(UUID().uuidString.prefix(6))",
            filterSubject: Fleet.eventsSubject(node: nodeID, job: jobID))
        var events: [TrainingEvent] = []
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            for message in try await consumer.fetch(batch: 256, timeout: .milliseconds(200)) {
                events.append(try TrainingEvent.decode(message.payload))
                try message.ack()
            }
            if until(events) { break }
        }
        return events
    }
}

func faultJob(_ id: String, fault: String, epochs: Int = 3, hyper: [String: String] = [:], timeouts: Timeouts = Timeouts(),
              memoryBytes: UInt64 = 0, keepLast: Int = 3) -> JobSpec {
    var hyperparameters = hyper
    hyperparameters["fault"] = fault
    return JobSpec(
        id: id, name: "fault \(fault)", team: "ml", command: ["python3", faultTrainer],
        config: TrainingConfig(batchSize: 32, epochs: epochs, timeouts: timeouts,
                               checkpoint: CheckpointPolicy(everyEpochs: 1, keepLast: keepLast),
                               resources: Resources(memoryBytes: memoryBytes), hyperparameters: hyperparameters))
}

extension [TrainingEvent] {
    var exit: JobExited? {
        for event in self { if case .exited(let e) = event.body { return e } }
        return nil
    }

    func exits(attempt: Int) -> JobExited? {
        for event in self where event.attempt == attempt { if case .exited(let e) = event.body { return e } }
        return nil
    }

    var epochs: [Int] {
        compactMap { if case .epoch(let m) = $0.body { m.epoch } else { nil } }
    }

    var checkpoints: [CheckpointWritten] {
        compactMap { if case .checkpoint(let c) = $0.body { c } else { nil } }
    }

    func started(attempt: Int) -> JobStarted? {
        for event in self where event.attempt == attempt { if case .started(let s) = event.body { return s } }
        return nil
    }

    func hasExit(attempt: Int) -> Bool { exits(attempt: attempt) != nil }
}
