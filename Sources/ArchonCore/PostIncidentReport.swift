public import ArchonModel

/// The runbook's post-incident review of a resolved incident: what happened, root cause, resolution steps,
/// time to detect and time to resolve. ``markdown`` renders it.
public struct PostIncidentReport: Codable, Sendable, Hashable {
    public var incidentID: String
    public var subject: String
    public var cause: IncidentCause
    public var severity: Severity
    /// Level it had reached.
    public var level: EscalationLevel
    public var jobs: [String]
    public var nodes: [String]
    public var dataset: String
    public var symptoms: [String]
    /// What happened, oldest first.
    public var timeline: [TimelineEntry]
    public var rootCause: String
    /// Every step taken, with its outcome, then the resolution.
    public var resolutionSteps: [String]
    public var failureTimeMs: Int64
    /// First detection: the first "detected …" or "opened …" entry of the timeline from the failure on.
    public var detectedAtMs: Int64
    public var acknowledgedAtMs: Int64
    public var acknowledgedBy: String
    public var resolvedAtMs: Int64
    public var resolvedBy: String
    /// Detection − failure.
    public var timeToDetectMs: Int64
    /// Resolution − failure.
    public var timeToResolveMs: Int64
    /// The runbook symptom it was opened for, if the runbook's quick-fix table lists it; "" otherwise.
    public var runbookSymptom: String
    /// The quick-fix table's time for that symptom; 0 when none.
    public var quickFixTargetMs: Int64
    /// Resolved within that time; nil when there is no target.
    public var withinQuickFixTarget: Bool?

    /// nil while the incident is not resolved. `targets`: the runbook's quick-fix table in force.
    public init?(_ incident: Incident, targets: QuickFixTargets = QuickFixTargets()) {
        guard incident.status == .resolved else { return nil }
        incidentID = incident.id
        subject = incident.subject
        cause = incident.cause
        severity = incident.severity
        level = incident.level
        jobs = incident.jobs
        nodes = incident.nodes
        dataset = incident.dataset
        symptoms = incident.symptoms
        timeline = incident.timeline.sorted { $0.timeMs < $1.timeMs }
        rootCause = incident.rootCause.isEmpty ? "not recorded" : incident.rootCause
        resolutionSteps = incident.stepsTaken.map { step in
            var text = step.jobID.isEmpty ? step.action : "\(step.jobID) attempt \(step.attempt): \(step.action)"
            if !step.configChange.isEmpty { text += " (\(step.configChange))" }
            text += step.outcome.isEmpty ? " → no outcome recorded" : " → \(step.outcome)"
            return text
        }
        resolutionSteps.append("resolved by \(incident.resolvedBy.isEmpty ? "unknown" : incident.resolvedBy): \(rootCause)")
        let failure = incident.failureTimeMs > 0 ? incident.failureTimeMs : incident.openedAtMs
        failureTimeMs = failure
        detectedAtMs = timeline.first { $0.timeMs >= failure && ($0.text.hasPrefix("detected ") || $0.text.hasPrefix("opened ")) }?.timeMs
            ?? max(failure, incident.openedAtMs)
        acknowledgedAtMs = incident.acknowledgedAtMs
        acknowledgedBy = incident.acknowledgedBy
        resolvedAtMs = incident.resolvedAtMs
        resolvedBy = incident.resolvedBy
        timeToDetectMs = detectedAtMs - failure
        timeToResolveMs = max(0, incident.resolvedAtMs - failure)
        let target = incident.runbookSymptom.flatMap(Symptom.init(rawValue:)).flatMap(targets.target)
        runbookSymptom = target == nil ? "" : incident.runbookSymptom ?? ""
        quickFixTargetMs = target ?? 0
        withinQuickFixTarget = target.map { timeToResolveMs <= $0 }
    }

    /// The review as Markdown.
    public var markdown: String {
        var md = "# Post-incident review: \(subject)\n\n"
        md += "| | |\n|---|---|\n"
        md += "| Incident | \(incidentID) (\(cause.rawValue)) |\n"
        md += "| Severity | \(severity.rawValue) |\n"
        md += "| Highest level | \(level.rawValue) |\n"
        if !jobs.isEmpty { md += "| Jobs | \(jobs.joined(separator: ", ")) |\n" }
        if !nodes.isEmpty { md += "| Agents (nodes) | \(nodes.joined(separator: ", ")) |\n" }
        if !dataset.isEmpty { md += "| Dataset | \(dataset) |\n" }
        md += "| Time of failure | \(Timestamp.iso8601(failureTimeMs)) |\n"
        md += "| Detected | \(Timestamp.iso8601(detectedAtMs)) |\n"
        if acknowledgedAtMs > 0 { md += "| Acknowledged | \(Timestamp.iso8601(acknowledgedAtMs)) by \(acknowledgedBy) |\n" }
        md += "| Resolved | \(Timestamp.iso8601(resolvedAtMs)) by \(resolvedBy) |\n"
        md += "| Time to detect | \(Timestamp.duration(timeToDetectMs)) |\n"
        md += "| Time to resolve | \(Timestamp.duration(timeToResolveMs)) |\n"
        if let met = withinQuickFixTarget, let symptom = Symptom(rawValue: runbookSymptom) {
            md += "| Runbook quick-fix time (\(symptom.title)) | \(Timestamp.duration(quickFixTargetMs)): \(met ? "met" : "missed by \(Timestamp.duration(timeToResolveMs - quickFixTargetMs))") |\n"
        }
        md += "\n"
        md += "## What happened\n\n"
        for symptom in symptoms { md += "- \(symptom)\n" }
        if !symptoms.isEmpty { md += "\n" }
        md += "## Timeline\n\n"
        for entry in timeline { md += "- \(Timestamp.iso8601(entry.timeMs)) — \(entry.text)\n" }
        md += "\n## Root cause\n\n\(rootCause)\n\n"
        md += "## Resolution steps\n\n"
        for (i, step) in resolutionSteps.enumerated() { md += "\(i + 1). \(step)\n" }
        return md
    }
}
