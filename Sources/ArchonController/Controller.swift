public import ArchonCore
public import ArchonModel
import ArchonNATS
import ArchonWire
import Foundation
public import Logging
public import ServiceLifecycle

/// The controller: turns the pure core into a running service.
///
/// It consumes `archon.v1.events.>` from the stream `ARCHON_EVENTS` with a durable pull consumer, feeds each
/// batch to the ``FleetController``, stores what the batch changed (with the actions that must survive a crash)
/// through the ``StateStore``, performs the actions (assignments in KV `archon_desired`, escalations on
/// `archon.v1.escalations.<level>` and to the sinks, timers), and only then acknowledges the batch. A crash
/// anywhere loses no event and applies none twice: unacknowledged events come back, and the core ignores
/// (job, attempt, sequence) it has seen. When the state cannot be stored, nothing is acknowledged, the controller
/// goes back to what is stored, and a leader that cannot store for longer than its lease steps down.
///
/// Only the leader (see ``LeaderElection``) consumes and acts; a standby serves reads from the stored state.
public actor Controller: Service {
    public let config: ControllerConfig
    let policy: Policy
    nonisolated let logger: Logger
    let metrics = ControllerMetrics()
    let sinks: EscalationSinks
    public nonisolated let now: @Sendable () -> Int64

    private(set) var core: FleetController
    private(set) public var role: LeaderElection.Role = .standby(leader: nil)
    /// Unix ms when `role` last changed (0 until the election first decides).
    private(set) public var roleSinceMs: Int64 = 0
    private var timers = TimerQueue()
    private var connection: NATSConnection?
    private var jetStream: JetStream?
    private var desiredKV: KeyValue?
    /// Signs every assignment written to `archon_desired`; nil = unsigned (see ``assignmentsSigned``).
    private let signer: AssignmentSigner?
    /// Checks what reconciliation reads back against our own key.
    private let assignmentCheck: AssignmentVerifier
    /// Whether assignments are signed (else `/readyz` says so).
    public nonisolated var assignmentsSigned: Bool { signer != nil }
    private var store: StateStore?
    private var election: LeaderElection?
    private var consumerTask: Task<Void, Never>?
    /// Inputs are applied one at a time across suspension points (store, perform): FIFO.
    private var busy = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    /// Actions decided and stored but not yet performed (escalations, archive writes), by outbox key, and when
    /// each may be tried next. They survive a crash in the store until performed.
    private var outbox: [String: (action: ControllerAction, retryAt: ContinuousClock.Instant, tries: Int)] = [:]
    private var outboxCounter: UInt64 = 0
    /// Outbox entries performed, to be deleted from the store with the next batch.
    private var performedOutbox: [String] = []
    /// Why the state cannot be stored now, and since when; nil when it can.
    private(set) public var stateProblem: String?
    private var stateFailingSince: ContinuousClock.Instant?
    /// The leader has read the event backlog since it took over or NATS came back: until then no timer fires
    /// (silence during an outage is the controller's, not the fleet's).
    private(set) public var caughtUp = false
    /// A desired-state write failed: reconcile soon instead of at the next period.
    private var reconcileSoon = false

    /// Unix milliseconds now.
    public static let wallClockMillis: @Sendable () -> Int64 = { UnixTime.nowMillis() }
    public static let durableName = "archon-controller"

    public init(config: ControllerConfig, logger: Logger, now: @escaping @Sendable () -> Int64 = Controller.wallClockMillis) throws {
        var logger = logger
        logger[metadataKey: "controller.id"] = "\(config.id)"
        if let file = config.assignmentSigningKeyFile {
            do {
                signer = try AssignmentSigner(keyFile: file)
            } catch {
                throw ConfigError(description: "assignmentSigningKeyFile: \(error)")
            }
        } else {
            signer = nil
            logger.warning("controller.assignments.unsigned", metadata: [
                "reason": "no assignmentSigningKeyFile configured: assignments are written unsigned, and every agent holding an assignment public key refuses them",
            ])
        }
        assignmentCheck = signer?.verifier ?? .insecureAcceptAnything
        self.config = config
        self.policy = try config.loadPolicy()
        self.logger = logger
        self.now = now
        self.sinks = EscalationSinks(config.sinks, logger: logger)
        self.core = FleetController(policy: policy)
    }

    // MARK: Service

    /// The streams and buckets the fleet uses, created where missing (only the controller's identity may);
    /// returns the leadership bucket.
    private func setUpStreams(_ connection: NATSConnection) async throws -> KeyValue {
        let js = try connection.jetStream()
        try await Fleet.ensureStreams(js, replicas: config.replicas)
        let desired = try await js.keyValue(KeyValueConfig(bucket: Fleet.desiredBucket, replicas: config.replicas))
        let store = try await StateStore.open(js, replicas: config.replicas, writer: config.id,
                                              flushInterval: .milliseconds(Int(config.stateFlushSeconds * 1000)), logger: logger, metrics: metrics)
        let leaderKV = try await js.keyValue(KeyValueConfig(bucket: Fleet.leaderBucket, replicas: config.replicas))
        jetStream = js
        desiredKV = desired
        self.store = store
        return leaderKV
    }

    public func run() async throws {
        let connection = try await NATSConnection.connect(
            { var o = try config.natsOptions(); o.retryOnFailedConnect = true; return o }(), logger: logger)
        self.connection = connection
        // NATS may not be there yet, or JetStream not answering (a server starting, a cluster electing its meta
        // leader, a configuration reload): wait for it, saying so, rather than exit.
        var delay = Duration.milliseconds(100)
        let leaderKV: KeyValue
        while true {
            do {
                leaderKV = try await setUpStreams(connection)
                break
            } catch {
                logger.warning("controller.start.waiting_for_nats", metadata: ["error": "\(error)", "retry_in": "\(delay)"])
                let pause = delay
                do {
                    try await cancelWhenGracefulShutdown { try await Task.sleep(for: pause) }
                } catch {
                    connection.close()
                    return
                }
                delay = min(delay * 2, .seconds(5))
            }
        }
        let election = LeaderElection(kv: leaderKV, id: config.id, leaseTime: .milliseconds(Int(config.leaseSeconds * 1000)), logger: logger)
        self.election = election
        let roles = await election.changes()

        // Each task returns whether it is the shutdown signal; the others run until cancelled
        // (some, like the sinks with none configured, end at once).
        await withTaskGroup(of: Bool.self) { group in
            group.addTask { await election.run(); return false }
            group.addTask { await self.sinks.run(); return false }
            group.addTask {
                for await role in roles { await self.roleChanged(role) }
                return false
            }
            group.addTask {
                for await event in connection.events { await self.connectionChanged(event) }
                return false
            }
            group.addTask { await self.timerLoop(); return false }
            group.addTask { await self.reconcileLoop(); return false }
            group.addTask { await self.standbyRefreshLoop(); return false }
            group.addTask {
                try? await gracefulShutdown()
                await self.shutdownFlush()
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
        metrics.leader.record(isLeader ? 1 : 0)
        switch newRole {
        case .leader(let epoch):
            await serialized { await takeOver(epoch: epoch) }
            startConsumer()
        case .standby:
            consumerTask?.cancel()
            consumerTask = nil
            timers.removeAll()
            heldSince.removeAll()
            givenUp.removeAll()
            caughtUp = false
        }
    }

    /// Reads the stored state, takes the fencing epoch, repairs the desired state. Timers wait for the backlog.
    /// Called under `serialized`.
    private func takeOver(epoch: UInt64) async {
        caughtUp = false
        guard await reload() else { return }  // the consumer loop retries while stateProblem is set
        timers.removeAll()
        var actions = core.leadershipAcquired(fencingEpoch: epoch, at: now())
        for dataset in config.datasets where core.dataset(dataset.id)?.dataset != dataset {
            actions += core.datasetRegistered(dataset, at: now())
        }
        try? await commit(actions)
        reconcileSoon = true
    }

    /// Replaces the core and the outbox with what is stored. False (and `stateProblem` set) when it cannot be read.
    @discardableResult
    private func reload() async -> Bool {
        guard let store else { return false }
        let started = ContinuousClock.now
        do {
            let loaded = try await store.load()
            core = FleetController(policy: policy, entities: loaded.entities, at: now())
            outbox = loaded.outbox.mapValues { ($0, ContinuousClock.now, 0) }
            // outboxCounter goes on: a key of the loaded outbox must never be reused.
            performedOutbox = []
            let seconds = Double((ContinuousClock.now - started).nanoseconds) / 1e9
            metrics.stateLoadSeconds.record(seconds)
            logger.info("controller.state.loaded", metadata: [
                "state.entities": "\(loaded.entities.count)", "state.journal_records": "\(loaded.journalRecords)",
                "state.bytes": "\(loaded.bytes)", "state.outbox": "\(loaded.outbox.count)", "duration_s": "\(seconds)",
            ])
            return true
        } catch {
            stateFailed(error, during: "load")
            return false
        }
    }

    /// A standby keeps its read model fresh for the API; the bigger the state, the less often it reloads.
    private func standbyRefreshLoop() async {
        var pause = Duration.seconds(1)
        while !Task.isCancelled {
            try? await Task.sleep(for: pause)
            guard !isLeader, let store else { continue }
            let started = ContinuousClock.now
            guard let loaded = try? await store.load(forWriting: false) else { continue }
            // Leadership may have come while loading: the leader's state must not be replaced.
            if isLeader { continue }
            core = FleetController(policy: policy, entities: loaded.entities, at: now())
            pause = max(.seconds(1), (ContinuousClock.now - started) * 5)
        }
    }

    private func connectionChanged(_ event: NATSConnectionEvent) {
        switch event {
        case .disconnected:
            // Nothing arrives while NATS is away: the silence that follows is ours, not the nodes'.
            caughtUp = false
            logger.warning("controller.nats.disconnected")
        case .reconnected(let url):
            caughtUp = false
            logger.info("controller.nats.reconnected", metadata: ["nats.url": "\(url)"])
        case .closed, .error:
            break
        }
    }

    /// At a clean stop, everything journaled reaches KV (the next start reads little journal).
    private func shutdownFlush() async {
        guard isLeader, let store else { return }
        await serialized { await store.flush() }
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

    /// The state cannot be stored now: the change was not made.
    public struct StateUnavailable: Error, CustomStringConvertible {
        public let problem: String
        public var description: String { "the controller cannot store its state right now (\(problem)); nothing was changed, try again" }
    }

    /// Applies an operator input to the core, stores and performs what it decided. Standbys refuse; when the
    /// state cannot be stored, nothing is changed and ``StateUnavailable`` is thrown.
    @discardableResult
    public func apply(_ input: @Sendable (inout FleetController, Int64) throws -> [ControllerAction]) async throws -> [ControllerAction] {
        guard isLeader else {
            if case .standby(let leader) = role { throw NotLeader(leader: leader) }
            throw NotLeader(leader: nil)
        }
        return try await serialized {
            if let stateProblem { throw StateUnavailable(problem: stateProblem) }
            let actions = try input(&core, now())
            do {
                try await commit(actions)
            } catch {
                throw StateUnavailable(problem: "\(error)")
            }
            return actions
        }
    }

    /// Read access to the core's state.
    public func read<T: Sendable>(_ body: @Sendable (FleetController) -> T) -> T { body(core) }

    /// A job from the hot state, else from the archive.
    public func job(_ id: String) async -> JobRecord? {
        if let job = core.job(id) { return job }
        return try? await store?.archivedJob(id)
    }

    /// An incident from the hot state, else from the archive.
    public func incident(_ id: String) async -> Incident? {
        if let incident = core.incident(id) { return incident }
        return try? await store?.archivedIncident(id)
    }

    /// Stores what the inputs changed with the actions that must survive a crash, then performs the actions.
    /// Throws when the state could not be stored: then nothing may be acknowledged or answered, and the core
    /// is ahead of what is stored until ``reload()``. Called under `serialized`.
    private func commit(_ actions: [ControllerAction]) async throws {
        guard let store else { return }
        var durable: [(String, ControllerAction?)] = performedOutbox.map { ($0, nil) }
        var added: [(String, ControllerAction)] = []
        for action in actions where action.outlivesCrash {
            outboxCounter += 1
            let key = "\(StateStore.outboxPrefix)\(config.id.filter { $0.isLetter || $0.isNumber })-\(roleSinceMs)-\(String(format: "%012llu", outboxCounter))"
            durable.append((key, action))
            added.append((key, action))
        }
        let changes = core.takeChanges().map { ($0, core.stored($0)) }
        do {
            try await store.commit(changes, outbox: durable)
        } catch {
            stateFailed(error, during: "commit")
            throw error
        }
        if stateProblem != nil {
            logger.notice("controller.state.recovered")
            stateProblem = nil
            stateFailingSince = nil
            metrics.stateUnavailable.record(0)
        }
        // Only what this record deleted: the outbox performer may have added more meanwhile.
        performedOutbox.removeFirst(min(performedOutbox.count, durable.count - added.count))
        for (key, action) in added { outbox[key] = (action, ContinuousClock.now, 0) }
        await perform(actions.filter { !$0.outlivesCrash })
        if actions.contains(where: { if case .publishEscalation = $0 { true } else { false } }) {
            metrics.openIncidents(core.openIncidentsByLevel)
        }
    }

    /// The store refused a write or a read: nothing more is acknowledged until it works again.
    private func stateFailed(_ error: any Error, during what: String) {
        metrics.stateWriteFailures.increment()
        metrics.stateUnavailable.record(1)
        if stateProblem == nil { stateFailingSince = ContinuousClock.now }
        stateProblem = "\(what): \(error)"
        logger.error("controller.state.unavailable", metadata: [
            "error": "\(error)", "reason": "state not stored: events are not acknowledged and writes answer 503 until it is",
        ])
    }

    /// After a failed store: back to what is stored, then on as a fresh leader. A leader that cannot store for
    /// longer than its lease steps down, so that a controller that can takes over.
    private func recover() async {
        guard case .leader(let epoch) = role else { return }
        let recovered = await serialized { () -> Bool in
            guard stateProblem != nil else { return true }
            await takeOver(epoch: epoch)
            return stateProblem == nil
        }
        if recovered { return }
        if let since = stateFailingSince, ContinuousClock.now - since > .milliseconds(Int(config.leaseSeconds * 1000)) {
            logger.error("controller.state.step_down", metadata: ["reason": "state not stored for longer than the lease; another controller may"])
            stateFailingSince = ContinuousClock.now
            await election?.resign()
        }
    }

    // MARK: Events

    private func startConsumer() {
        consumerTask?.cancel()
        consumerTask = Task { await self.consumeLoop() }
    }

    /// Fetch, then handle; while a batch is decided, stored and acknowledged the next one is already being fetched,
    /// so that the server's round trip overlaps the work (JetStream delivers in order either way). A fetched batch is
    /// handled next or handed back at once — never kept while the state is recovered or leadership is lost: kept,
    /// its events would outlive their ackWait, come back to another fetch behind later ones, and wait out the gap
    /// hold (`make chaos`, seed 4, found a fetch kept through a recovery).
    private func consumeLoop() async {
        guard let js = jetStream else { return }
        var consumer: PullConsumer?
        var next: Task<[JetStreamMessage], any Error>?
        let fetchBatch = config.fetchBatch
        func fetch(_ consumer: PullConsumer) -> Task<[JetStreamMessage], any Error> {
            Task { try await consumer.fetch(batch: fetchBatch, timeout: .milliseconds(500)) }
        }
        var backoff = Duration.milliseconds(250)
        while !Task.isCancelled, isLeader {
            if stateProblem != nil {
                await handBack(&next)
                await recover()
                if stateProblem != nil {
                    try? await Task.sleep(for: backoff)
                    backoff = min(backoff * 2, .seconds(5))
                    continue
                }
                backoff = .milliseconds(250)
            }
            do {
                if consumer == nil {
                    consumer = try await js.pullConsumer(
                        stream: Fleet.eventsStream, durable: Self.durableName, filterSubject: Fleet.eventsSubjects,
                        ackWait: .milliseconds(Int(config.ackWaitSeconds * 1000)))
                }
                let fetching = next ?? fetch(consumer!)
                next = nil
                let batch = try await fetching.value
                if batch.isEmpty {
                    if !caughtUp { await backlogRead() }
                    continue
                }
                guard !Task.isCancelled, isLeader, stateProblem == nil else {
                    handBack(batch)
                    continue
                }
                next = fetch(consumer!)
                await serialized { await handle(batch) }
                if !caughtUp, stateProblem == nil, batch.last?.metadata?.pending == 0 { await backlogRead() }
            } catch {
                logger.warning("controller.consume.failed", metadata: ["error": "\(error)"])
                await handBack(&next)
                consumer = nil
                try? await Task.sleep(for: .seconds(1))
            }
        }
        await handBack(&next)
    }

    /// A batch fetched ahead and not to be handled now goes back to the server, due again in a second; so does a
    /// batch that could not be stored.
    private func handBack(_ fetching: inout Task<[JetStreamMessage], any Error>?) async {
        guard let task = fetching else { return }
        fetching = nil
        handBack((try? await task.value) ?? [])
    }

    private func handBack(_ batch: [JetStreamMessage]) {
        for message in batch {
            do { try message.nak(delay: .seconds(1)) } catch { logger.warning("controller.nak.failed", metadata: ["error": "\(error)"]) }
        }
    }

    /// The backlog is read: the fleet gets fresh silence windows, then timers run again.
    private func backlogRead() async {
        await serialized {
            guard !caughtUp, isLeader, stateProblem == nil, natsConnected else { return }
            do {
                try await commit(core.fleetHeardAgain(at: now()))
                caughtUp = true
                logger.info("controller.backlog.read", metadata: ["reason": "every node was granted a fresh silence window; timers run again"])
            } catch {}
        }
    }

    /// Decode, check, decide, store, perform, then acknowledge: in that order.
    private func handle(_ batch: [JetStreamMessage]) async {
        let started = ContinuousClock.now
        var actions: [ControllerAction] = []
        var rejected: [JetStreamMessage] = []
        var accepted: [JetStreamMessage] = []
        var held: [JetStreamMessage] = []
        for message in batch {
            guard let (subjectNode, subjectJob) = Fleet.eventsSubjectTokens(message.subject) else {
                logger.error("controller.event.bad_subject", metadata: ["nats.subject": "\(message.subject)"])
                rejected.append(message)
                continue
            }
            var event: TrainingEvent
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
                let detail = "an event on \(message.subject) claims node '\(event.nodeID)' and job '\(event.jobID)'; rejected, not applied"
                logger.error("controller.event.spoofed", metadata: [
                    "nats.subject": "\(message.subject)", "event.node": "\(event.nodeID)", "event.job": "\(event.jobID)",
                ])
                // Never applied: the core only hears of the security concern. Never redelivered.
                actions += core.securityViolationReported(nodeID: subjectNode, detail: detail, at: now())
                rejected.append(message)
                continue
            }
            let (clean, problems) = EventSanitizer.sanitize(event, at: now())
            if !problems.isEmpty {
                metrics.sanitizedEvents.increment()
                logger.warning("controller.event.sanitized", metadata: [
                    "nats.subject": "\(message.subject)", "job.id": "\(event.jobID)", "problems": "\(problems.joined(separator: "; "))",
                ])
                event = clean
            }
            if mustWait(event, message) {
                held.append(message)
                continue
            }
            if let deliveries = message.metadata?.deliveries, deliveries > UInt64(max(1, config.maxDeliveries)) {
                metrics.deliveryLimitReached.increment()
                logger.error("controller.event.delivery_limit", metadata: [
                    "nats.subject": "\(message.subject)", "deliveries": "\(deliveries)",
                    "reason": "delivered \(deliveries) times without being applied; terminated so that it cannot stop the controller",
                ])
                rejected.append(message)
                continue
            }
            metrics.eventsConsumed.increment()
            if let problem = core.authenticityProblem(of: event, subjectNode: subjectNode) {
                metrics.rejectedEvent(reason: problem.reason)
                logger.error("controller.event.not_believed", metadata: ["nats.subject": "\(message.subject)", "reason": "\(problem.evidence)"])
            }
            if case .securityAlert(let alert) = event.body {
                metrics.securityAlert(kind: alert.kind.rawValue)
                logger.error("controller.security.alert", metadata: [
                    "node.id": "\(subjectNode)", "alert.kind": "\(alert.kind.rawValue)", "alert.subject": "\(alert.subject)", "alert.detail": "\(alert.detail)",
                ])
            }
            actions += core.eventReceived(event, subjectNode: subjectNode, at: now())
            accepted.append(message)
        }
        do {
            try await commit(actions)
        } catch {
            // Nothing of this batch is stored: all of it comes back once the state can be stored again.
            handBack(batch)
            return
        }
        for message in accepted {
            do { try message.ack() } catch { logger.warning("controller.ack.failed", metadata: ["error": "\(error)"]) }
        }
        let holdDelay = Duration.milliseconds(max(250, Int(config.ackWaitSeconds * 250)))
        for message in held {
            do { try message.nak(delay: holdDelay) } catch { logger.warning("controller.nak.failed", metadata: ["error": "\(error)"]) }
        }
        for message in rejected {
            do { try message.term() } catch { logger.warning("controller.term.failed", metadata: ["error": "\(error)"]) }
        }
        if let lag = batch.last?.metadata?.pending { metrics.consumerLag.record(Int64(clamping: lag)) }
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
              let applied = core.job(event.jobID)?.history.last(where: { $0.attempt == event.attempt })?.sequences
        else { return false }
        let missing = applied.contiguous.addingSaturated(1)
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

    /// Performs what needs no outbox: desired-state writes (reconciliation repairs any that fail) and timers.
    private func perform(_ actions: [ControllerAction]) async {
        var writes: [DesiredWrite] = []
        for action in actions {
            metrics.action(action.kindName)
            switch action {
            case .assign(var assignment, let reason):
                if let dataset = core.dataset(assignment.spec.config.dataset), !dataset.location.isEmpty,
                   assignment.spec.env["ARCHON_DATASET_PATH"] == nil {
                    assignment.spec.env["ARCHON_DATASET_PATH"] = dataset.location
                }
                let key = "\(assignment.nodeID).\(assignment.spec.id)"
                writes.append(DesiredWrite(key: key, value: sealed(assignment), what: "assign \(key)"))
                logger.info("controller.assign", metadata: [
                    "job.id": "\(assignment.spec.id)", "node.id": "\(assignment.nodeID)", "job.attempt": "\(assignment.attempt)",
                    "reason": "\(reason)",
                ])
            case .stopGracefully(let assignment, let reason):
                // The stopped assignment stays until the attempt has exited: the agent reads the grace from it.
                let key = "\(assignment.nodeID).\(assignment.spec.id)"
                writes.append(DesiredWrite(key: key, value: sealed(assignment), what: "stop gracefully \(key)"))
                logger.info("controller.stop_gracefully", metadata: [
                    "job.id": "\(assignment.spec.id)", "node.id": "\(assignment.nodeID)", "job.attempt": "\(assignment.attempt)",
                    "job.stop_grace_s": "\(assignment.stopGraceSeconds)", "reason": "\(reason)",
                ])
            case .stop(let jobID, let nodeID, let attempt, let reason):
                let key = "\(nodeID).\(jobID)"
                writes.append(DesiredWrite(key: key, value: nil, what: "stop \(key)"))
                logger.info("controller.stop", metadata: ["job.id": "\(jobID)", "node.id": "\(nodeID)", "job.attempt": "\(attempt)",
                                                          "reason": "\(reason)"])
            case .scheduleTimer(let id, let atMs):
                timers.schedule(id, at: atMs)
            case .cancelTimer(let id):
                timers.cancel(id)
            case .publishEscalation, .archive:
                break  // through the outbox
            case .measure(let measure):
                metrics.runbook(measure)
            case .cordon, .uncordon, .pauseRetries, .resumeRetries, .freezeRemediation, .unfreezeRemediation, .rejectJob:
                // State changes the core already holds; the shell only reports them.
                logger.notice("controller.action", metadata: ["action": "\(action.kindName)", "reason": "\(action.reason.map { "\($0)" } ?? "")"])
            }
        }
        await write(writes)
    }

    /// A put (or, without a value, a delete) of one `archon_desired` key.
    private struct DesiredWrite: Sendable {
        var key: String
        var value: [UInt8]?
        var what: String
    }

    /// Writes in order; writes of distinct keys — a reconciliation's repairs, a node's jobs moved at once — go out
    /// together, up to 64 in flight, instead of one round trip after the other (a new leader repairing 80,000
    /// assignments one by one held its event handling for a minute).
    private func write(_ writes: [DesiredWrite]) async {
        guard writes.count > 1, Set(writes.lazy.map(\.key)).count == writes.count else {
            for write in writes { await writeDesired(write) }
            return
        }
        await withTaskGroup(of: Void.self) { group in
            for (i, write) in writes.enumerated() {
                if i >= 64 { await group.next() }
                group.addTask { await self.writeDesired(write) }
            }
        }
    }

    private func writeDesired(_ write: DesiredWrite) async {
        let kv = desiredKV
        await retrying(write.what) {
            if let value = write.value { try await kv?.put(write.key, value) } else { try await kv?.delete(write.key) }
        }
    }

    /// Performs the outbox entries that are due, oldest first; a failed one waits (backing off) and blocks nothing.
    /// Runs in the timer loop, outside `serialized`: a slow escalation stream never holds up event handling.
    private func performOutbox() async {
        let due = outbox.filter { $0.value.retryAt <= ContinuousClock.now }.keys.sorted()
        for key in due {
            guard let entry = outbox[key] else { continue }
            do {
                switch entry.action {
                case .publishEscalation(let escalation, let reason):
                    let subject = "archon.v1.escalations.\(escalation.incident.level.rawValue)"
                    let id = "\(escalation.incident.id).\(escalation.kind.rawValue).\(escalation.incident.level.rawValue).\(escalation.timeMs)"
                    guard let jetStream else { return }
                    _ = try await jetStream.publish(subject, escalation.encoded(), messageID: id)
                    sinks.deliver(escalation)
                    logger.notice("controller.escalation", metadata: [
                        "incident.id": "\(escalation.incident.id)", "incident.kind": "\(escalation.kind.rawValue)",
                        "incident.level": "\(escalation.incident.level.rawValue)", "reason": "\(reason)",
                    ])
                case .archive(let record):
                    try await store?.archive(record)
                case .assign, .stop, .stopGracefully, .cordon, .uncordon, .pauseRetries, .resumeRetries, .freezeRemediation,
                     .unfreezeRemediation, .rejectJob, .scheduleTimer, .cancelTimer, .measure:
                    break
                }
                metrics.action(entry.action.kindName)
                outbox[key] = nil
                performedOutbox.append(key)
            } catch {
                metrics.actionFailures.increment()
                let tries = entry.tries + 1
                let wait = Duration.milliseconds(min(30_000, 100 << min(tries, 9)))
                outbox[key] = (entry.action, ContinuousClock.now + wait, tries)
                logger.warning("controller.perform.failed", metadata: [
                    "action": "\(entry.action.kindName)", "attempt": "\(tries)", "error": "\(error)",
                    "reason": "kept in the stored outbox; tried again in \(wait)",
                ])
            }
        }
    }

    private func retrying(_ what: String, _ body: @Sendable () async throws -> Void) async {
        var delay = Duration.milliseconds(50)
        for attempt in 1...3 {
            do {
                try await body()
                return
            } catch {
                logger.warning("controller.perform.failed", metadata: ["action": "\(what)", "attempt": "\(attempt)", "error": "\(error)"])
                if attempt < 3 { try? await Task.sleep(for: delay) }
                delay *= 2
            }
        }
        // The core's state still says what the desired state must hold: reconciliation writes it.
        metrics.actionFailures.increment()
        reconcileSoon = true
        logger.error("controller.perform.deferred", metadata: ["action": "\(what)", "reason": "left to reconciliation"])
    }

    // MARK: Reconciliation

    /// Compares `archon_desired` with the core at takeover, after a failed write, and every `reconcileSeconds`.
    private func reconcileLoop() async {
        var last = ContinuousClock.now
        var pause = Duration.seconds(1)
        while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(200))
            guard isLeader, stateProblem == nil else { continue }
            let periodic = ContinuousClock.now - last >= .milliseconds(Int(config.reconcileSeconds * 1000))
            guard reconcileSoon && ContinuousClock.now - last >= pause || periodic else { continue }
            last = ContinuousClock.now
            if await reconcileDesired() {
                pause = .seconds(1)
            } else {
                pause = min(pause * 2, .seconds(30))
            }
        }
    }

    /// The value written for an assignment: signed when a key is configured.
    private func sealed(_ assignment: JobAssignment) -> [UInt8] {
        guard let signer else { return SignedAssignment(unsigned: assignment).encoded() }
        do {
            return try signer.sign(assignment).encoded()
        } catch {
            // Ed25519 signing does not fail for a valid key; if it did, agents would refuse the unsigned value.
            logger.error("controller.assignments.sign_failed", metadata: ["job.id": "\(assignment.spec.id)", "error": "\(error)"])
            return SignedAssignment(unsigned: assignment).encoded()
        }
    }

    /// One pass of reconciliation; false when `archon_desired` could not be read or written.
    @discardableResult
    func reconcileDesired() async -> Bool {
        guard let desiredKV else { return false }
        reconcileSoon = false
        var present: [DesiredEntry] = []
        do {
            let watch = try await desiredKV.watch(">")
            for await event in watch {
                guard case .entry(let entry) = event else { break }
                guard entry.operation == .put, let dot = entry.key.firstIndex(of: ".") else { continue }
                let node = String(entry.key[..<dot]), job = String(entry.key[entry.key.index(after: dot)...])
                // A value this controller could not have written (bad signature) counts as unreadable: repaired.
                let assignment = try? assignmentCheck.open(entry.value)
                let readable = assignment.map { $0.spec.id == job && $0.nodeID == node } ?? false
                present.append(DesiredEntry(nodeID: node, jobID: job, attempt: readable ? assignment?.attempt : nil))
            }
            watch.stop()
        } catch {
            logger.warning("controller.reconcile.read_failed", metadata: ["error": "\(error)"])
            reconcileSoon = true
            return false
        }
        await serialized {
            guard isLeader else { return }
            let repairs = core.reconcileDesired(present)
            guard !repairs.isEmpty else { return }
            metrics.reconcileRepairs.increment(by: repairs.count)
            for repair in repairs {
                logger.notice("controller.reconcile.repair", metadata: ["action": "\(repair)"])
            }
            await perform(repairs)
        }
        return !reconcileSoon
    }

    // MARK: Timers

    private func timerLoop() async {
        var idleFlush = ContinuousClock.now
        while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(100))
            guard isLeader, stateProblem == nil else { continue }
            if !outbox.isEmpty { await performOutbox() }
            guard caughtUp else { continue }
            let due = timers.popDue(atMs: now())
            // Performed outbox entries are deleted with the next batch, or after a quiet half second.
            guard !due.isEmpty || (!performedOutbox.isEmpty && ContinuousClock.now - idleFlush > .milliseconds(500)) else { continue }
            idleFlush = ContinuousClock.now
            await serialized {
                guard isLeader, stateProblem == nil else { return }
                var actions: [ControllerAction] = []
                for id in due { actions += core.timerFired(id, at: now()) }
                try? await commit(actions)
            }
        }
    }

    // MARK: Dashboard

    /// One-time codes of dashboard login links (`archon dev` prints one).
    public nonisolated let dashboardLogins = DashboardLogins()
    /// The fleet view the dashboard's pages share.
    nonisolated let dashboardFleet = DashboardFleetCache()

    /// A job's events as `ARCHON_EVENTS` holds them, history first, then as they arrive.
    func jobEvents(_ jobID: String) async throws -> StreamReplay {
        guard let connection else { throw NATSError(code: .connectionClosed, message: "not connected to NATS yet") }
        return try await connection.jetStream().replay(stream: Fleet.eventsStream, filter: Fleet.eventsSubject(node: "*", job: jobID))
    }

    // MARK: Logs

    /// The last lines of a job's output, asked of the agent of the node it runs (or ran) on.
    public func logs(jobID: String, tail: Int) async throws -> LogReply {
        guard let job = await job(jobID) else { throw OperatorError(.unknownJob, "job '\(jobID)' not found") }
        guard let node = job.current?.nodeID ?? (job.nodeID.isEmpty ? nil : job.nodeID), let connection else {
            return LogReply(error: "job '\(jobID)' has not run on any node yet")
        }
        let reply = try await connection.request(Fleet.logsSubject(node: node), LogRequest(jobID: jobID, tail: tail).encoded(),
                                                 timeout: .seconds(3))
        return try LogReply.decode(reply.payload)
    }
}

extension ControllerAction {
    /// Escalations and archive writes are stored with the batch that decided them and performed until they
    /// succeed; desired-state writes need not be (the state says what they must be), nor timers.
    var outlivesCrash: Bool {
        switch self {
        case .publishEscalation, .archive: true
        case .assign, .stop, .stopGracefully, .cordon, .uncordon, .pauseRetries, .resumeRetries, .freezeRemediation,
             .unfreezeRemediation, .rejectJob, .scheduleTimer, .cancelTimer, .measure:
            false
        }
    }
}

extension ControllerAction {
    /// A short name for metrics and logs.
    var kindName: String {
        switch self {
        case .assign: "assign"
        case .stop: "stop"
        case .stopGracefully: "stop_gracefully"
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
        case .archive: "archive"
        case .measure: "measure"
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
