public import ArchonModel

/// The decision core: events and `now` go in, ``ControllerAction``s come out.
///
/// Pure and deterministic: no I/O, no clock, no timers of its own. Time is Unix milliseconds. Each input is a
/// `mutating func` named after what happened; the shell performs the returned actions in order and persists
/// what ``takeChanges()`` names (``stored(_:)`` gives each entity's value). After a restart, build the controller
/// from the stored entities, call ``leadershipAcquired(fencingEpoch:at:)``, which re-arms every timer, and once the
/// event backlog is read, ``fleetHeardAgain(at:)``.
///
/// Fencing: the shell passes the leader lease revision to ``leadershipAcquired(fencingEpoch:at:)``; every
/// assignment carries it.
public struct FleetController: Sendable {
    /// Thresholds, ladders, rules and levels in force.
    public let policy: Policy
    /// Everything decided so far; persist it after each input, restore it with ``init(policy:state:)``.
    public internal(set) var state: FleetState

    /// A controller applying `policy`, resuming from `state` (empty for a new fleet).
    public init(policy: Policy = .runbookDefaults, state: FleetState = FleetState()) {
        self.policy = policy
        self.state = state
    }

    /// A controller resuming from stored entities (``stored(_:)`` wrote them, in any order).
    public init(policy: Policy, entities: some Sequence<StoredEntity>, at now: Int64) {
        self.init(policy: policy)
        state = FleetState(entities: entities, keepObservationsSince: now - correlationHorizon)
    }

    var ladder: EscalationLadder {
        EscalationLadder(levels: policy.escalation.levels, groupWaitMs: policy.escalation.groupWait.milliseconds, silences: state.silences)
    }

    // MARK: - Storage

    /// The entities written since the last call: what the shell must store (or delete) for the inputs since.
    public mutating func takeChanges() -> Set<EntityKey> { state.takeChanges() }

    /// The value to store for an entity; nil when it is gone.
    public func stored(_ key: EntityKey) -> StoredEntity? { state.stored(key) }

    // MARK: - Inputs

    /// This controller became leader with lease revision `fencingEpoch`: every pending timer is scheduled
    /// again. Overdue deadlines wait for ``fleetHeardAgain(at:)``, once the shell has read the event backlog:
    /// judged before, every node would look silent.
    public mutating func leadershipAcquired(fencingEpoch: UInt64, at now: Int64) -> [ControllerAction] {
        state.fencingEpoch = fencingEpoch
        return state.deadlines.all.map { ControllerAction.scheduleTimer($0.id, atMs: $0.atMs) }
    }

    /// A job spec was submitted: validated (all problems at once), stored, placed.
    public mutating func jobSubmitted(_ spec: JobSpec, at now: Int64) -> [ControllerAction] {
        var out: [ControllerAction] = []
        submit(spec, at: now, &out)
        return out
    }

    /// An agent event arrived on `archon.v1.events.<subjectNode>.…`. An event whose node id differs from the
    /// subject's (or from the node its attempt was assigned to) is rejected as a security concern.
    /// A redelivered event (same job, attempt, sequence) changes nothing.
    public mutating func eventReceived(_ event: TrainingEvent, subjectNode: String, at now: Int64) -> [ControllerAction] {
        var out: [ControllerAction] = []
        receive(event, subjectNode: subjectNode, at: now, &out)
        return out
    }

    /// A node status arrived outside an event (e.g. read from KV).
    public mutating func nodeStatusReceived(_ status: NodeStatus, at now: Int64) -> [ControllerAction] {
        var out: [ControllerAction] = []
        touchNode(status.nodeID, at: now, &out)
        applyNodeStatus(status, eventTimeMs: now, at: now, &out)
        return out
    }

    /// A timer the core scheduled fired. Early, late or repeated firings are harmless.
    public mutating func timerFired(_ id: TimerID, at now: Int64) -> [ControllerAction] {
        var out: [ControllerAction] = []
        if state.deadlines.take(id, now: now) {
            handleDeadline(id, at: now, &out)
        } else if let due = state.deadlines.due[id] {
            out.append(.scheduleTimer(id, atMs: due))  // fired early: ask again
        }
        return out
    }

    /// Handles every deadline due at `now`: an alternative (or safety net) to individual timers.
    public mutating func tick(at now: Int64) -> [ControllerAction] {
        var out: [ControllerAction] = []
        // Handling a deadline can set another already due (an incident climbing twice after a long outage).
        for _ in 0..<64 {
            let due = state.deadlines.dueIDs(now: now)
            if due.isEmpty { break }
            for id in due where state.deadlines.take(id, now: now) {
                handleDeadline(id, at: now, &out)
            }
        }
        return out
    }

    /// An operator acknowledged an incident: it stops climbing.
    public mutating func incidentAcknowledged(_ id: String, by who: String, at now: Int64) throws(OperatorError) -> [ControllerAction] {
        guard let incident = state.incidents[id] else { throw OperatorError(.unknownIncident, "incident '\(id)' not found") }
        guard incident.status != .resolved else { throw OperatorError(.incidentResolved, "incident '\(id)' is resolved") }
        var out: [ControllerAction] = []
        state.incidents.acknowledge(id, by: who, timeoutMs: policy.escalation.ackTimeout.milliseconds, at: now, deadlines: &state.deadlines, out: &out)
        return out
    }

    /// An operator resolved an incident (and everything attached to it). Resolving a system-resource incident
    /// lifts its freeze and restarts the jobs it held.
    public mutating func incidentResolved(_ id: String, by who: String, rootCause: String, at now: Int64) throws(OperatorError) -> [ControllerAction] {
        guard state.incidents[id] != nil else { throw OperatorError(.unknownIncident, "incident '\(id)' not found") }
        var out: [ControllerAction] = []
        resolveIncident(id, by: who, rootCause: rootCause, at: now, &out)
        return out
    }

    /// Silences in force at once, at most: each page checks them all.
    public static let maxSilences = 1000
    /// The longest a silence may last: a maintenance window, not a way to switch paging off.
    public static let maxSilenceMs: Int64 = 30 * 24 * 3_600_000

    /// An operator silenced the incidents matching `silence` from its start to its end: they are recorded and
    /// listed, but page nobody meanwhile; one still unacknowledged when it ends pages then. Ended silences are
    /// dropped.
    public mutating func silenceAdded(_ silence: Silence, at now: Int64) throws(OperatorError) -> [ControllerAction] {
        func invalid(_ message: String) -> OperatorError { OperatorError(.invalidSilence, message) }
        guard !silence.id.isEmpty, silence.id.utf8.count <= 64 else { throw invalid("silence id must be 1-64 bytes") }
        guard !silence.matchers.isEmpty else { throw invalid("a silence needs at least one matcher: node, job, dataset or cause") }
        guard !silence.reason.isEmpty else { throw invalid("a silence needs a reason (who is working on what)") }
        // Counted in Unicode code points, as the API's schema (JSON Schema's maxLength) counts them.
        guard silence.reason.unicodeScalars.count <= 1024,
              [silence.node, silence.job, silence.dataset, silence.createdBy].allSatisfy({ $0.unicodeScalars.count <= 256 })
        else {
            throw invalid("a silence's reason is at most 1024 characters, each matcher at most 256")
        }
        func refused(_ message: String) -> OperatorError { OperatorError(.silenceRefused, message) }
        guard silence.endsAtMs > silence.startsAtMs, silence.endsAtMs > now else { throw refused("a silence must end after it starts and after now") }
        guard silence.endsAtMs - Swift.max(silence.startsAtMs, now) <= Self.maxSilenceMs else {
            throw refused("a silence lasts at most \(Timestamp.duration(Self.maxSilenceMs))")
        }
        state.silences.removeAll { $0.endsAtMs <= now }
        guard !state.silences.contains(where: { $0.id == silence.id }) else { throw invalid("silence '\(silence.id)' exists") }
        guard state.silences.count < Self.maxSilences else { throw refused("\(Self.maxSilences) silences are in force; expire some first") }
        state.silences.append(silence)
        return []
    }

    /// An operator ended a silence early: the pages it held are sent now (unless another silence holds them).
    public mutating func silenceExpired(_ id: String, at now: Int64) throws(OperatorError) -> [ControllerAction] {
        guard let index = state.silences.firstIndex(where: { $0.id == id && $0.endsAtMs > now }) else {
            throw OperatorError(.unknownSilence, "silence '\(id)' not found or already ended")
        }
        state.silences[index].endsAtMs = Swift.max(now, state.silences[index].startsAtMs)
        var out: [ControllerAction] = []
        for incident in state.incidents.heldBy(id) {
            state.incidents.releaseHeldPage(incident, at: now, ladder: ladder, deadlines: &state.deadlines, out: &out)
        }
        return out
    }

    /// A dataset was registered or changed.
    public mutating func datasetRegistered(_ dataset: Dataset, at now: Int64) -> [ControllerAction] {
        if var record = state.datasets[dataset.id] {
            record.dataset = dataset
            state.datasets[dataset.id] = record
        } else {
            state.datasets[dataset.id] = DatasetRecord(dataset: dataset, registeredAtMs: now)
        }
        return []
    }

    /// An operator resumed retries of jobs on a paused dataset: the jobs held for it restart.
    public mutating func datasetResumed(_ id: String, by who: String, at now: Int64) throws(OperatorError) -> [ControllerAction] {
        guard state.datasets[id] != nil else { throw OperatorError(.unknownDataset, "dataset '\(id)' not found") }
        var out: [ControllerAction] = []
        resumeDataset(id, by: who, at: now, &out)
        return out
    }

    /// An operator cordoned a node: no new jobs go there; jobs already there keep running.
    public mutating func nodeCordoned(_ id: String, by who: String, reason text: String, at now: Int64) throws(OperatorError) -> [ControllerAction] {
        guard var node = state.nodes[id] else { throw OperatorError(.unknownNode, "node '\(id)' not found") }
        guard !node.cordoned else { return [] }
        node.cordoned = true
        node.cordonReason = "cordoned by \(who)\(text.isEmpty ? "" : ": \(text)")"
        state.nodes[id] = node
        return [.cordon(nodeID: id, reason: Reason(symptom: "operator action", evidence: node.cordonReason, rule: "operator cordon"))]
    }

    /// An operator uncordoned a node: it takes jobs again, and waiting jobs are placed.
    public mutating func nodeUncordoned(_ id: String, by who: String, at now: Int64) throws(OperatorError) -> [ControllerAction] {
        guard var node = state.nodes[id] else { throw OperatorError(.unknownNode, "node '\(id)' not found") }
        guard node.cordoned else { return [] }
        node.cordoned = false
        node.cordonReason = ""
        state.nodes[id] = node
        clearEvidence("bad_node:\(id)", at: now)  // repaired: the failures that cordoned it no longer count
        var out: [ControllerAction] = [
            .uncordon(nodeID: id, reason: Reason(symptom: "operator action", evidence: "uncordoned by \(who)", rule: "operator uncordon"))
        ]
        placeWaitingJobs(at: now, &out)
        return out
    }

    /// An operator stopped a job: its process is stopped and nothing restarts it.
    public mutating func jobStopRequested(_ id: String, by who: String, at now: Int64) throws(OperatorError) -> [ControllerAction] {
        guard state.jobs[id] != nil else { throw OperatorError(.unknownJob, "job '\(id)' not found") }
        var out: [ControllerAction] = []
        stopJob(id, by: who, at: now, &out)
        return out
    }

    /// The shell rejected a publish from a node (bad credentials, a subject outside its permissions).
    public mutating func securityViolationReported(nodeID: String, detail: String, at now: Int64) -> [ControllerAction] {
        var out: [ControllerAction] = []
        raiseSecurity(node: nodeID, evidence: detail, at: now, &out)
        return out
    }

    // MARK: - Read models

    /// Every job, by id.
    public var jobs: [JobRecord] { state.jobs.values.sorted { $0.spec.id < $1.spec.id } }
    /// Every job, in no order (for views that choose and order a few themselves).
    public var unorderedJobs: Dictionary<String, JobRecord>.Values { state.jobs.values }
    /// One job, with its status, node, attempt, config and per-attempt history.
    public func job(_ id: String) -> JobRecord? { state.jobs[id] }
    /// Every node, by id.
    public var nodes: [NodeRecord] { state.nodes.values.sorted { $0.id < $1.id } }
    /// One node: health, capacity, usage, cordon.
    public func node(_ id: String) -> NodeRecord? { state.nodes[id] }
    /// Every dataset, by id.
    public var datasets: [DatasetRecord] { state.datasets.values.sorted { $0.id < $1.id } }
    /// One dataset: location, status, whether retries on it are paused.
    public func dataset(_ id: String) -> DatasetRecord? { state.datasets[id] }
    /// Every incident, oldest first.
    public var incidents: [Incident] { state.incidents.all }
    /// Open or acknowledged incidents per level (a walk over the open ones only).
    public var openIncidentsByLevel: [EscalationLevel: Int] {
        var counts: [EscalationLevel: Int] = [:]
        for id in state.incidents.openKeys.values {
            if let incident = state.incidents[id] { counts[incident.level, default: 0] += 1 }
        }
        return counts
    }
    /// One incident, attached ones included.
    public func incident(_ id: String) -> Incident? { state.incidents[id] }
    /// The post-incident review of a resolved incident.
    public func postIncidentReport(_ id: String) -> PostIncidentReport? {
        state.incidents[id].flatMap { PostIncidentReport($0, targets: policy.escalation.quickFixTargets) }
    }
    /// Every deadline the core waits for, earliest first.
    public var scheduledTimers: [(id: TimerID, atMs: Int64)] { state.deadlines.all }
    /// Silences in force or scheduled, soonest ending first.
    public func silences(at now: Int64) -> [Silence] {
        state.silences.filter { $0.endsAtMs > now }.sorted { ($0.endsAtMs, $0.id) < ($1.endsAtMs, $1.id) }
    }
    /// One silence, ended or not (until the next one added drops it).
    public func silence(_ id: String) -> Silence? { state.silences.first { $0.id == id } }
    /// Symptoms whose config changes are frozen fleet-wide now.
    public var frozenSymptoms: [Symptom] { Array(Set(state.freezes.values.flatMap { $0 })).sorted() }

    /// Pre-training validation against the current registry and fleet: every problem at once.
    public func validate(_ spec: JobSpec) -> [SpecProblem] {
        // The records as stored, unsorted: submission costs one pass over the nodes, not a sort.
        SpecValidator(policy: policy.validation).problems(in: spec, datasets: state.datasets.values, nodes: state.nodes.values)
    }
}
