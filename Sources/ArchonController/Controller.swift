public import ArchonCore
public import ArchonModel
import ArchonNATS
import ArchonWire
import Foundation
public import Logging
public import ServiceLifecycle

/// What the controller persists in KV `archon_state`, key `fleet`: the core's whole state, and the actions
/// decided but maybe not yet performed (performed again after a crash; every action is idempotent).
struct Snapshot: Codable, Sendable {
    var state: FleetState
    var pending: [ControllerAction]
    var savedAtMs: Int64
    var savedBy: String
}

/// The controller: turns the pure core into a running service.
///
/// It consumes `archon.v1.events.>` from the stream `ARCHON_EVENTS` with a durable pull consumer, feeds each
/// batch to the ``FleetController``, persists the resulting state (with the actions decided) in KV, performs
/// the actions (assignments in KV `archon_desired`, escalations on `archon.v1.escalations.<level>` and to the
/// sinks, timers), and only then acknowledges the batch. A crash anywhere loses no event and applies none
/// twice: unacknowledged events come back, and the core ignores (job, attempt, sequence) it has seen.
///
/// Only the leader (see ``LeaderElection``) consumes and acts; a standby serves reads from the persisted state.
public actor Controller: Service {
    public let config: ControllerConfig
    let policy: Policy
    let logger: Logger
    let metrics = ControllerMetrics()
    let sinks: EscalationSinks
    let now: @Sendable () -> Int64

    private(set) var core: FleetController
    private(set) public var role: LeaderElection.Role = .standby(leader: nil)
    /// Unix ms when `role` last changed (0 until the election first decides).
    private(set) public var roleSinceMs: Int64 = 0
    private var timers: [TimerID: Int64] = [:]
    private var connection: NATSConnection?
    private var jetStream: JetStream?
    private var desiredKV: KeyValue?
    private var stateKV: KeyValue?
    private var consumerTask: Task<Void, Never>?
    /// Inputs are applied one at a time across suspension points (persist, perform): FIFO.
    private var busy = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    public static let stateKey = "fleet"

    /// Unix milliseconds now.
    public static let wallClockMillis: @Sendable () -> Int64 = { UnixTime.nowMillis() }
    public static let durableName = "archon-controller"

    public init(config: ControllerConfig, logger: Logger, now: @escaping @Sendable () -> Int64 = Controller.wallClockMillis) throws {
        var logger = logger
        logger[metadataKey: "controller.id"] = "\(config.id)"
        self.config = config
        self.policy = try config.loadPolicy()
        self.logger = logger
        self.now = now
        self.sinks = EscalationSinks(config.sinks, logger: logger)
        self.core = FleetController(policy: policy)
    }

    // MARK: Service

    public func run() async throws {
        let connection = try await NATSConnection.connect(
            { var o = config.natsOptions; o.retryOnFailedConnect = true; return o }(), logger: logger)
        self.connection = connection
        let js = try connection.jetStream()
        jetStream = js
        try await Fleet.ensureStreams(js, replicas: config.replicas)
        desiredKV = try await js.keyValue(KeyValueConfig(bucket: Fleet.desiredBucket, replicas: config.replicas))
        stateKV = try await js.keyValue(KeyValueConfig(bucket: Fleet.stateBucket, history: 5, replicas: config.replicas))
        let leaderKV = try await js.keyValue(KeyValueConfig(bucket: Fleet.leaderBucket, replicas: config.replicas))
        let election = LeaderElection(kv: leaderKV, id: config.id, leaseTime: .milliseconds(Int(config.leaseSeconds * 1000)), logger: logger)
        let roles = await election.changes()
        await loadSnapshot()

        // Each task returns whether it is the shutdown signal; the others run until cancelled
        // (some, like the sinks with none configured, end at once).
        await withTaskGroup(of: Bool.self) { group in
            group.addTask { await election.run(); return false }
            group.addTask { await self.sinks.run(); return false }
            group.addTask {
                for await role in roles { await self.roleChanged(role) }
                return false
            }
            group.addTask { await self.timerLoop(); return false }
            group.addTask { await self.standbyRefreshLoop(); return false }
            group.addTask {
                try? await gracefulShutdown()
                await election.resign()
                return true
            }
            while let isShutdown = await group.next() {
                if isShutdown { break }
            }
            group.cancelAll()
        }
        consumerTask?.cancel()
        sinks.finish()
        connection.close()
    }

    public var isLeader: Bool { if case .leader = role { true } else { false } }
    public var natsConnected: Bool { connection?.isConnected ?? false }

    // MARK: Leadership

    private func roleChanged(_ newRole: LeaderElection.Role) async {
        role = newRole
        roleSinceMs = now()
        switch newRole {
        case .leader(let epoch):
            await serialized {
                await loadSnapshot()
                var actions = pendingFromSnapshot
                pendingFromSnapshot = []
                actions += core.leadershipAcquired(fencingEpoch: epoch, at: now())
                for dataset in config.datasets where core.dataset(dataset.id)?.dataset != dataset {
                    actions += core.datasetRegistered(dataset, at: now())
                }
                await commit(actions)
            }
            startConsumer()
        case .standby:
            consumerTask?.cancel()
            consumerTask = nil
            timers.removeAll()
            heldSince.removeAll()
            givenUp.removeAll()
        }
    }

    private var pendingFromSnapshot: [ControllerAction] = []

    private func loadSnapshot(unlessLeader: Bool = false) async {
        guard let stateKV else { return }
        do {
            guard let entry = try await stateKV.get(Self.stateKey) else { return }
            // A standby's refresh still in flight when leadership came must not replace the leader's state
            // (it would roll back the fencing epoch and whatever the leader decided since).
            if unlessLeader, isLeader { return }
            let snapshot = try JSONDecoder.archon.decode(Snapshot.self, from: Data(entry.value))
            core = FleetController(policy: policy, state: snapshot.state)
            pendingFromSnapshot = snapshot.pending
        } catch {
            logger.error("controller.state.load_failed", metadata: ["error": "\(error)"])
        }
    }

    /// A standby keeps its read model fresh for the API.
    private func standbyRefreshLoop() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(1))
            if !isLeader { await loadSnapshot(unlessLeader: true) }
        }
    }

    // MARK: Inputs

    private func serialized<T: Sendable>(_ body: () async throws -> T) async rethrows -> T {
        if busy {
            await withCheckedContinuation { waiters.append($0) }
        } else {
            busy = true
        }
        defer {
            if waiters.isEmpty { busy = false } else { waiters.removeFirst().resume() }
        }
        return try await body()
    }

    public struct NotLeader: Error, CustomStringConvertible {
        public let leader: String?
        public var description: String {
            "this controller is a standby; send changes to the leader\(leader.map { " (\($0))" } ?? "")"
        }
    }

    /// Applies an operator input to the core, persists and performs what it decided. Standbys refuse.
    @discardableResult
    public func apply(_ input: @Sendable (inout FleetController, Int64) throws -> [ControllerAction]) async throws -> [ControllerAction] {
        guard isLeader else {
            if case .standby(let leader) = role { throw NotLeader(leader: leader) }
            throw NotLeader(leader: nil)
        }
        return try await serialized {
            let actions = try input(&core, now())
            await commit(actions)
            return actions
        }
    }

    /// Read access to the core's state.
    public func read<T: Sendable>(_ body: @Sendable (FleetController) -> T) -> T { body(core) }

    /// Persist state with the actions, then perform them. Called under `serialized`.
    private func commit(_ actions: [ControllerAction]) async {
        await persist(pending: actions)
        await perform(actions)
        metrics.incidents(core.incidents)
    }

    private func persist(pending: [ControllerAction]) async {
        guard let stateKV else { return }
        let snapshot = Snapshot(state: core.state, pending: pending, savedAtMs: now(), savedBy: config.id)
        do {
            try await stateKV.put(Self.stateKey, Array(try JSONEncoder.archon.encode(snapshot)))
        } catch {
            logger.error("controller.state.save_failed", metadata: ["error": "\(error)"])
        }
    }

    // MARK: Events

    private func startConsumer() {
        consumerTask?.cancel()
        consumerTask = Task { await self.consumeLoop() }
    }

    private func consumeLoop() async {
        guard let js = jetStream else { return }
        var consumer: PullConsumer?
        while !Task.isCancelled, isLeader {
            do {
                if consumer == nil {
                    consumer = try await js.pullConsumer(
                        stream: Fleet.eventsStream, durable: Self.durableName, filterSubject: Fleet.eventsSubjects,
                        ackWait: .milliseconds(Int(config.ackWaitSeconds * 1000)))
                }
                let batch = try await consumer!.fetch(batch: config.fetchBatch, timeout: .milliseconds(500))
                if batch.isEmpty { continue }
                await serialized { await handle(batch) }
            } catch {
                logger.warning("controller.consume.failed", metadata: ["error": "\(error)"])
                consumer = nil
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }

    /// Decode, decide, persist, perform, then acknowledge: in that order.
    private func handle(_ batch: [JetStreamMessage]) async {
        let started = ContinuousClock.now
        var actions: [ControllerAction] = []
        var rejected: [JetStreamMessage] = []
        var accepted: [JetStreamMessage] = []
        var held: [JetStreamMessage] = []
        for message in batch {
            let parts = message.subject.split(separator: ".")
            guard parts.count == 5 else {
                logger.error("controller.event.bad_subject", metadata: ["nats.subject": "\(message.subject)"])
                rejected.append(message)
                continue
            }
            let subjectNode = String(parts[3])
            let subjectJob = String(parts[4])
            let event: TrainingEvent
            do {
                event = try TrainingEvent.decode(message.payload)
            } catch {
                metrics.decodeErrors.increment()
                logger.error("controller.event.malformed", metadata: ["nats.subject": "\(message.subject)", "error": "\(error)"])
                rejected.append(message)
                continue
            }
            let jobMatches = event.jobID.isEmpty ? subjectJob == "_node" : subjectJob == event.jobID
            if event.nodeID != subjectNode || !jobMatches {
                metrics.eventsConsumed.increment()
                metrics.spoofedEvents.increment()
                logger.error("controller.event.spoofed", metadata: [
                    "nats.subject": "\(message.subject)", "event.node": "\(event.nodeID)", "event.job": "\(event.jobID)",
                ])
                // The core raises the security concern; the message is never redelivered.
                actions += core.eventReceived(event, subjectNode: subjectNode, at: now())
                rejected.append(message)
                continue
            }
            if mustWait(event, message) {
                held.append(message)
                continue
            }
            metrics.eventsConsumed.increment()
            actions += core.eventReceived(event, subjectNode: subjectNode, at: now())
            accepted.append(message)
        }
        await commit(actions)
        for message in accepted {
            do { try message.ack() } catch { logger.warning("controller.ack.failed", metadata: ["error": "\(error)"]) }
        }
        for message in held {
            do { try message.nak(delay: .milliseconds(250)) } catch { logger.warning("controller.nak.failed", metadata: ["error": "\(error)"]) }
        }
        for message in rejected {
            do { try message.term() } catch { logger.warning("controller.term.failed", metadata: ["error": "\(error)"]) }
        }
        if let lag = batch.last?.metadata?.pending { metrics.consumerLag.record(Int64(lag)) }
        metrics.decisionLatency.recordNanoseconds((ContinuousClock.now - started).nanoseconds)
    }

    /// Events held back, by stream sequence, with when they were first held.
    private var heldSince: [UInt64: ContinuousClock.Instant] = [:]
    /// Per "job/attempt", the missing event given up on: later events of that attempt are not held for it.
    private var givenUp: [String: UInt64] = [:]

    /// Whether `event` must wait for an earlier event of its (job, attempt) that is not applied yet.
    ///
    /// JetStream redelivers in order only what it delivers in order: events a leader fetched and died with
    /// come back after ackWait, behind newer ones the next leader already got. Applied out of order, a job's
    /// exit would overtake its last epoch (a completed job judged crashed) or its metrics would be dropped.
    /// So an event beyond a gap is naked and comes back until the gap fills — for at most twice ackWait,
    /// after which the missing event is taken as lost (agents send every event; this is a safety net).
    private func mustWait(_ event: TrainingEvent, _ message: JetStreamMessage) -> Bool {
        guard !event.jobID.isEmpty, let sequence = message.metadata?.streamSequence,
              let applied = core.job(event.jobID)?.history.first(where: { $0.attempt == event.attempt })?.sequences
        else { return false }
        let missing = applied.contiguous + 1
        let key = "\(event.jobID)/\(event.attempt)"
        guard event.sequence > missing, !applied.contains(event.sequence), givenUp[key] != missing else {
            heldSince[sequence] = nil
            return false
        }
        let since = heldSince[sequence] ?? ContinuousClock.now
        if ContinuousClock.now - since < .milliseconds(Int(config.ackWaitSeconds * 2000)) {
            heldSince[sequence] = since
            return true
        }
        heldSince[sequence] = nil
        givenUp[key] = missing
        logger.warning("controller.event.gap", metadata: [
            "job.id": "\(event.jobID)", "job.attempt": "\(event.attempt)", "event.sequence": "\(missing)",
            "reason": "this event of the attempt never arrived; applying the later ones without it",
        ])
        return false
    }

    // MARK: Actions

    private func perform(_ actions: [ControllerAction]) async {
        for action in actions {
            metrics.action(action.kindName)
            switch action {
            case .assign(var assignment, let reason):
                if let dataset = core.dataset(assignment.spec.config.dataset), !dataset.location.isEmpty,
                   assignment.spec.env["ARCHON_DATASET_PATH"] == nil {
                    assignment.spec.env["ARCHON_DATASET_PATH"] = dataset.location
                }
                let key = "\(assignment.nodeID).\(assignment.spec.id)"
                let bytes = assignment.encoded()
                await retrying("assign \(key)") { try await self.desiredKV?.put(key, bytes) }
                logger.info("controller.assign", metadata: [
                    "job.id": "\(assignment.spec.id)", "node.id": "\(assignment.nodeID)", "job.attempt": "\(assignment.attempt)",
                    "reason": "\(reason)",
                ])
            case .stop(let jobID, let nodeID, let attempt, let reason):
                let key = "\(nodeID).\(jobID)"
                await retrying("stop \(key)") { try await self.desiredKV?.delete(key) }
                logger.info("controller.stop", metadata: ["job.id": "\(jobID)", "node.id": "\(nodeID)", "job.attempt": "\(attempt)",
                                                          "reason": "\(reason)"])
            case .publishEscalation(let escalation, let reason):
                let subject = "archon.v1.escalations.\(escalation.incident.level.rawValue)"
                let id = "\(escalation.incident.id).\(escalation.kind.rawValue).\(escalation.incident.level.rawValue).\(escalation.timeMs)"
                await retrying("publish \(subject)") { _ = try await self.jetStream?.publish(subject, escalation.encoded(), messageID: id) }
                sinks.deliver(escalation)
                logger.notice("controller.escalation", metadata: [
                    "incident.id": "\(escalation.incident.id)", "incident.kind": "\(escalation.kind.rawValue)",
                    "incident.level": "\(escalation.incident.level.rawValue)", "reason": "\(reason)",
                ])
            case .scheduleTimer(let id, let atMs):
                timers[id] = atMs
            case .cancelTimer(let id):
                timers[id] = nil
            case .cordon, .uncordon, .pauseRetries, .resumeRetries, .freezeRemediation, .unfreezeRemediation, .rejectJob:
                // State changes the core already holds; the shell only reports them.
                logger.notice("controller.action", metadata: ["action": "\(action.kindName)", "reason": "\(action.reason.map { "\($0)" } ?? "")"])
            }
        }
    }

    private func retrying(_ what: String, _ body: @Sendable () async throws -> Void) async {
        var delay = Duration.milliseconds(100)
        for attempt in 1...5 {
            do {
                try await body()
                return
            } catch {
                logger.warning("controller.perform.failed", metadata: ["action": "\(what)", "attempt": "\(attempt)", "error": "\(error)"])
                try? await Task.sleep(for: delay)
                delay *= 2
            }
        }
        // Still in the persisted pending actions: performed again when leadership is next acquired.
        logger.error("controller.perform.gave_up", metadata: ["action": "\(what)"])
    }

    // MARK: Timers

    private func timerLoop() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(100))
            guard isLeader else { continue }
            let t = now()
            let due = timers.filter { $0.value <= t }.map(\.key).sorted()
            guard !due.isEmpty else { continue }
            await serialized {
                var actions: [ControllerAction] = []
                for id in due {
                    timers[id] = nil
                    actions += core.timerFired(id, at: now())
                }
                await commit(actions)
            }
        }
    }

    // MARK: Logs

    /// The last lines of a job's output, asked of the agent of the node it runs (or ran) on.
    public func logs(jobID: String, tail: Int) async throws -> LogReply {
        guard let job = core.job(jobID) else { throw OperatorError(.unknownJob, "job '\(jobID)' not found") }
        guard let node = job.current?.nodeID ?? (job.nodeID.isEmpty ? nil : job.nodeID), let connection else {
            return LogReply(error: "job '\(jobID)' has not run on any node yet")
        }
        let reply = try await connection.request(Fleet.logsSubject(node: node), LogRequest(jobID: jobID, tail: tail).encoded(),
                                                 timeout: .seconds(3))
        return try LogReply.decode(reply.payload)
    }
}

extension ControllerAction {
    /// A short name for metrics and logs.
    var kindName: String {
        switch self {
        case .assign: "assign"
        case .stop: "stop"
        case .cordon: "cordon"
        case .uncordon: "uncordon"
        case .pauseRetries: "pause_retries"
        case .resumeRetries: "resume_retries"
        case .freezeRemediation: "freeze_remediation"
        case .unfreezeRemediation: "unfreeze_remediation"
        case .publishEscalation: "escalation"
        case .rejectJob: "reject_job"
        case .scheduleTimer: "schedule_timer"
        case .cancelTimer: "cancel_timer"
        }
    }
}

extension JSONDecoder {
    /// Reads what ``JSONEncoder/archon`` writes, NaN and infinities included.
    static var archon: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        return decoder
    }
}

extension Duration {
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
