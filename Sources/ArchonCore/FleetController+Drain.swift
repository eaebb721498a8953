import ArchonModel

// Stopping with a checkpoint: a drain, a move off a bad node and an operator stop give a healthy attempt its stop
// grace to save a checkpoint and exit; a move places the next attempt only then, so it resumes from that checkpoint.
extension FleetController {
    /// Time between the grace's end and giving up on the exit: the agent's SIGKILL, and the exit's trip over NATS.
    static let drainMarginMs: Int64 = 15_000

    /// The job's stop grace: its own `checkpoint.stopGraceSeconds`, else `remediation.stopGrace`.
    func stopGraceMs(_ job: JobRecord) -> Int64 {
        let own = job.config.checkpoint.stopGraceSeconds
        return own > 0 ? Int64(own) * 1000 : policy.remediation.stopGrace.milliseconds
    }

    /// Stops the current attempt gracefully; call it right after ``endAttempt(_:outcome:symptom:at:_:)``. False, and
    /// nothing done, when no process of it can still be saving: the agent never accepted it, it already exited,
    /// or its node is offline. The job's key stays until ``gracefulStopEnded(_:attempt:exited:at:_:)``.
    mutating func beginGracefulStop(_ jobID: String, why: String, reason: Reason, at now: Int64, _ out: inout [ControllerAction]) -> Bool {
        guard var job = state.jobs[jobID], let index = job.history.indices.last, !job.desiredNode.isEmpty else { return false }
        let attempt = job.history[index]
        guard attempt.nodeID == job.desiredNode, attempt.drain == nil, attempt.lastExit == nil,
              attempt.acceptedAtMs > 0 || attempt.startedAtMs > 0,
              state.nodes[attempt.nodeID]?.health == .online
        else { return false }
        let grace = stopGraceMs(job)
        job.history[index].drain = AttemptDrain(why: why, requestedAtMs: now, graceMs: grace)
        state.jobs[jobID] = job
        var spec = job.spec
        spec.config = job.config
        let stopped = JobAssignment(
            spec: spec, attempt: attempt.attempt, fencingEpoch: state.fencingEpoch, desiredState: .stopped, nodeID: attempt.nodeID,
            resumeFrom: attempt.resumeFrom, assignedAtMs: now, reason: why, freshStart: attempt.freshStart,
            stopGraceSeconds: Int((grace + 999) / 1000))
        out.append(.stopGracefully(stopped, reason: reason))
        state.deadlines.set(.drainDeadline(jobID: jobID, attempt: attempt.attempt), at: now + grace + Self.drainMarginMs, &out)
        return true
    }

    /// The gracefully stopped attempt exited (or the core stopped waiting): its key goes, and the job takes its
    /// next step — a move places its pending attempt, which resumes from the newest checkpoint (the one saved
    /// during the grace, if any); a stopped job is done.
    mutating func gracefulStopEnded(_ jobID: String, attempt: Int, exited: Bool, at now: Int64, _ out: inout [ControllerAction]) {
        guard var job = state.jobs[jobID], let index = job.attemptIndex(attempt), var drain = job.history[index].drain, drain.isActive else { return }
        drain.endedAtMs = now
        drain.exited = exited
        job.history[index].drain = drain
        state.deadlines.cancel(.drainDeadline(jobID: jobID, attempt: attempt), &out)
        let node = job.history[index].nodeID
        if job.desiredNode == node {
            let saved = drain.checkpoint.map { "after saving a checkpoint at epoch \($0.epoch)" } ?? "without saving a checkpoint"
            let evidence = exited
                ? "attempt \(attempt) exited on \(node) \(saved)"
                : "attempt \(attempt) on \(node) reported no exit within its \(Timestamp.duration(drain.graceMs)) grace (\(saved))"
            out.append(.stop(jobID: jobID, nodeID: node, attempt: attempt, reason: Reason(
                symptom: "graceful stop ended", evidence: evidence, rule: "a gracefully stopped attempt's key is removed once it has exited")))
            job.desiredNode = ""
        }
        state.jobs[jobID] = job
        if !job.status.isTerminal, job.hold == nil, let plan = job.pending {
            queueAttempt(jobID, plan, at: now, &out)
        }
        placeWaitingJobs(at: now, &out)
    }

    /// Moves a job off `node`: its attempt there is stopped gracefully and the same config is placed elsewhere once
    /// it has exited, resuming from the checkpoint it saved; an attempt with no process to wait for is stopped and
    /// re-placed at once. False when the job has no attempt running there.
    mutating func move(_ jobID: String, off node: String, outcome: String, action: String, symptom: Symptom?, reason: Reason,
                       at now: Int64, _ out: inout [ControllerAction]) -> Bool {
        guard let job = state.jobs[jobID], let current = job.current, !current.isOver, !job.status.isTerminal, current.nodeID == node else {
            return false
        }
        endAttempt(jobID, outcome: outcome, at: now, &out)
        let plan = PendingAttempt(
            config: job.config, action: action, configChange: "", reason: reason, symptom: symptom, dueMs: now,
            excludeNodes: [node], preferNode: "", resumeBeforeEpoch: nil)
        if beginGracefulStop(jobID, why: outcome, reason: reason, at: now, &out), var draining = state.jobs[jobID] {
            // The process keeps its room on the node (job.nodeID) until it has exited.
            draining.pending = plan
            draining.status = .queued
            draining.statusDetail = "draining off \(node): attempt \(current.attempt) has up to \(Timestamp.duration(stopGraceMs(draining))) to save a checkpoint and exit, then moves"
            state.jobs[jobID] = draining
            return true
        }
        if !job.desiredNode.isEmpty {
            out.append(.stop(jobID: jobID, nodeID: job.desiredNode, attempt: current.attempt, reason: reason))
        }
        guard var moved = state.jobs[jobID] else { return false }
        moved.desiredNode = ""
        moved.nodeID = ""
        state.jobs[jobID] = moved
        queueAttempt(jobID, plan, at: now, &out)
        return true
    }

    /// An operator drained a node: it is cordoned and every job on it is moved with its stop grace (time to save a
    /// checkpoint); ``drainProgress(_:)`` says where each stands.
    public mutating func nodeDrainRequested(_ id: String, by who: String, reason text: String, at now: Int64) throws(OperatorError) -> [ControllerAction] {
        guard var node = state.nodes[id] else { throw OperatorError(.unknownNode, "node '\(id)' not found") }
        var out: [ControllerAction] = []
        let why = "node \(id) drained by \(who)\(text.isEmpty ? "" : ": \(text)")"
        let reason = Reason(symptom: "operator action", evidence: why,
                            rule: "operator drain: cordon, stop each job with its stop grace (time to save a checkpoint), move it to another node from that checkpoint")
        if !node.cordoned {
            node.cordoned = true
            node.cordonReason = "drained by \(who)\(text.isEmpty ? "" : ": \(text)")"
            out.append(.cordon(nodeID: id, reason: reason))
        }
        // Cordoned before any move, so no job is placed back here. Asked again while a drain is under way, the
        // drain goes on (and lists what it moved so far): that is how an operator follows it.
        var moved = drainProgress(id)?.done == false ? node.drain?.jobs ?? [] : []
        state.nodes[id] = node
        for jobID in state.jobs.active(on: id).sorted() {
            guard let attempt = state.jobs[jobID]?.current?.attempt,
                  move(jobID, off: id, outcome: "moved off \(id): \(why)", action: "move: \(why)", symptom: nil, reason: reason, at: now, &out)
            else { continue }
            moved.append(DrainedAttempt(jobID: jobID, attempt: attempt))
        }
        node.drain = NodeDrain(requestedAtMs: now, by: who, reason: text, jobs: moved)
        state.nodes[id] = node
        return out
    }

    /// Where the node's latest drain stands, job by job; nil when it was never drained.
    public func drainProgress(_ nodeID: String) -> DrainProgress? {
        guard let node = state.nodes[nodeID], let drain = node.drain else { return nil }
        return DrainProgress(
            nodeID: nodeID, cordoned: node.cordoned, requestedAtMs: drain.requestedAtMs, by: drain.by, reason: drain.reason,
            jobs: drain.jobs.map { move(of: $0, from: nodeID) })
    }

    private func move(of drained: DrainedAttempt, from nodeID: String) -> JobMove {
        var move = JobMove(jobID: drained.jobID, fromNode: nodeID, fromAttempt: drained.attempt)
        guard let job = state.jobs[drained.jobID], let index = job.attemptIndex(drained.attempt) else {
            move.state = .finished
            move.detail = "the job has left the hot state (archived)"
            return move
        }
        move.jobStatus = job.status
        let drain = job.history[index].drain
        move.graceMs = drain?.graceMs ?? 0
        move.checkpointSaved = drain?.checkpoint != nil
        move.checkpointPath = drain?.checkpoint?.path ?? ""
        move.checkpointEpoch = drain?.checkpoint?.epoch
        move.exited = drain.map(\.exited) ?? true
        if drain?.isActive == true {
            move.state = .draining
            move.detail = "attempt \(drained.attempt) is saving a checkpoint and exiting (grace \(Timestamp.duration(move.graceMs)))"
        } else if let next = job.history.last, next.attempt > drained.attempt {
            move.toNode = next.nodeID
            move.toAttempt = next.attempt
            move.resumeFrom = next.resumeFrom
            move.state = next.startedAtMs > 0 || next.isOver ? .moved : .starting
            move.detail = move.state == .moved
                ? "attempt \(next.attempt) runs on \(next.nodeID)\(next.resumeFrom.isEmpty ? " from scratch" : ", resumed from \(next.resumeFrom)")"
                : "attempt \(next.attempt) assigned to \(next.nodeID); waiting for it to start"
        } else if job.status.isTerminal {
            move.state = .finished
            move.detail = "the job is \(job.status.rawValue)"
        } else {
            move.state = .waiting
            move.detail = job.statusDetail
        }
        return move
    }
}

/// Where an operator's drain of a node stands.
public struct DrainProgress: Codable, Sendable, Hashable {
    public var nodeID: String
    public var cordoned: Bool
    public var requestedAtMs: Int64
    public var by: String
    public var reason: String
    public var jobs: [JobMove]
    /// Every job has moved (started elsewhere) or finished.
    public var done: Bool { jobs.allSatisfy { $0.state == .moved || $0.state == .finished } }
}

/// One job moved off a drained node.
public struct JobMove: Codable, Sendable, Hashable {
    public enum State: String, Codable, Sendable, CaseIterable {
        /// Its attempt on the drained node may still be saving a checkpoint.
        case draining
        /// Its attempt there has exited; it waits for a node with room.
        case waiting
        /// Its next attempt is assigned to another node and has not started yet.
        case starting
        /// Its next attempt started on another node.
        case moved
        /// It ended (stopped, failed, completed or archived) without moving.
        case finished
    }

    public var jobID: String
    public var fromNode: String
    public var fromAttempt: Int
    public var state: State = .draining
    public var detail: String = ""
    public var jobStatus: JobStatus?
    public var graceMs: Int64 = 0
    /// The attempt reported a checkpoint during its grace: the next attempt resumes from it.
    public var checkpointSaved = false
    public var checkpointPath = ""
    public var checkpointEpoch: Int?
    /// The agent reported the attempt's exit (false: the grace passed without one).
    public var exited = true
    public var toNode = ""
    public var toAttempt: Int?
    public var resumeFrom = ""

    init(jobID: String, fromNode: String, fromAttempt: Int) {
        self.jobID = jobID
        self.fromNode = fromNode
        self.fromAttempt = fromAttempt
    }
}
