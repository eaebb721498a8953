public import ArchonModel

/// A runbook success figure (the runbook's post-incident review: time to detect, time to resolve, and its quick-fix
/// table): the core says what happened, the shell counts it in `/metrics`. Nothing to perform.
public enum RunbookMeasure: Codable, Sendable, Hashable {
    /// A job's series of failures ended. `fixed`: an attempt with the remediation applied ran healthy
    /// (`escalation.resolveAfterHealthy` of progress) or completed, `timeToFixMs` after the symptom's first failure
    /// in the series, counted to that attempt's start (when the fix was in place). `failed`: no automatic step was
    /// left. `stopped`: an operator stopped the job first. One measure per distinct symptom of the series.
    case failureSeriesEnded(symptom: Symptom, outcome: FixOutcome, timeToFixMs: Int64, targetMs: Int64?)
    /// An incident (not one attached to a fleet incident) was resolved.
    case incidentResolved(cause: IncidentCause, timeToDetectMs: Int64, timeToResolveMs: Int64, automatic: Bool)
}

/// How a job's series of failures ended.
public enum FixOutcome: String, Codable, Sendable, CaseIterable {
    case fixed
    case failed
    case stopped
}

/// The runbook's quick-fix table: how long fixing each issue should take (`escalation.quickFixTargets`).
public struct QuickFixTargets: Codable, Sendable, Hashable {
    public var outOfMemory = PolicyDuration.minutes(5)
    public var datasetNotFound = PolicyDuration.minutes(2)
    public var divergingLoss = PolicyDuration.minutes(10)
    public var timeout = PolicyDuration.minutes(5)
    public var permissionDenied = PolicyDuration.minutes(10)

    public init() {}

    /// The target for a symptom, in milliseconds; nil for one the table does not list.
    public func target(_ symptom: Symptom) -> Int64? {
        switch symptom {
        case .outOfMemory: outOfMemory.milliseconds
        case .datasetNotFound: datasetNotFound.milliseconds
        case .divergingLoss: divergingLoss.milliseconds
        case .timeout: timeout.milliseconds
        case .permissionDenied: permissionDenied.milliseconds
        case .stuckQueued, .crash, .hang, .dataCorruption, .nodeFault, .poorPerformance, .resourcePressure: nil
        }
    }
}

extension FleetController {
    /// The job's current series of failures ended (`outcome`), its fix in place since `fixedAtMs`: one measure per
    /// distinct symptom in it, against the runbook's quick-fix target. A fixed series is over: the next failure
    /// starts a new one.
    mutating func endFailureSeries(_ jobID: String, _ outcome: FixOutcome, fixedAtMs: Int64, _ out: inout [ControllerAction]) {
        guard let job = state.jobs[jobID], job.firstFailureMs > 0 else { return }
        var first: [(Symptom, Int64)] = []
        for attempt in job.history where attempt.isOver && attempt.endedAtMs >= job.firstFailureMs {
            guard let symptom = attempt.symptom, !first.contains(where: { $0.0 == symptom }) else { continue }
            first.append((symptom, first.isEmpty ? job.firstFailureMs : attempt.endedAtMs))
        }
        if first.isEmpty, let symptom = job.history.last(where: { $0.symptom != nil })?.symptom { first = [(symptom, job.firstFailureMs)] }
        for (symptom, since) in first {
            out.append(.measure(.failureSeriesEnded(symptom: symptom, outcome: outcome, timeToFixMs: Swift.max(0, fixedAtMs - since),
                                                    targetMs: policy.escalation.quickFixTargets.target(symptom))))
        }
        if outcome == .fixed { update(jobID) { $0.firstFailureMs = 0 } }
    }
}
