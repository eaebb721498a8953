import ArchonModel

// Deadlines: what happens when a timer comes due.
extension FleetController {
    mutating func handleDeadline(_ id: TimerID, at now: Int64, _ out: inout [ControllerAction]) {
        switch id {
        case .startDeadline(let jobID):
            checkStarted(jobID, at: now, &out)
        case .progressDeadline(let jobID, let attempt):
            checkProgress(jobID, attempt: attempt, at: now, &out)
        case .epochDeadline(let jobID, let attempt):
            checkEpoch(jobID, attempt: attempt, at: now, &out)
        case .attemptDeadline(let jobID, let attempt):
            checkAttemptTime(jobID, attempt: attempt, at: now, &out)
        case .restartDue(let jobID):
            restartDue(jobID, at: now, &out)
        case .responseDue(let incidentID, let level):
            state.incidents.climb(incidentID, from: level, at: now, ladder: ladder, deadlines: &state.deadlines, out: &out)
        case .nodeSilence(let nodeID):
            checkNodeSilence(nodeID, at: now, &out)
        case .archiveJob(let jobID):
            archiveJob(jobID, at: now, &out)
        case .drainDeadline(let jobID, let attempt):
            gracefulStopEnded(jobID, attempt: attempt, exited: false, at: now, &out)
        case .archiveIncident(let incidentID):
            if let incident = state.incidents.archive(incidentID) { out.append(.archive(.incident(incident))) }
        case .ackExpires(let incidentID):
            state.incidents.acknowledgementExpired(incidentID, timeoutMs: policy.escalation.ackTimeout.milliseconds, at: now, ladder: ladder,
                                                   deadlines: &state.deadlines, out: &out)
        case .healthyFor(let jobID, let attempt):
            ranHealthy(jobID, attempt: attempt, at: now, &out)
        case .restartBudgetReset(let jobID, let attempt):
            resetRestartBudget(jobID, attempt: attempt, at: now, &out)
        case .pageHeld(let incidentID):
            state.incidents.releaseHeldPage(incidentID, at: now, ladder: ladder, deadlines: &state.deadlines, out: &out)
        }
    }

    /// The retention of a finished job is over: it leaves the hot state (a job revived since is kept).
    private mutating func archiveJob(_ jobID: String, at now: Int64, _ out: inout [ControllerAction]) {
        guard let job = state.jobs[jobID], job.status.isTerminal else { return }
        state.jobs[jobID] = nil
        state.correlation.forget(jobID)
        for id in state.deadlines.owned(by: .job(jobID)).keys { state.deadlines.cancel(id, &out) }
        out.append(.archive(.job(job)))
    }

    /// The live attempt `attempt` of a job if it has reported progress since it started (a job that reports nothing
    /// is judged only by its end).
    private func progressing(_ jobID: String, _ attempt: Int) -> (JobRecord, AttemptRecord)? {
        guard let (job, record) = running(jobID, attempt), record.startedAtMs > 0, record.signals.lastProgressMs >= record.startedAtMs
        else { return nil }
        return (job, record)
    }

    /// The live attempt `attempt` of a job, if it is the current one and still running.
    private func running(_ jobID: String, _ attempt: Int) -> (JobRecord, AttemptRecord)? {
        guard let job = state.jobs[jobID], job.status == .running, let record = job.current,
            record.attempt == attempt, !record.isOver
        else { return nil }
        return (job, record)
    }

    /// The attempt has run `escalation.resolveAfterHealthy` making progress: the job's incident resolves itself.
    private mutating func ranHealthy(_ jobID: String, attempt: Int, at now: Int64, _ out: inout [ControllerAction]) {
        guard let (job, record) = progressing(jobID, attempt) else { return }
        endFailureSeries(jobID, .fixed, fixedAtMs: record.startedAtMs, &out)
        autoResolveJob(jobID, because: "attempt \(attempt) of job \(jobID) ran healthy on \(job.nodeID) for \(policy.escalation.resolveAfterHealthy) (last progress \(Timestamp.iso8601(record.signals.lastProgressMs)))",
                       notices: false, at: now, &out)
    }

    /// The attempt has made progress for `remediation.restartBudgetResetAfter`: earlier failures were an episode that
    /// ended; the next failure starts its ladder and budget afresh (its config keeps what the ladder changed).
    private mutating func resetRestartBudget(_ jobID: String, attempt: Int, at now: Int64, _ out: inout [ControllerAction]) {
        guard let (job, _) = progressing(jobID, attempt), job.restarts > 0 || !job.ladderSteps.isEmpty else { return }
        update(jobID) { job in
            job.restarts = 0
            job.ladderSteps = [:]
        }
        if !job.incidentID.isEmpty {
            state.incidents.note(job.incidentID, "restart budget of job \(jobID) reset: attempt \(attempt) made progress for \(policy.remediation.restartBudgetResetAfter)", at: now)
        }
    }

    /// Stuck queued: not started within the queue timeout.
    private mutating func checkStarted(_ jobID: String, at now: Int64, _ out: inout [ControllerAction]) {
        guard let job = state.jobs[jobID], job.status == .queued, job.hold == nil else { return }
        let timeout = policy.detection.queueTimeout
        let windowStart = max(job.current.map { $0.isOver ? job.queuedSinceMs : $0.assignedAtMs } ?? job.queuedSinceMs, state.heardAgainAtMs)
        if now < windowStart + timeout.milliseconds {
            state.deadlines.set(.startDeadline(jobID: jobID), at: windowStart + timeout.milliseconds, &out)
            return
        }
        if let record = job.current, !record.isOver, !job.nodeID.isEmpty {
            fail(jobID, Finding(
                symptom: .stuckQueued,
                evidence: "assigned at \(Timestamp.iso8601(record.assignedAtMs)), not started within \(timeout)",
                failureTimeMs: job.queuedSinceMs), processMayBeAlive: true, at: now, &out)
            return
        }
        guard let plan = job.pending, plan.dueMs <= now else { return }  // still in backoff: its own deadline follows
        let largest = onlineNodes.filter { !$0.cordoned }.max { $0.capacity.memoryBytes < $1.capacity.memoryBytes }
        var hint = largest.map { "; largest schedulable node: \($0.id) (\(Placement.describe($0.capacity)))" } ?? "; no schedulable node"
        let avoided = plan.excluded(at: now).sorted()
        if !avoided.isEmpty { hint += "; avoiding \(avoided.joined(separator: ", ")), where it failed" }
        let finding = Finding(
            symptom: .stuckQueued,
            evidence: "queued since \(Timestamp.iso8601(job.queuedSinceMs)) (over \(timeout)): no node has room for \(Placement.describe(plan.config.resources))\(hint)",
            failureTimeMs: job.queuedSinceMs)
        if state.jobs[jobID]?.firstFailureMs == 0 { state.jobs[jobID]?.firstFailureMs = job.queuedSinceMs }
        let ladderPolicy = policy.remediation.ladders.stuckQueued
        escalateJob(jobID, finding, level: ladderPolicy.escalateTo, severity: ladderPolicy.severity,
                    status: "queued: waiting for a node with room; placed as soon as one has",
                    rule: "detection.queueTimeout \(timeout) passed with nowhere to place it → escalate to \(ladderPolicy.escalateTo.rawValue)", at: now, &out)
    }

    /// Hang: alive but no progress within the heartbeat window.
    private mutating func checkProgress(_ jobID: String, attempt: Int, at now: Int64, _ out: inout [ControllerAction]) {
        guard let (job, record) = running(jobID, attempt), record.signals.lastProgressMs > 0 else { return }
        let window = heartbeatWindow(job)
        // A trainer heartbeat is a sign of life too (as the agent judges it): a slow epoch that keeps beating is
        // not a hang; its epoch limit bounds it.
        let alive = max(record.signals.lastProgressMs, record.signals.lastHeartbeatMs)
        let node = state.nodes[record.nodeID]
        // The window runs from the job's last sign of life, or from when this controller or the job's node was heard
        // again after a silence: what a frozen or cut-off agent queued arrives after its first events.
        let since = max(alive, state.heardAgainAtMs, node?.heardAgainAtMs ?? 0)
        let deadline = since + window
        if now < deadline {
            state.deadlines.set(.progressDeadline(jobID: jobID, attempt: attempt), at: deadline, &out)
            return
        }
        // Hung means the node speaks and the job does not: the node was heard for at least half a window after that.
        // A node silent since about then (its agent frozen, or cut off from NATS with everything queued in its spool)
        // explains the job's silence: `detection.nodeSilence` judges the node (found by `make chaos` twice: a job
        // restarted as hung whose trainer was fine — the second time its node's last heartbeat came 0.3 s after the
        // job's last event, and then the agent froze).
        if let node, node.lastSeenMs - since < window / 2 {
            state.deadlines.set(.progressDeadline(jobID: jobID, attempt: attempt), at: now + window / 2, &out)
            return
        }
        let heartbeat = record.signals.lastHeartbeatMs > 0 ? "; last heartbeat \(Timestamp.iso8601(record.signals.lastHeartbeatMs))" : ""
        fail(jobID, Finding(
            symptom: .hang,
            evidence: "no progress event or heartbeat since \(Timestamp.iso8601(alive)) (window \(Timestamp.duration(window))) while the process is alive\(heartbeat)",
            failureTimeMs: record.signals.lastProgressMs), processMayBeAlive: true, at: now, &out)
    }

    /// Epoch timeout: the current epoch runs over its limit.
    private mutating func checkEpoch(_ jobID: String, attempt: Int, at now: Int64, _ out: inout [ControllerAction]) {
        guard let (job, record) = running(jobID, attempt), record.signals.lastProgressMs > 0 else { return }
        let limit = Int64(job.config.timeouts.perEpochSeconds) * 1000
        guard limit > 0 else { return }
        let deadline = record.signals.epochStartMs + limit
        if now < deadline {
            state.deadlines.set(.epochDeadline(jobID: jobID, attempt: attempt), at: deadline, &out)
            return
        }
        let epoch = (record.lastMetrics?.epoch ?? 0).addingSaturated(1)
        fail(jobID, Finding(
            symptom: .timeout,
            evidence: "epoch \(epoch) running for \(Timestamp.duration(now - record.signals.epochStartMs)), limit \(Timestamp.duration(limit))",
            failureTimeMs: deadline), processMayBeAlive: true, at: now, &out)
    }

    /// Total timeout: the attempt runs over its limit.
    private mutating func checkAttemptTime(_ jobID: String, attempt: Int, at now: Int64, _ out: inout [ControllerAction]) {
        guard let (job, record) = running(jobID, attempt), record.startedAtMs > 0 else { return }
        let limit = Int64(job.config.timeouts.totalSeconds) * 1000
        guard limit > 0 else { return }
        let deadline = record.startedAtMs + limit
        if now < deadline {
            state.deadlines.set(.attemptDeadline(jobID: jobID, attempt: attempt), at: deadline, &out)
            return
        }
        fail(jobID, Finding(
            symptom: .timeout,
            evidence: "attempt \(attempt) running for \(Timestamp.duration(now - record.startedAtMs)), total limit \(Timestamp.duration(limit))",
            failureTimeMs: deadline), processMayBeAlive: true, at: now, &out)
    }

    /// The backoff is over: the next attempt is placed.
    private mutating func restartDue(_ jobID: String, at now: Int64, _ out: inout [ControllerAction]) {
        guard let job = state.jobs[jobID], job.status == .queued, job.hold == nil, job.nodeID.isEmpty, var plan = job.pending else { return }
        if plan.dueMs > now {
            state.deadlines.set(.restartDue(jobID: jobID), at: plan.dueMs, &out)
            return
        }
        plan.dueMs = now
        queueAttempt(jobID, plan, at: now, &out)
    }
}
