import ArchonModel
import Testing

@testable import ArchonCore

/// 2026-01-01T00:00:00Z: the manual clock's zero.
let t0: Int64 = 1_767_225_600_000
let second: Int64 = 1000
let minute: Int64 = 60_000
let hour: Int64 = 3_600_000
let gib: UInt64 = 1 << 30

/// A fleet driven by hand: a controller, a manual clock, and agents whose events are numbered for them.
struct Fleet {
    var controller: FleetController
    var now: Int64 = t0
    private var sequences: [String: UInt64] = [:]
    /// Nodes whose agents send a heartbeat whenever the clock moves.
    var live: [String] = []
    /// Every job event sent, for redelivery.
    var sent: [TrainingEvent] = []
    /// The checkpoint storage every node declares; nil = none declared (local).
    var checkpointStorage: CheckpointStorage?

    /// Nodes with 64 GiB, 16 cores, one a100-40gb each, registered at t0; datasets ds-1 and ds-2 ready. A job's pages
    /// go out at once unless `groupWait` is given (`escalation.groupWait`): transcripts not about grouping stay short.
    init(policy: Policy = Policy(), nodes: [String] = ["n1", "n2", "n3"], memory: UInt64 = 64 * gib, datasets: [String] = ["ds-1", "ds-2"],
         checkpointStorage: CheckpointStorage? = nil, groupWait: PolicyDuration = .seconds(0)) {
        var policy = policy
        policy.escalation.groupWait = groupWait
        controller = FleetController(policy: policy)
        self.checkpointStorage = checkpointStorage
        for id in datasets {
            _ = controller.datasetRegistered(Dataset(id: id, location: "/data/\(id)"), at: now)
        }
        for id in nodes {
            _ = addNode(id, memory: memory)
        }
    }

    @discardableResult
    mutating func addNode(_ id: String, memory: UInt64 = 64 * gib, gpus: [GPU]? = nil) -> [ControllerAction] {
        if !live.contains(id) { live.append(id) }
        let status = NodeStatus(
            nodeID: id, hostname: id,
            capacity: NodeCapacity(cpuCores: 16, memoryBytes: memory, gpus: gpus ?? [GPU(index: 0, name: "A100", gpuClass: "a100-40gb", memoryBytes: 40 * gib)], diskBytes: 1000 * gib),
            checkpointStorage: checkpointStorage)
        return controller.eventReceived(
            TrainingEvent(jobID: "", nodeID: id, attempt: 0, sequence: 0, timeMs: now, body: .nodeStatus(status)),
            subjectNode: id, at: now)
    }

    mutating func advance(_ ms: Int64) { moveClock(to: now + ms) }
    mutating func at(_ ms: Int64) { moveClock(to: t0 + ms) }

    /// The clock moves; every live agent says it is alive, every 10 s on the way as a real one does (every 2 s):
    /// a gap in what a node says means something (its jobs' hang windows start over after a long one).
    mutating func moveClock(to time: Int64) {
        var beat = now + 10 * second
        while beat < time {
            heartbeatLiveNodes(at: beat)
            beat += 10 * second
        }
        now = time
        heartbeatLiveNodes(at: now)
    }

    private mutating func heartbeatLiveNodes(at time: Int64) {
        for node in live {
            _ = controller.eventReceived(
                TrainingEvent(jobID: "", nodeID: node, attempt: 0, sequence: 0, timeMs: time, body: .heartbeat(Heartbeat())),
                subjectNode: node, at: time)
        }
    }

    /// The node's agent stops talking.
    mutating func silence(_ node: String) { live.removeAll { $0 == node } }

    mutating func submit(_ spec: JobSpec) -> [ControllerAction] { controller.jobSubmitted(spec, at: now) }

    /// An event from the node running `job`'s attempt (or `node`), with the next sequence of that attempt.
    mutating func send(_ job: String, _ body: TrainingEvent.Body, attempt: Int? = nil, node: String? = nil) -> [ControllerAction] {
        let record = controller.job(job)
        let attempt = attempt ?? record?.attempt ?? 1
        let node = node ?? record?.history.last { $0.attempt == attempt }?.nodeID ?? "n1"
        let key = "\(job).\(attempt)"
        let sequence = (sequences[key] ?? 0) + 1
        sequences[key] = sequence
        let event = TrainingEvent(jobID: job, nodeID: node, attempt: attempt, sequence: sequence, timeMs: now, body: body)
        sent.append(event)
        return controller.eventReceived(event, subjectNode: node, at: now)
    }

    /// Accepted + started.
    mutating func start(_ job: String) -> [ControllerAction] {
        send(job, .accepted(JobAccepted(fencingEpoch: 0))) + send(job, .started(JobStarted(pid: 100, memoryLimitBytes: 8 * gib)))
    }

    mutating func epoch(_ job: String, _ epoch: Int, loss: Double, of total: Int = 10, seconds: Double = 60, validation: Double? = nil) -> [ControllerAction] {
        send(job, .epoch(EpochMetrics(epoch: epoch, totalEpochs: total, loss: loss, durationSeconds: seconds, step: epoch * 100, validation: validation.map { Validation(loss: $0) })))
    }

    mutating func exit(_ job: String, code: Int32 = 1, signal: Int32 = 0, oom: Bool = false, failure: FailureClass = .none, detail: String = "", log: [String] = []) -> [ControllerAction] {
        send(job, .exited(JobExited(exitCode: code, signal: signal, oomKilled: oom, failureClass: failure, detail: detail, logTail: log)))
    }

    mutating func complete(_ job: String) -> [ControllerAction] {
        send(job, .exited(JobExited(exitCode: 0)))
    }

    /// The same event again, as JetStream redelivers it.
    mutating func redeliver(_ event: TrainingEvent) -> [ControllerAction] {
        controller.eventReceived(event, subjectNode: event.nodeID, at: now)
    }

    mutating func fire(_ id: TimerID) -> [ControllerAction] { controller.timerFired(id, at: now) }
    mutating func tick() -> [ControllerAction] { controller.tick(at: now) }
    /// Moves the clock to the next deadline and handles it.
    mutating func nextDeadline() -> [ControllerAction] {
        guard let next = controller.scheduledTimers.first else { return [] }
        moveClock(to: max(now, next.atMs))
        return controller.timerFired(next.id, at: now)
    }

    func job(_ id: String) -> JobRecord { controller.job(id)! }
    func incident(_ id: String) -> Incident { controller.incident(id)! }
}

/// A job spec with a command, a dataset and 8 GiB.
func spec(_ id: String, batch: Int = 64, lr: Double = 0.01, epochs: Int = 10, dataset: String = "ds-1", kind: String = "resnet", memory: UInt64 = 8 * gib, team: String = "vision") -> JobSpec {
    JobSpec(
        id: id, name: id, team: team, command: ["python3", "train.py"],
        config: TrainingConfig(batchSize: batch, learningRate: lr, epochs: epochs, resources: Resources(memoryBytes: memory, cpuCores: 2), dataset: dataset),
        labels: ["kind": kind])
}

/// Actions as transcript lines; times relative to t0.
/// One line per action, measures left out (``measures(_:)`` has them): transcripts show decisions.
func lines(_ actions: [ControllerAction]) -> [String] {
    describe(actions.filter { if case .measure = $0 { false } else { true } })
}

/// The runbook measures among the actions, one line each.
func measures(_ actions: [ControllerAction]) -> [String] {
    describe(actions.filter { if case .measure = $0 { true } else { false } })
}

private func describe(_ actions: [ControllerAction]) -> [String] {
    actions.map { action in
        switch action {
        case .assign(let a, _):
            "assign \(a.spec.id)#\(a.attempt) → \(a.nodeID)\(a.resumeFrom.isEmpty ? "" : " resume \(a.resumeFrom)")"
        case .stop(let job, let node, let attempt, _):
            "stop \(job)#\(attempt) on \(node)"
        case .stopGracefully(let a, _):
            "stop \(a.spec.id)#\(a.attempt) on \(a.nodeID) grace \(a.stopGraceSeconds)s"
        case .cordon(let node, _): "cordon \(node)"
        case .uncordon(let node, _): "uncordon \(node)"
        case .pauseRetries(let dataset, _): "pause retries \(dataset)"
        case .resumeRetries(let dataset, _): "resume retries \(dataset)"
        case .freezeRemediation(let symptom, _): "freeze \(symptom.rawValue)"
        case .unfreezeRemediation(let symptom, _): "unfreeze \(symptom.rawValue)"
        case .publishEscalation(let e, _):
            "\(e.kind.rawValue) \(e.incident.id) \(e.incident.level.rawValue) \(e.incident.subject)"
        case .rejectJob(let job, let problems, _):
            "reject \(job): \(problems.map(\.description).joined(separator: "; "))"
        case .scheduleTimer(let id, let at):
            "timer \(id) @\(PolicyDuration.format(milliseconds: at - t0, compact: true))"
        case .cancelTimer(let id):
            "cancel \(id)"
        case .archive(.job(let job)):
            "archive job \(job.spec.id)"
        case .archive(.incident(let incident)):
            "archive incident \(incident.id)"
        case .measure(.failureSeriesEnded(let symptom, let outcome, let ms, let target)):
            "measure \(symptom.rawValue) \(outcome.rawValue) in \(PolicyDuration.format(milliseconds: ms, compact: true))\(target.map { " (target \(PolicyDuration.format(milliseconds: $0, compact: true)))" } ?? "")"
        case .measure(.incidentResolved(let cause, let detect, let resolve, let automatic)):
            "measure \(cause.rawValue) resolved\(automatic ? " by archon" : ""): detected in \(PolicyDuration.format(milliseconds: detect, compact: true)), resolved in \(PolicyDuration.format(milliseconds: resolve, compact: true))"
        }
    }
}

/// Transcript lines without timer bookkeeping.
func decisions(_ actions: [ControllerAction]) -> [String] {
    lines(actions).filter { !$0.hasPrefix("timer ") && !$0.hasPrefix("cancel ") }
}

/// The reason of the first action that has one.
func firstReason(_ actions: [ControllerAction]) -> Reason? { actions.compactMap(\.reason).first }

func assignments(_ actions: [ControllerAction]) -> [JobAssignment] {
    actions.compactMap { if case .assign(let a, _) = $0 { a } else { nil } }
}

func escalations(_ actions: [ControllerAction]) -> [Escalation] {
    actions.compactMap { if case .publishEscalation(let e, _) = $0 { e } else { nil } }
}

extension Policy {
    /// Runbook defaults with restarts placed at once (no backoff), for transcripts that are not about backoff.
    static var noBackoff: Policy {
        var p = Policy()
        p.remediation.backoff = BackoffPolicy(initial: .seconds(0), multiplier: 1, max: .seconds(0))
        return p
    }
}
