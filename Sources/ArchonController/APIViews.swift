public import ArchonCore
public import ArchonModel

/// The JSON the API and `archon … --json` show. Field names are stable: scripts depend on them.
public struct JobView: Codable, Sendable, Equatable {
    public var id: String
    public var name: String
    public var team: String
    /// queued, running, completed, failed, paused, stopped.
    public var status: String
    public var statusDetail: String
    public var node: String
    public var attempt: Int
    public var config: TrainingConfig
    public var history: [AttemptView]
    public var lastMetrics: EpochMetrics?
    public var incident: String
    public var submittedAt: Int64
    /// The checkpoints the agents keep for it, oldest first: node, attempt, storage and SHA-256 of each.
    public var checkpoints: [CheckpointRecord]

    public init(_ job: JobRecord) {
        id = job.spec.id
        name = job.spec.name
        team = job.spec.team
        status = job.status.rawValue
        statusDetail = job.statusDetail
        node = job.current?.nodeID ?? job.nodeID
        attempt = job.attempt
        config = job.config
        history = job.history.map(AttemptView.init)
        lastMetrics = job.history.reversed().lazy.compactMap(\.lastMetrics).first
        incident = job.incidentID
        submittedAt = job.submittedAtMs
        checkpoints = job.checkpoints
    }
}

/// One attempt of a job.
public struct AttemptView: Codable, Sendable, Equatable {
    public var attempt: Int
    public var node: String
    /// How it ended: none while it runs or when it completed.
    public var failureClass: String
    /// Why this attempt exists, e.g. "restart with batch size halved".
    public var action: String
    public var configChange: String
    public var outcome: String
    public var startedAt: Int64
    public var endedAt: Int64
    public var resumeFrom: String
    /// Which checkpoint it resumed from and why, e.g. "resume from epoch 4 (attempt 2), the newest kept checkpoint
    /// of the current line"; empty when the job had none.
    public var resumeChoice: String

    public init(_ a: AttemptRecord) {
        attempt = a.attempt
        node = a.nodeID
        failureClass = a.failureClass.rawValue
        action = a.action
        configChange = a.configChange
        outcome = a.outcome
        startedAt = a.startedAtMs
        endedAt = a.endedAtMs
        resumeFrom = a.resumeFrom
        resumeChoice = a.resumeChoice ?? ""
    }
}

public struct NodeView: Codable, Sendable, Equatable {
    public var id: String
    /// online or offline.
    public var status: String
    public var cordoned: Bool
    public var cordonReason: String
    public var capacity: NodeCapacity
    public var usage: NodeUsage
    public var labels: [String: String]
    public var enforcement: EnforcementCapabilities
    public var runningJobs: [String]
    public var lastSeen: Int64
    /// The agent runs assignments without checking the controller's signature (`--insecure-unsigned-assignments`).
    public var unsignedAssignmentsAccepted: Bool
    /// Where the node writes checkpoints and whether other nodes read them; absent from agents that do not say (local).
    public var checkpointStorage: CheckpointStorage?

    public init(_ n: NodeRecord) {
        id = n.id
        status = n.health.rawValue
        cordoned = n.cordoned
        cordonReason = n.cordonReason
        capacity = n.capacity
        usage = n.usage
        labels = n.status.labels
        enforcement = n.status.enforcement
        runningJobs = n.status.runningJobs
        lastSeen = n.lastSeenMs
        unsignedAssignmentsAccepted = n.status.unsignedAssignmentsAccepted
        checkpointStorage = n.status.checkpointStorage
    }
}

/// Where a node's drain stands (`POST`/`GET /v1/nodes/{id}/drain`).
public struct DrainView: Codable, Sendable, Equatable {
    public struct Move: Codable, Sendable, Equatable {
        public var job: String
        /// draining, waiting, starting, moved or finished.
        public var state: String
        public var detail: String
        public var fromNode: String
        public var fromAttempt: Int
        public var graceSeconds: Double
        /// The attempt reported a checkpoint during its grace; the next attempt resumes from it.
        public var checkpointSaved: Bool
        public var checkpoint: String
        public var checkpointEpoch: Int?
        /// The agent reported the drained attempt's exit (false: its grace passed without one).
        public var exited: Bool
        public var toNode: String
        public var toAttempt: Int?
        public var resumeFrom: String
        public var jobStatus: String?
    }

    public var node: String
    public var cordoned: Bool
    public var requestedAt: Int64
    public var by: String
    public var reason: String
    /// Every job has started elsewhere or finished.
    public var done: Bool
    public var jobs: [Move]

    public init(_ p: DrainProgress) {
        node = p.nodeID
        cordoned = p.cordoned
        requestedAt = p.requestedAtMs
        by = p.by
        reason = p.reason
        done = p.done
        jobs = p.jobs.map { m in
            Move(job: m.jobID, state: m.state.rawValue, detail: m.detail, fromNode: m.fromNode, fromAttempt: m.fromAttempt,
                 graceSeconds: Double(m.graceMs) / 1000, checkpointSaved: m.checkpointSaved, checkpoint: m.checkpointPath,
                 checkpointEpoch: m.checkpointEpoch, exited: m.exited, toNode: m.toNode, toAttempt: m.toAttempt, resumeFrom: m.resumeFrom,
                 jobStatus: m.jobStatus?.rawValue)
        }
    }
}

public struct DatasetView: Codable, Sendable, Equatable {
    public var id: String
    public var location: String
    /// ready or unavailable.
    public var status: String
    public var allowedTeams: [String]
    public var retriesPaused: Bool
    public var pausedByIncident: String

    public init(_ d: DatasetRecord) {
        id = d.id
        location = d.location
        status = d.status.rawValue
        allowedTeams = d.dataset.allowedTeams
        retriesPaused = d.retriesPaused
        pausedByIncident = d.pausedByIncident
    }
}

public struct IncidentView: Codable, Sendable, Equatable {
    public var id: String
    /// job, bad_node, bad_dataset, system_resource, multi_agent, security, notice.
    public var cause: String
    /// L1 … L4.
    public var level: String
    public var severity: String
    /// open, acknowledged, resolved.
    public var status: String
    public var subject: String
    public var jobs: [String]
    public var nodes: [String]
    public var dataset: String
    public var symptoms: [String]
    public var stepsTaken: [RemediationStep]
    public var currentStatus: String
    public var impact: String
    public var logTail: [String]
    public var rootCause: String
    public var timeline: [TimelineEntry]
    public var parent: String
    public var openedAt: Int64
    public var failureTime: Int64
    public var acknowledgedAt: Int64
    public var acknowledgedBy: String
    public var resolvedAt: Int64
    public var respondBy: Int64
    /// When its held page goes out (grouping wait or silence); 0 = none held.
    public var pageHeldUntil: Int64
    /// `grouping` or the silence holding its page; "" = none.
    public var pageHeldBy: String

    public init(_ i: Incident) {
        id = i.id
        cause = i.cause.rawValue
        level = i.level.rawValue
        severity = i.severity.rawValue
        status = i.status.rawValue
        subject = i.subject
        jobs = i.jobs
        nodes = i.nodes
        dataset = i.dataset
        symptoms = i.symptoms
        stepsTaken = i.stepsTaken
        currentStatus = i.currentStatus
        impact = i.impact
        logTail = i.logTail
        rootCause = i.rootCause
        timeline = i.timeline
        parent = i.parentID
        openedAt = i.openedAtMs
        failureTime = i.failureTimeMs
        acknowledgedAt = i.acknowledgedAtMs
        acknowledgedBy = i.acknowledgedBy
        resolvedAt = i.resolvedAtMs
        respondBy = i.respondByMs
        pageHeldUntil = i.heldPage?.untilMs ?? 0
        pageHeldBy = i.heldPage?.by ?? ""
    }
}

/// A silence as the API shows it (`GET /v1/silences`).
public struct SilenceView: Codable, Sendable, Equatable {
    public var id: String
    public var node: String
    public var job: String
    public var dataset: String
    /// An incident cause, or "" for any.
    public var cause: String
    public var startsAt: Int64
    public var endsAt: Int64
    public var reason: String
    public var createdBy: String
    public var createdAt: Int64

    public init(_ s: Silence) {
        id = s.id
        node = s.node
        job = s.job
        dataset = s.dataset
        cause = s.cause?.rawValue ?? ""
        startsAt = s.startsAtMs
        endsAt = s.endsAtMs
        reason = s.reason
        createdBy = s.createdBy
        createdAt = s.createdAtMs
    }
}

/// The body of `POST /v1/silences`: matchers, a reason, and an end (`endsAt`, Unix ms, or `durationSeconds`).
public struct SilenceRequest: Codable, Sendable, Equatable {
    /// The longest silence: 30 days.
    public static let maxDurationSeconds: Int64 = 30 * 86_400

    public var node: String?
    public var job: String?
    public var dataset: String?
    public var cause: String?
    /// Unix ms; default now.
    public var startsAt: Int64?
    public var endsAt: Int64?
    public var durationSeconds: Int64?
    public var reason: String

    public init(node: String? = nil, job: String? = nil, dataset: String? = nil, cause: String? = nil, startsAt: Int64? = nil,
                endsAt: Int64? = nil, durationSeconds: Int64? = nil, reason: String) {
        self.node = node
        self.job = job
        self.dataset = dataset
        self.cause = cause
        self.startsAt = startsAt
        self.endsAt = endsAt
        self.durationSeconds = durationSeconds
        self.reason = reason
    }
}

/// The 422 answer of `POST /v1/training/jobs/validate` for a malformed spec: the error body, and the verdict.
public struct InvalidSpecBody: Codable, Sendable, Equatable {
    public var error: String
    public var details: [String]
    public var valid = false
    public var problems: [SpecProblem]

    public init(error: String, problems: [SpecProblem]) {
        self.error = error
        self.details = problems.map(\.description)
        self.problems = problems
    }
}

/// The answer of `POST /v1/training/jobs/validate`.
public struct ValidationView: Codable, Sendable, Equatable {
    public var valid: Bool
    public var problems: [SpecProblem]

    public init(problems: [SpecProblem]) {
        self.valid = problems.isEmpty
        self.problems = problems
    }
}

/// The answer of `GET /readyz`.
public struct ReadinessView: Codable, Sendable, Equatable {
    /// leader or standby.
    public var role: String
    /// connected or disconnected.
    public var nats: String
    /// Unix ms when this replica took its current role (0 before the election first decided).
    public var roleSince: Int64
    /// ok, or "unavailable: <why>" while the controller cannot store its state (it then acknowledges no event).
    public var state: String
    /// signed, or "unsigned: <why>" when no signing key is configured (agents holding a public key refuse them).
    public var assignments: String

    public init(role: String, nats: String, roleSince: Int64, state: String = "ok", assignments: String = "signed") {
        self.state = state
        self.assignments = assignments
        self.role = role
        self.nats = nats
        self.roleSince = roleSince
    }
}

/// Every error the API returns.
public struct APIErrorBody: Codable, Sendable, Equatable {
    public var error: String
    public var details: [String]

    public init(error: String, details: [String] = []) {
        self.error = error
        self.details = details
    }
}
