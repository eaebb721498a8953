public import ArchonModel

/// What the core decided; the shell performs it and holds no policy of its own.
///
/// Actions come out in the order they must be performed (a `stop` of an old placement before the `assign`
/// that replaces it). Every action but a timer carries a ``Reason``.
public enum ControllerAction: Codable, Sendable, Hashable {
    /// Write the desired state `<node>.<job>` in KV `archon_desired`: run this attempt with exactly this
    /// config, resuming from `resumeFrom`. `fencingEpoch` is the epoch given to
    /// ``FleetController/leadershipAcquired(fencingEpoch:at:)``.
    case assign(JobAssignment, reason: Reason)
    /// Write desired state `stopped` for the job on this node (or delete the key): the agent kills the
    /// attempt if it still runs. `attempt` is the attempt that was running there.
    case stop(jobID: String, nodeID: String, attempt: Int, reason: Reason)
    /// Write this assignment (desired state `stopped`, with `stopGraceSeconds`) at `<node>.<job>`: the agent sends
    /// SIGTERM and gives the trainer up to the grace to save a checkpoint and exit, then SIGKILL. A `stop` removes
    /// the key once the attempt has exited (or the core stopped waiting).
    case stopGracefully(JobAssignment, reason: Reason)
    /// Place no new jobs on the node. Recorded in the core's node state; the shell may mirror it.
    case cordon(nodeID: String, reason: Reason)
    /// The node takes new jobs again.
    case uncordon(nodeID: String, reason: Reason)
    /// Failed jobs that read the dataset are paused instead of restarted until an operator resumes it.
    case pauseRetries(dataset: String, reason: Reason)
    /// Jobs paused on the dataset restart.
    case resumeRetries(dataset: String, reason: Reason)
    /// Per-job config changes for this symptom stop fleet-wide: failing jobs are held instead.
    case freezeRemediation(Symptom, reason: Reason)
    /// Per-job config changes for this symptom are allowed again; held jobs restart.
    case unfreezeRemediation(Symptom, reason: Reason)
    /// Publish on `archon.v1.escalations.<level>` and to webhooks. `opened` and `escalated` page the
    /// incident's level; `updated`, `acknowledged` and `resolved` inform without paging.
    case publishEscalation(Escalation, reason: Reason)
    /// The submitted spec was refused, with every problem found; nothing was stored.
    case rejectJob(jobID: String, problems: [SpecProblem], reason: Reason)
    /// Call ``FleetController/timerFired(_:at:)`` with this id at `atMs` (replaces a timer with the same id).
    case scheduleTimer(TimerID, atMs: Int64)
    /// The timer with this id is no longer needed.
    case cancelTimer(TimerID)
    /// Store this finished job or resolved incident in the archive: it has left the hot state.
    case archive(ArchivedRecord)
    /// Count a runbook success figure (`/metrics`); nothing to perform.
    case measure(RunbookMeasure)
}

/// What leaves the hot state for the archive.
public enum ArchivedRecord: Codable, Sendable, Hashable {
    case job(JobRecord)
    case incident(Incident)
}

extension ControllerAction {
    /// The reason, for every action that has one.
    public var reason: Reason? {
        switch self {
        case .assign(_, let reason), .stop(_, _, _, let reason), .stopGracefully(_, let reason), .cordon(_, let reason), .uncordon(_, let reason),
            .pauseRetries(_, let reason), .resumeRetries(_, let reason), .freezeRemediation(_, let reason),
            .unfreezeRemediation(_, let reason), .publishEscalation(_, let reason), .rejectJob(_, _, let reason):
            reason
        case .scheduleTimer, .cancelTimer, .archive, .measure:
            nil
        }
    }
}

extension ControllerAction: CustomStringConvertible {
    /// One line for logs: what to do, then why.
    public var description: String {
        let what: String
        switch self {
        case .assign(let a, _):
            what = "assign \(a.spec.id) attempt \(a.attempt) to \(a.nodeID)\(a.resumeFrom.isEmpty ? "" : ", resume from \(a.resumeFrom)")"
        case .stop(let job, let node, let attempt, _):
            what = "stop \(job) attempt \(attempt) on \(node)"
        case .stopGracefully(let a, _):
            what = "stop \(a.spec.id) attempt \(a.attempt) on \(a.nodeID) with \(a.stopGraceSeconds)s to save a checkpoint"
        case .cordon(let node, _): what = "cordon \(node)"
        case .uncordon(let node, _): what = "uncordon \(node)"
        case .pauseRetries(let dataset, _): what = "pause retries on dataset \(dataset)"
        case .resumeRetries(let dataset, _): what = "resume retries on dataset \(dataset)"
        case .freezeRemediation(let symptom, _): what = "freeze config changes for \(symptom.rawValue)"
        case .unfreezeRemediation(let symptom, _): what = "unfreeze config changes for \(symptom.rawValue)"
        case .publishEscalation(let e, _): what = "publish \(e.kind.rawValue) \(e.incident.id) at \(e.incident.level.rawValue): \(e.incident.subject)"
        case .rejectJob(let job, let problems, _): what = "reject \(job) (\(problems.count) problem\(problems.count == 1 ? "" : "s"))"
        case .scheduleTimer(let id, let at): what = "schedule \(id) at \(Timestamp.iso8601(at))"
        case .cancelTimer(let id): what = "cancel \(id)"
        case .archive(.job(let job)): what = "archive job \(job.spec.id)"
        case .archive(.incident(let incident)): what = "archive incident \(incident.id)"
        case .measure(let measure): what = "measure \(measure)"
        }
        return reason.map { "\(what) — \($0)" } ?? what
    }
}
