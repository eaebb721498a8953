import ArchonModel

// A job's own incident, notices, and operator resolution.
extension FleetController {
    /// Opens or updates the job's incident with the runbook's template filled from its history.
    mutating func escalateJob(_ jobID: String, _ finding: Finding, level: EscalationLevel, severity: Severity, status: String, rule: String, at now: Int64, _ out: inout [ControllerAction]) {
        guard let job = state.jobs[jobID] else { return }
        var symptoms = jobSymptoms(job)
        if !job.history.contains(where: { $0.symptom == finding.symptom }) {
            symptoms.append("\(finding.symptom.title) — \(finding.evidence)")  // not from an attempt (never placed)
        }
        switch finding.symptom {
        case .datasetNotFound:
            let ready = datasets.filter { $0.status == .ready }.map(\.id)
            symptoms.append("dataset '\(job.config.dataset)' not found; ready datasets: \(ready.isEmpty ? "none" : ready.joined(separator: ", "))")
        case .permissionDenied:
            symptoms.append("security concern: permission denied for job \(jobID) (team '\(job.spec.team)'); check IAM roles and API key scopes")
        case .stuckQueued, .crash, .hang, .outOfMemory, .divergingLoss, .timeout, .dataCorruption, .nodeFault, .poorPerformance, .resourcePressure:
            break
        }
        let logTail = finding.logTail.isEmpty ? (job.history.last { $0.lastExit != nil }?.lastExit?.logTail ?? []) : finding.logTail
        let draft = IncidentDraft(
            dedupKey: "job:\(jobID)", cause: .job, level: level, severity: severity,
            subject: "Training Failure Escalation - \(jobID)",
            nodes: orderedUnique(job.history.map(\.nodeID)), jobs: [jobID], dataset: job.config.dataset,
            failureTimeMs: job.firstFailureMs > 0 ? job.firstFailureMs : finding.failureTimeMs,
            symptoms: symptoms, steps: job.remediation, stepsMerge: .replace,
            currentStatus: status, impact: impact(job, status: status),
            logTail: Array(logTail.suffix(policy.escalation.logTailLines)),
            history: jobTimeline(job), parentID: coveringFleetIncident(for: jobID)?.id ?? "", symptom: finding.symptom)
        var evidence = finding.evidence
        if let record = job.history.last(where: \.isOver), record.symptom == finding.symptom {
            evidence = "attempt \(record.attempt) on \(record.nodeID): \(evidence)"
        }
        let id = state.incidents.raise(
            draft, reason: Reason(finding.symptom, evidence: evidence, rule: rule),
            at: now, ladder: ladder, deadlines: &state.deadlines, out: &out)
        state.jobs[jobID]?.incidentID = id
    }

    /// Tells the job's open incident what the job does now (started again, completed, stopped).
    mutating func updateJobIncident(_ jobID: String, status: String, at now: Int64, _ out: inout [ControllerAction]) {
        guard let job = state.jobs[jobID], !job.incidentID.isEmpty, let incident = state.incidents[job.incidentID], incident.status != .resolved else { return }
        state.incidents.raise(
            IncidentDraft(
                dedupKey: incident.dedupKey, cause: incident.cause, level: incident.level, severity: incident.severity,
                subject: incident.subject, nodes: orderedUnique(job.history.map(\.nodeID)), jobs: [jobID],
                failureTimeMs: incident.failureTimeMs, steps: job.remediation, stepsMerge: .replace, currentStatus: status),
            reason: Reason(symptom: "job status", evidence: "job \(jobID): \(status)", rule: "an incident is updated as evidence arrives"),
            at: now, ladder: ladder, deadlines: &state.deadlines, out: &out)
    }

    /// Poor performance and resource pressure: an incident that informs, once per job and kind while open.
    mutating func notice(_ jobID: String, symptom: Symptom, key: String, evidence: String, rule: String, at now: Int64, _ out: inout [ControllerAction]) {
        guard var job = state.jobs[jobID], let index = job.history.indices.last else { return }
        guard job.history[index].signals.notices.insert(key).inserted else { return }
        state.jobs[jobID] = job
        let notices = policy.escalation.notices
        state.incidents.raise(
            IncidentDraft(
                dedupKey: "notice:\(jobID):\(key)", cause: .notice, level: notices.level, severity: notices.severity,
                subject: "Training Notice - \(jobID): \(symptom.title)", nodes: [job.nodeID], jobs: [jobID],
                dataset: job.config.dataset, failureTimeMs: now, symptoms: ["attempt \(job.attempt): \(evidence)"],
                currentStatus: "job keeps running; no restart (notify only)",
                impact: "job \(jobID) may waste compute or end with a poor model"),
            reason: Reason(symptom, evidence: evidence, rule: rule),
            at: now, ladder: ladder, deadlines: &state.deadlines, out: &out)
    }

    /// Who resolves an incident whose condition cleared by itself.
    static let automatic = "archon"

    /// The condition behind the job's own incident cleared (it completed, was stopped, started after being stuck, ran
    /// healthy long enough): the incident resolves itself with the reason, and the sinks hear `resolved`. With
    /// `notices`, the job's open notices close too. A job that failed for good keeps its incident open.
    mutating func autoResolveJob(_ jobID: String, because why: String, notices: Bool, at now: Int64, _ out: inout [ControllerAction]) {
        guard let job = state.jobs[jobID] else { return }
        if !job.incidentID.isEmpty, let incident = state.incidents[job.incidentID], incident.status != .resolved, incident.cause == .job {
            resolveIncident(incident.id, by: Self.automatic, rootCause: "auto-resolved: \(why)", at: now, &out)
        }
        guard notices else { return }
        for key in Set(job.history.flatMap(\.signals.notices)).sorted() {
            if let notice = state.incidents.open(forKey: "notice:\(jobID):\(key)") {
                resolveIncident(notice.id, by: Self.automatic, rootCause: "auto-resolved: \(why)", at: now, &out)
            }
        }
    }

    /// A notice whose trend recovered (e.g. memory back below the pressure threshold) resolves itself; the same
    /// trend later is a new notice.
    mutating func autoResolveNotice(_ jobID: String, key: String, because why: String, at now: Int64, _ out: inout [ControllerAction]) {
        guard var job = state.jobs[jobID], let index = job.history.indices.last, job.history[index].signals.notices.remove(key) != nil else { return }
        state.jobs[jobID] = job
        if let notice = state.incidents.open(forKey: "notice:\(jobID):\(key)") {
            resolveIncident(notice.id, by: Self.automatic, rootCause: "auto-resolved: \(why)", at: now, &out)
        }
    }

    /// Resolves an incident and what is attached to it. `repaired`: its cause was fixed, so the evidence it answered no
    /// longer counts (false for a storm that merely ended: its failures may belong to the next one).
    mutating func resolveIncident(_ id: String, by who: String, rootCause: String, repaired: Bool = true, at now: Int64, _ out: inout [ControllerAction]) {
        guard let incident = state.incidents[id], incident.status != .resolved else { return }
        state.incidents.resolve(id, by: who, rootCause: rootCause, at: now, deadlines: &state.deadlines, out: &out)
        if incident.parentID.isEmpty, let report = state.incidents[id].flatMap({ PostIncidentReport($0, targets: policy.escalation.quickFixTargets) }) {
            out.append(.measure(.incidentResolved(cause: incident.cause, timeToDetectMs: report.timeToDetectMs, timeToResolveMs: report.timeToResolveMs,
                                                  automatic: who == Self.automatic)))
        }
        for resolved in [id] + state.incidents.children(of: id).map(\.id) {
            state.deadlines.set(.archiveIncident(incidentID: resolved), at: now + policy.retention.finished.milliseconds, &out)
        }
        liftFreezes(of: id, by: who, at: now, &out)
        // The cause it answered is repaired: its evidence no longer counts, and a paused dataset is resumed.
        guard repaired else { return }
        switch incident.cause {
        case .badDataset:
            guard case .dataset(let dataset) = EvidenceScope(incident.dedupKey) else { return }
            if let record = state.datasets[dataset], record.retriesPaused, record.pausedByIncident == id {
                resumeDataset(dataset, by: who, at: now, &out)
            } else {
                clearEvidence(incident.dedupKey, at: now)
                let why = state.datasets[dataset].map { $0.retriesPaused ? "it is paused by \($0.pausedByIncident), not \(id)" : "its retries were not paused" } ?? "it is not registered"
                state.incidents.note(id, "dataset \(dataset) not resumed: \(why)", at: now)
            }
        case .badNode, .systemResource, .multiAgent, .security:
            clearEvidence(incident.dedupKey, at: now)
        case .job, .notice:
            break
        }
    }

    /// "attempt 2 on n1: out of memory — OOM-killed by the kernel (killed by signal 9)" per failed attempt.
    private func jobSymptoms(_ job: JobRecord) -> [String] {
        job.history.compactMap { attempt in
            guard let symptom = attempt.symptom else { return nil }
            let evidence = attempt.outcome.components(afterFirst: " — ")
            return "attempt \(attempt.attempt) on \(attempt.nodeID): \(symptom.title)\(evidence.isEmpty ? "" : " — \(evidence)")"
        }
    }

    private func impact(_ job: JobRecord, status: String) -> String {
        let progress = job.maxEpochSeen > 0 ? "reached epoch \(job.maxEpochSeen) of \(job.config.epochs)" : "reported no completed epoch"
        let team = job.spec.team.isEmpty ? "" : " (team \(job.spec.team))"
        return "training job \(job.spec.id)\(team) \(progress) in \(job.history.count) attempt\(job.history.count == 1 ? "" : "s") with \(job.restarts) restart\(job.restarts == 1 ? "" : "s")"
    }

    /// The job's history as timeline entries; failures read "detected …" (the post-incident review's time to detect).
    private func jobTimeline(_ job: JobRecord) -> [TimelineEntry] {
        var entries = [TimelineEntry(timeMs: job.submittedAtMs, text: "job \(job.spec.id) submitted")]
        for attempt in job.history {
            let change = attempt.configChange.isEmpty ? "" : " (\(attempt.configChange))"
            entries.append(TimelineEntry(timeMs: attempt.assignedAtMs, text: "attempt \(attempt.attempt) assigned to \(attempt.nodeID): \(attempt.action)\(change)"))
            if attempt.startedAtMs > 0 {
                entries.append(TimelineEntry(timeMs: attempt.startedAtMs, text: "attempt \(attempt.attempt) started"))
            }
            if attempt.isOver {
                let text = attempt.symptom.map { "detected \($0.title) on attempt \(attempt.attempt): \(attempt.outcome)" } ?? "attempt \(attempt.attempt) \(attempt.outcome)"
                entries.append(TimelineEntry(timeMs: attempt.endedAtMs, text: text))
            }
        }
        return entries.sorted { $0.timeMs < $1.timeMs }
    }
}

func orderedUnique(_ values: [String]) -> [String] {
    var seen: Set<String> = []
    return values.filter { !$0.isEmpty && seen.insert($0).inserted }
}

extension String {
    /// The text after the first `separator`, or "".
    func components(afterFirst separator: String) -> String {
        guard let range = range(of: separator) else { return "" }
        return String(self[range.upperBound...])
    }
}
