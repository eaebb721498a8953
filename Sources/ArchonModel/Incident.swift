/// On-call levels of the runbook.
public enum EscalationLevel: String, Codable, Sendable, CaseIterable, Comparable {
    /// ML Ops, respond within 15 min.
    case l1 = "L1"
    /// Senior ML Engineer, 1 h.
    case l2 = "L2"
    /// Platform Engineering, 2 h.
    case l3 = "L3"
    /// VP Engineering, 4 h.
    case l4 = "L4"

    public var rank: Int {
        switch self {
        case .l1: 1
        case .l2: 2
        case .l3: 3
        case .l4: 4
        }
    }

    /// The level above, or nil at the top.
    public var next: EscalationLevel? {
        switch self {
        case .l1: .l2
        case .l2: .l3
        case .l3: .l4
        case .l4: nil
        }
    }

    public static func < (a: EscalationLevel, b: EscalationLevel) -> Bool { a.rank < b.rank }
}

public enum Severity: String, Codable, Sendable, CaseIterable {
    case info
    case warning
    case high
    case critical
}

/// What an incident is about; the first part of its dedup key.
public enum IncidentCause: String, Codable, Sendable, CaseIterable {
    /// One job could not be fixed automatically.
    case job
    case badNode = "bad_node"
    case badDataset = "bad_dataset"
    case systemResource = "system_resource"
    case multiAgent = "multi_agent"
    case security
    /// Informational: poor performance, resource pressure.
    case notice
}

public enum IncidentStatus: String, Codable, Sendable, CaseIterable {
    case open
    case acknowledged
    case resolved
}

/// One thing the fleet did about a job, and how it turned out.
public struct RemediationStep: Codable, Sendable, Hashable {
    public var timeMs: Int64
    public var jobID: String
    public var attempt: Int
    public var failureClass: FailureClass
    /// e.g. "restart with batch size halved".
    public var action: String
    /// e.g. "batchSize 64 -> 32, gradientAccumulationSteps 1 -> 2".
    public var configChange: String
    /// e.g. "failed again: out of memory", "completed"; empty while pending.
    public var outcome: String

    public init(timeMs: Int64, jobID: String, attempt: Int, failureClass: FailureClass, action: String, configChange: String = "", outcome: String = "") {
        self.timeMs = timeMs
        self.jobID = jobID
        self.attempt = attempt
        self.failureClass = failureClass
        self.action = action
        self.configChange = configChange
        self.outcome = outcome
    }
}

/// One entry of an incident's timeline.
public struct TimelineEntry: Codable, Sendable, Hashable {
    public var timeMs: Int64
    public var text: String

    public init(timeMs: Int64, text: String) {
        self.timeMs = timeMs
        self.text = text
    }
}

/// An incident: one per cause (`dedupKey`), updated as evidence arrives.
/// Its fields are the runbook's escalation template.
public struct Incident: Codable, Sendable, Hashable {
    public var id: String
    public var dedupKey: String
    public var cause: IncidentCause
    public var level: EscalationLevel
    public var severity: Severity
    public var status: IncidentStatus
    /// "Training Failure Escalation - <job>" (or the node / dataset).
    public var subject: String
    public var nodes: [String]
    public var jobs: [String]
    public var dataset: String
    public var failureTimeMs: Int64
    public var openedAtMs: Int64
    public var acknowledgedAtMs: Int64
    public var resolvedAtMs: Int64
    public var symptoms: [String]
    public var stepsTaken: [RemediationStep]
    public var currentStatus: String
    public var impact: String
    public var logTail: [String]
    public var rootCause: String
    public var timeline: [TimelineEntry]
    /// Fleet incident this one is attached to; its pages are inhibited.
    public var parentID: String
    public var acknowledgedBy: String
    public var resolvedBy: String
    /// When the current level must have acknowledged before it climbs; 0 = never.
    public var respondByMs: Int64
    /// A page not sent yet (grouping wait or silence); nil when none is held.
    public var heldPage: HeldPage?
    /// The runbook symptom it was opened for (`outOfMemory`, `permissionDenied`, …), whose quick-fix time its
    /// resolution is measured against; nil for causes the runbook's table does not list.
    public var runbookSymptom: String?

    public init(
        id: String,
        dedupKey: String,
        cause: IncidentCause,
        level: EscalationLevel,
        severity: Severity,
        status: IncidentStatus = .open,
        subject: String,
        nodes: [String] = [],
        jobs: [String] = [],
        dataset: String = "",
        failureTimeMs: Int64 = 0,
        openedAtMs: Int64 = 0,
        acknowledgedAtMs: Int64 = 0,
        resolvedAtMs: Int64 = 0,
        symptoms: [String] = [],
        stepsTaken: [RemediationStep] = [],
        currentStatus: String = "",
        impact: String = "",
        logTail: [String] = [],
        rootCause: String = "",
        timeline: [TimelineEntry] = [],
        parentID: String = "",
        acknowledgedBy: String = "",
        resolvedBy: String = "",
        respondByMs: Int64 = 0
    ) {
        self.id = id
        self.dedupKey = dedupKey
        self.cause = cause
        self.level = level
        self.severity = severity
        self.status = status
        self.subject = subject
        self.nodes = nodes
        self.jobs = jobs
        self.dataset = dataset
        self.failureTimeMs = failureTimeMs
        self.openedAtMs = openedAtMs
        self.acknowledgedAtMs = acknowledgedAtMs
        self.resolvedAtMs = resolvedAtMs
        self.symptoms = symptoms
        self.stepsTaken = stepsTaken
        self.currentStatus = currentStatus
        self.impact = impact
        self.logTail = logTail
        self.rootCause = rootCause
        self.timeline = timeline
        self.parentID = parentID
        self.acknowledgedBy = acknowledgedBy
        self.resolvedBy = resolvedBy
        self.respondByMs = respondByMs
    }
}

extension Incident {
    /// Its opening page is held: the sinks have not heard of it, so they hear no update or resolution either.
    public var openingPageHeld: Bool { heldPage?.kind == .opened }
}

/// A page the controller holds back: a job's page waiting `escalation.groupWait` for the fleet incident that may
/// explain it, or any page while a silence matches. Sent at `untilMs` if it is still due then.
public struct HeldPage: Codable, Sendable, Hashable {
    /// `opened` (nobody was paged yet) or `escalated`.
    public var kind: Escalation.Kind
    public var untilMs: Int64
    /// ``grouping``, or the id of the silence that holds it.
    public var by: String
    /// `by` for a job's page waiting `escalation.groupWait`.
    public static let grouping = "grouping"
    /// Why the page is due: the reason it will carry.
    public var symptom: String
    public var evidence: String
    public var rule: String

    public init(kind: Escalation.Kind, untilMs: Int64, by: String, symptom: String, evidence: String, rule: String) {
        self.kind = kind
        self.untilMs = untilMs
        self.by = by
        self.symptom = symptom
        self.evidence = evidence
        self.rule = rule
    }
}

/// A silence (or maintenance window): incidents it matches are recorded, updated and listed as usual, but page
/// nobody from `startsAtMs` until `endsAtMs`; one still unacknowledged when it ends pages then. Every matcher given
/// must match; at least one is given.
public struct Silence: Codable, Sendable, Hashable {
    public var id: String
    /// The incident lists this node among its agents ("" = any).
    public var node: String
    /// The incident lists this job ("" = any).
    public var job: String
    /// The incident's dataset ("" = any).
    public var dataset: String
    /// The incident's cause (nil = any).
    public var cause: IncidentCause?
    public var startsAtMs: Int64
    public var endsAtMs: Int64
    public var reason: String
    public var createdBy: String
    public var createdAtMs: Int64

    public init(id: String, node: String = "", job: String = "", dataset: String = "", cause: IncidentCause? = nil,
                startsAtMs: Int64, endsAtMs: Int64, reason: String, createdBy: String = "", createdAtMs: Int64 = 0) {
        self.id = id
        self.node = node
        self.job = job
        self.dataset = dataset
        self.cause = cause
        self.startsAtMs = startsAtMs
        self.endsAtMs = endsAtMs
        self.reason = reason
        self.createdBy = createdBy
        self.createdAtMs = createdAtMs
    }

    /// Whether it silences now.
    public func isActive(at now: Int64) -> Bool { startsAtMs <= now && now < endsAtMs }

    /// Whether every matcher it has matches the incident.
    public func matches(_ incident: Incident) -> Bool {
        (node.isEmpty || incident.nodes.contains(node)) && (job.isEmpty || incident.jobs.contains(job))
            && (dataset.isEmpty || incident.dataset == dataset) && (cause.map { $0 == incident.cause } ?? true)
    }

    /// "node=n3 cause=bad_node"; "" when it has none.
    public var matchers: String { Self.matchers(node: node, job: job, dataset: dataset, cause: cause?.rawValue ?? "") }

    /// "node=n3 cause=bad_node" from matchers as text ("" = not given): the one wording, for the core and the CLI.
    public static func matchers(node: String, job: String, dataset: String, cause: String) -> String {
        [("node", node), ("job", job), ("dataset", dataset), ("cause", cause)].filter { !$0.1.isEmpty }.map { "\($0.0)=\($0.1)" }
            .joined(separator: " ")
    }
}

/// A change to an incident, published on `archon.v1.escalations.<level>`.
public struct Escalation: Codable, Sendable, Hashable {
    public enum Kind: String, Codable, Sendable, CaseIterable {
        /// New incident: page its level.
        case opened
        /// More evidence, no new page.
        case updated
        /// Not acknowledged in time: page the next level.
        case escalated
        case acknowledged
        case resolved
    }

    public var kind: Kind
    public var incident: Incident
    public var timeMs: Int64
    public var reason: String

    public init(kind: Kind, incident: Incident, timeMs: Int64, reason: String = "") {
        self.kind = kind
        self.incident = incident
        self.timeMs = timeMs
        self.reason = reason
    }
}
