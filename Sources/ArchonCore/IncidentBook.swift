public import ArchonModel

/// What a ladder or a fleet rule wants an incident to say. Raised against the incident open for its
/// `dedupKey`, it updates that incident instead of opening another.
struct IncidentDraft: Sendable {
    enum StepsMerge: Sendable {
        /// The draft holds every step (a job's own incident).
        case replace
        /// The draft holds new steps only (a fleet incident).
        case append
    }

    var dedupKey: String
    var cause: IncidentCause
    var level: EscalationLevel
    var severity: Severity
    var subject: String
    var nodes: [String] = []
    var jobs: [String] = []
    var dataset: String = ""
    var failureTimeMs: Int64
    var symptoms: [String] = []
    var steps: [RemediationStep] = []
    var stepsMerge = StepsMerge.append
    var currentStatus = ""
    var impact = ""
    var logTail: [String] = []
    /// Timeline entries from before the incident (a job's failures), used when it opens.
    var history: [TimelineEntry] = []
    /// Open it inside this fleet incident, its pages inhibited.
    var parentID = ""
    /// The runbook symptom it is opened for (see ``Incident/runbookSymptom``).
    var symptom: Symptom?
}

/// Every incident, one open per cause: opening, updating, climbing the levels, acknowledging, resolving.
///
/// An incident inside a fleet incident (`parentID` set) is kept and updated but never pages and never climbs.
/// Notices (cause `.notice`) page once and never climb.
public struct IncidentBook: Codable, Sendable, Hashable {
    /// Incidents by id (the hot state: archived ones are gone).
    public private(set) var incidents = EntityMap<Incident>()
    /// Dedup key → id of the incident open (or acknowledged) for it. Derived from the incidents.
    public private(set) var openKeys: [String: String] = [:]
    /// Number of the next incident id (`INC-<n>`).
    public internal(set) var nextNumber = 1

    /// No incidents.
    public init() {}

    /// Every incident, oldest first.
    public var all: [Incident] {
        incidents.values.sorted { (Self.number($0.id), $0.id) < (Self.number($1.id), $1.id) }
    }

    static func number(_ id: String) -> Int { Int(id.dropFirst(4)) ?? 0 }

    /// Restores an incident read from storage (not a change); the dedup index follows it.
    mutating func load(_ incident: Incident) {
        incidents.load(incident.id, incident)
        if incident.status != .resolved { openKeys[incident.dedupKey] = incident.id }
        nextNumber = Swift.max(nextNumber, Self.number(incident.id) + 1)
    }

    /// Removes a resolved incident from the hot state (it goes to the archive); returns it.
    mutating func archive(_ id: String) -> Incident? {
        guard let incident = incidents[id], incident.status == .resolved else { return nil }
        incidents[id] = nil
        return incident
    }

    mutating func takeChanged() -> Set<String> { incidents.takeChanged() }

    private enum CodingKeys: String, CodingKey { case incidents, nextNumber }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        for incident in try c.decode([String: Incident].self, forKey: .incidents).values { load(incident) }
        nextNumber = try c.decode(Int.self, forKey: .nextNumber)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(incidents, forKey: .incidents)
        try c.encode(nextNumber, forKey: .nextNumber)
    }

    /// The incident with this id.
    public subscript(id: String) -> Incident? { incidents[id] }

    /// The incident open or acknowledged for a dedup key.
    public func open(forKey key: String) -> Incident? { openKeys[key].flatMap { incidents[$0] } }

    /// Incidents attached to `id`.
    public func children(of id: String) -> [Incident] { all.filter { $0.parentID == id } }

    private func publish(_ kind: Escalation.Kind, _ incident: Incident, at now: Int64, reason: Reason, _ out: inout [ControllerAction]) {
        out.append(.publishEscalation(Escalation(kind: kind, incident: incident, timeMs: now, reason: reason.description), reason: reason))
    }

    /// Opens an incident for the draft's key, or merges the draft into the one open; returns its id.
    /// An update is published only when it adds something.
    @discardableResult
    mutating func raise(
        _ draft: IncidentDraft, reason: Reason, at now: Int64, ladder: EscalationLadder,
        deadlines: inout Deadlines, out: inout [ControllerAction]
    ) -> String {
        if let id = openKeys[draft.dedupKey], var incident = incidents[id] {
            var changed: [String] = []
            // Sets, not Array.contains: a fleet incident can list thousands of jobs.
            var nodes = Set(incident.nodes), jobs = Set(incident.jobs)
            for node in draft.nodes where !node.isEmpty && nodes.insert(node).inserted {
                incident.nodes.append(node)
                changed.append("node \(node)")
            }
            for job in draft.jobs where jobs.insert(job).inserted {
                incident.jobs.append(job)
                changed.append("job \(job)")
            }
            if incident.dataset.isEmpty, !draft.dataset.isEmpty { incident.dataset = draft.dataset }
            var symptoms = Set(incident.symptoms)
            for symptom in draft.symptoms where symptoms.insert(symptom).inserted {
                incident.symptoms.append(symptom)
                changed.append("symptom")
            }
            switch draft.stepsMerge {
            case .replace:
                if incident.stepsTaken != draft.steps {
                    incident.stepsTaken = draft.steps
                    changed.append("steps")
                }
            case .append:
                var steps = Set(incident.stepsTaken)
                for step in draft.steps where steps.insert(step).inserted {
                    incident.stepsTaken.append(step)
                    changed.append("steps")
                }
            }
            if !draft.currentStatus.isEmpty, draft.currentStatus != incident.currentStatus {
                incident.currentStatus = draft.currentStatus
                changed.append("status")
            }
            if !draft.impact.isEmpty { incident.impact = draft.impact }
            if !draft.logTail.isEmpty { incident.logTail = draft.logTail }
            let raiseSeverity = Self.rank(draft.severity) > Self.rank(incident.severity)
            if raiseSeverity {
                incident.severity = draft.severity
                changed.append("severity")
            }
            // A higher level or severity always pages, acknowledged or not: what the acknowledger took on got worse.
            let raiseLevel = draft.level > incident.level
            guard !changed.isEmpty || raiseLevel else { return id }

            let inhibited = !incident.parentID.isEmpty
            if (raiseLevel || raiseSeverity), !inhibited, incident.cause != .notice {
                let from = incident.level
                deadlines.cancel(.responseDue(incidentID: id, level: from), &out)
                if incident.status == .acknowledged {
                    deadlines.cancel(.ackExpires(incidentID: id), &out)
                    incident.status = .open
                    incident.timeline.append(TimelineEntry(timeMs: now, text: "acknowledgement by \(incident.acknowledgedBy) superseded: it got worse"))
                }
                incident.level = Swift.max(incident.level, draft.level)
                let what = raiseLevel ? "escalated to \(ladder.name(incident.level))" : "severity raised to \(incident.severity.rawValue) at \(ladder.name(incident.level))"
                incident.timeline.append(TimelineEntry(timeMs: now, text: "\(what): \(reason)"))
                page(.escalated, &incident, reason: reason, grouping: true, clockFrom: now, at: now, ladder: ladder, deadlines: &deadlines, out: &out)
                incidents[id] = incident
            } else if raiseLevel {
                // Inside a fleet incident, or a notice: the level is recorded, nobody is paged.
                incident.level = draft.level
                incident.timeline.append(TimelineEntry(timeMs: now, text: "escalated to \(ladder.name(draft.level)): \(reason)"))
                incidents[id] = incident
                if !inhibited, !incident.openingPageHeld { publish(.escalated, incident, at: now, reason: reason, &out) }
            } else {
                incident.timeline.append(TimelineEntry(timeMs: now, text: "updated: \(reason)"))
                incidents[id] = incident
                if !inhibited, !incident.openingPageHeld { publish(.updated, incident, at: now, reason: reason, &out) }
            }
            return id
        }

        let id = "INC-\(nextNumber)"
        nextNumber += 1
        var incident = Incident(
            id: id, dedupKey: draft.dedupKey, cause: draft.cause, level: draft.level, severity: draft.severity,
            subject: draft.subject, nodes: draft.nodes.filter { !$0.isEmpty }, jobs: draft.jobs, dataset: draft.dataset,
            failureTimeMs: draft.failureTimeMs, openedAtMs: now, symptoms: draft.symptoms, stepsTaken: draft.steps,
            currentStatus: draft.currentStatus, impact: draft.impact, logTail: draft.logTail,
            timeline: draft.history, parentID: draft.parentID
        )
        incident.runbookSymptom = draft.symptom?.rawValue
        if draft.parentID.isEmpty {
            incident.timeline.append(TimelineEntry(timeMs: now, text: "opened at \(ladder.name(draft.level)): \(reason)"))
            page(.opened, &incident, reason: reason, grouping: true, clockFrom: now, at: now, ladder: ladder, deadlines: &deadlines, out: &out)
        } else {
            incident.timeline.append(TimelineEntry(timeMs: now, text: "opened inside \(draft.parentID); pages inhibited: \(reason)"))
        }
        incidents[id] = incident
        openKeys[draft.dedupKey] = id
        if !draft.parentID.isEmpty, var parent = incidents[draft.parentID] {
            parent.timeline.append(TimelineEntry(timeMs: now, text: "\(id) (\(incident.subject)) attached"))
            incidents[draft.parentID] = parent
        }
        return id
    }

    /// Pages `kind` (`opened` or `escalated`) for the incident at its level now, or holds the page when a silence
    /// matches or (`grouping`) a job's page waits for a fleet incident that may explain it; a held opening page stays
    /// an opening page. Paged, the level's response is due `responseTime` after `clockFrom`, when it climbs unless
    /// acknowledged (notices and the top level never climb). The caller stores the incident.
    private func page(
        _ kind: Escalation.Kind, _ incident: inout Incident, reason: Reason, grouping: Bool, clockFrom: Int64, at now: Int64,
        ladder: EscalationLadder, deadlines: inout Deadlines, out: inout [ControllerAction]
    ) {
        let kind = incident.openingPageHeld ? .opened : kind
        if let hold = ladder.hold(incident, grouping: grouping, at: now), hold.untilMs > now {
            if incident.heldPage?.untilMs != hold.untilMs || incident.heldPage?.by != hold.by {
                let why = hold.by == HeldPage.grouping
                    ? "waiting for a fleet incident that may explain it (escalation.groupWait)"
                    : "silenced by \(hold.by)\(ladder.silences.first { $0.id == hold.by }.map { ": \($0.reason)" } ?? "")"
                incident.timeline.append(TimelineEntry(timeMs: now, text: "page to \(ladder.name(incident.level)) held until \(Timestamp.iso8601(hold.untilMs)): \(why)"))
            }
            incident.heldPage = HeldPage(kind: kind, untilMs: hold.untilMs, by: hold.by, symptom: reason.symptom, evidence: reason.evidence, rule: reason.rule)
            incident.respondByMs = 0
            deadlines.set(.pageHeld(incidentID: incident.id), at: hold.untilMs, &out)
            return
        }
        _ = dropHeldPage(&incident, deadlines: &deadlines, out: &out)
        if incident.cause != .notice {
            incident.respondByMs = ladder.respondBy(incident.level, from: clockFrom)
            if incident.level.next != nil {
                deadlines.set(.responseDue(incidentID: incident.id, level: incident.level), at: incident.respondByMs, &out)
            }
        }
        publish(kind, incident, at: now, reason: reason, &out)
    }

    /// Drops a held page (the incident was acknowledged, attached or resolved); returns whether its opening page was
    /// held, i.e. the sinks never heard of it.
    private func dropHeldPage(_ incident: inout Incident, deadlines: inout Deadlines, out: inout [ControllerAction]) -> Bool {
        let neverPaged = incident.openingPageHeld
        if incident.heldPage != nil {
            incident.heldPage = nil
            deadlines.cancel(.pageHeld(incidentID: incident.id), &out)
        }
        return neverPaged
    }

    /// A held page is due: sent, unless the incident was acknowledged, attached or resolved meanwhile, or another
    /// silence holds it longer.
    mutating func releaseHeldPage(_ id: String, at now: Int64, ladder: EscalationLadder, deadlines: inout Deadlines, out: inout [ControllerAction]) {
        guard var incident = incidents[id], let held = incident.heldPage, incident.status == .open, incident.parentID.isEmpty else { return }
        let reason = Reason(symptom: held.symptom, evidence: held.evidence, rule: held.rule)
        page(held.kind, &incident, reason: reason, grouping: false, clockFrom: now, at: now, ladder: ladder, deadlines: &deadlines, out: &out)
        if incident.heldPage == nil {
            incident.timeline.append(TimelineEntry(timeMs: now, text: "held page sent to \(ladder.name(incident.level)) (\(held.by == HeldPage.grouping ? "no fleet incident explains it" : "silence \(held.by) over"))"))
        }
        incidents[id] = incident
    }

    /// Every incident whose page `silenceID` holds, for when the silence ends early.
    func heldBy(_ silenceID: String) -> [String] {
        openKeys.values.filter { incidents[$0]?.heldPage?.by == silenceID }.sorted()
    }

    /// Puts `childID` inside the fleet incident `parentID`: it stops climbing and paging, and says so once.
    mutating func attach(_ childID: String, to parentID: String, at now: Int64, deadlines: inout Deadlines, out: inout [ControllerAction]) {
        guard var child = incidents[childID], var parent = incidents[parentID], childID != parentID,
            child.status != .resolved, child.parentID.isEmpty, child.cause != .notice
        else { return }
        deadlines.cancel(.responseDue(incidentID: childID, level: child.level), &out)
        let neverPaged = dropHeldPage(&child, deadlines: &deadlines, out: &out)
        child.parentID = parentID
        child.respondByMs = 0
        let reason = Reason(
            symptom: parent.subject,
            evidence: "\(childID) is explained by \(parentID) (\(parent.cause.rawValue))",
            rule: "per-job incidents inside a fleet incident are inhibited, not lost")
        child.timeline.append(TimelineEntry(timeMs: now, text: "attached to \(parentID); pages inhibited"))
        parent.timeline.append(TimelineEntry(timeMs: now, text: "\(childID) (\(child.subject)) attached"))
        incidents[childID] = child
        incidents[parentID] = parent
        if !neverPaged { publish(.updated, child, at: now, reason: reason, &out) }
    }

    /// The current level did not acknowledge in time: the incident moves up one level.
    mutating func climb(_ id: String, from level: EscalationLevel, at now: Int64, ladder: EscalationLadder, deadlines: inout Deadlines, out: inout [ControllerAction]) {
        guard var incident = incidents[id], incident.status == .open, incident.parentID.isEmpty, incident.cause != .notice,
            incident.level == level, incident.respondByMs > 0, now >= incident.respondByMs, let next = level.next
        else { return }
        let reason = Reason(
            symptom: "incident not acknowledged",
            evidence: "\(id) was not acknowledged by \(ladder.name(level)) within \(Timestamp.duration(ladder.responseTime(level)))",
            rule: "escalation.levels.\(level.rawValue).responseTime")
        incident.level = next
        incident.timeline.append(TimelineEntry(timeMs: now, text: "escalated to \(ladder.name(next)): \(reason.evidence)"))
        // From the missed deadline, so a late timer does not stretch the schedule.
        page(.escalated, &incident, reason: reason, grouping: false, clockFrom: incident.respondByMs, at: now, ladder: ladder, deadlines: &deadlines, out: &out)
        incidents[id] = incident
    }

    /// Someone owns it now: the climb stops, until `timeoutMs` later (0 = never) when the acknowledgement expires.
    mutating func acknowledge(_ id: String, by who: String, timeoutMs: Int64, at now: Int64, deadlines: inout Deadlines, out: inout [ControllerAction]) {
        guard var incident = incidents[id], incident.status == .open else { return }
        deadlines.cancel(.responseDue(incidentID: id, level: incident.level), &out)
        let neverPaged = dropHeldPage(&incident, deadlines: &deadlines, out: &out)
        if timeoutMs > 0, incident.parentID.isEmpty, incident.cause != .notice {
            deadlines.set(.ackExpires(incidentID: id), at: now + timeoutMs, &out)
        }
        incident.status = .acknowledged
        incident.acknowledgedAtMs = now
        incident.acknowledgedBy = who
        incident.respondByMs = 0
        incident.timeline.append(TimelineEntry(timeMs: now, text: "acknowledged by \(who) at \(incident.level.rawValue)"))
        incidents[id] = incident
        let reason = Reason(symptom: "incident acknowledged", evidence: "\(who) acknowledged \(id) at \(incident.level.rawValue)", rule: "acknowledging stops the climb")
        if incident.parentID.isEmpty, !neverPaged { publish(.acknowledged, incident, at: now, reason: reason, &out) }
    }

    /// The acknowledgement expired and the incident is still open: it pages its level again, and climbs from there
    /// if nobody acknowledges (PagerDuty's acknowledgement timeout).
    mutating func acknowledgementExpired(_ id: String, timeoutMs: Int64, at now: Int64, ladder: EscalationLadder, deadlines: inout Deadlines, out: inout [ControllerAction]) {
        guard var incident = incidents[id], incident.status == .acknowledged, incident.parentID.isEmpty else { return }
        let reason = Reason(
            symptom: "acknowledgement expired",
            evidence: "\(id) was acknowledged by \(incident.acknowledgedBy) \(Timestamp.duration(now - incident.acknowledgedAtMs)) ago and is still open",
            rule: "escalation.ackTimeout \(Timestamp.duration(timeoutMs)): page \(ladder.name(incident.level)) again")
        incident.status = .open
        incident.timeline.append(TimelineEntry(timeMs: now, text: "acknowledgement by \(incident.acknowledgedBy) expired: paging \(ladder.name(incident.level)) again"))
        page(.escalated, &incident, reason: reason, grouping: false, clockFrom: now, at: now, ladder: ladder, deadlines: &deadlines, out: &out)
        incidents[id] = incident
    }

    /// Closes it (and everything attached to it); its dedup key is free again.
    mutating func resolve(_ id: String, by who: String, rootCause: String, at now: Int64, deadlines: inout Deadlines, out: inout [ControllerAction]) {
        guard var incident = incidents[id], incident.status != .resolved else { return }
        deadlines.cancel(.responseDue(incidentID: id, level: incident.level), &out)
        deadlines.cancel(.ackExpires(incidentID: id), &out)
        let neverPaged = dropHeldPage(&incident, deadlines: &deadlines, out: &out)
        incident.status = .resolved
        incident.resolvedAtMs = now
        incident.resolvedBy = who
        incident.rootCause = rootCause
        incident.respondByMs = 0
        incident.timeline.append(TimelineEntry(timeMs: now, text: "resolved by \(who): \(rootCause.isEmpty ? "no root cause given" : rootCause)"))
        incidents[id] = incident
        if openKeys[incident.dedupKey] == id { openKeys.removeValue(forKey: incident.dedupKey) }
        let reason = Reason(symptom: "incident resolved", evidence: "\(who) resolved \(id)", rule: rootCause.isEmpty ? "operator resolution" : "root cause: \(rootCause)")
        if incident.parentID.isEmpty, !neverPaged { publish(.resolved, incident, at: now, reason: reason, &out) }
        for child in children(of: id) where child.status != .resolved {
            resolve(child.id, by: who, rootCause: "resolved with \(id): \(rootCause)", at: now, deadlines: &deadlines, out: &out)
        }
    }

    /// Adds a timeline line without publishing.
    mutating func note(_ id: String, _ text: String, at now: Int64) {
        incidents[id]?.timeline.append(TimelineEntry(timeMs: now, text: text))
    }

    static func rank(_ severity: Severity) -> Int {
        switch severity {
        case .info: 0
        case .warning: 1
        case .high: 2
        case .critical: 3
        }
    }
}
