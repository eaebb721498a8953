/// A job as submitted by a person or a pipeline.
public struct JobSpec: Codable, Sendable, Hashable {
    /// Unique id, `[A-Za-z0-9_-]{1,64}`: it appears in NATS subjects and KV keys.
    public var id: String
    public var name: String
    /// Owning team, for escalations.
    public var team: String
    /// argv of the training process.
    public var command: [String]
    /// Extra environment (the agent adds the `ARCHON_*` variables).
    public var env: [String: String]
    public var config: TrainingConfig
    /// Free-form labels; jobs with the same `kind` label are compared across nodes by the bad-node rule.
    public var labels: [String: String]

    public init(
        id: String,
        name: String = "",
        team: String = "",
        command: [String] = [],
        env: [String: String] = [:],
        config: TrainingConfig = TrainingConfig(),
        labels: [String: String] = [:]
    ) {
        self.id = id
        self.name = name
        self.team = team
        self.command = command
        self.env = env
        self.config = config
        self.labels = labels
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decodeIfPresent(String.self, forKey: .id) ?? ""
        name = try c.decodeIfPresent(String.self, forKey: .name) ?? ""
        team = try c.decodeIfPresent(String.self, forKey: .team) ?? ""
        command = try c.decodeIfPresent([String].self, forKey: .command) ?? []
        env = try c.decodeIfPresent([String: String].self, forKey: .env) ?? [:]
        config = try c.decodeIfPresent(TrainingConfig.self, forKey: .config) ?? TrainingConfig()
        labels = try c.decodeIfPresent([String: String].self, forKey: .labels) ?? [:]
    }

    private enum CodingKeys: String, CodingKey { case id, name, team, command, env, config, labels }

    /// Writes what differs from the defaults the decoder fills in: `{"id": "job-1"}` for a bare spec.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        if !name.isEmpty { try c.encode(name, forKey: .name) }
        if !team.isEmpty { try c.encode(team, forKey: .team) }
        if !command.isEmpty { try c.encode(command, forKey: .command) }
        if !env.isEmpty { try c.encode(env, forKey: .env) }
        if config != TrainingConfig() { try c.encode(config, forKey: .config) }
        if !labels.isEmpty { try c.encode(labels, forKey: .labels) }
    }
}

/// Desired state of one job on one node (KV `archon_desired`, key `<node>.<job>`).
public struct JobAssignment: Codable, Sendable, Hashable {
    public enum DesiredState: String, Codable, Sendable, CaseIterable {
        /// The attempt must be running (or have finished).
        case running
        /// No process may run for this job.
        case stopped
    }

    public var spec: JobSpec
    /// Attempt number from 1; a larger attempt replaces a running smaller one.
    public var attempt: Int
    /// Leader lease revision of the writer; agents ignore older epochs than the newest seen.
    public var fencingEpoch: UInt64
    public var desiredState: DesiredState
    public var nodeID: String
    /// Checkpoint to resume from; empty = the agent picks the latest valid one.
    public var resumeFrom: String
    public var assignedAtMs: Int64
    /// Why this attempt exists, e.g. "oom: batchSize 64 -> 32".
    public var reason: String
    /// Start without any checkpoint, even if the agent has valid ones (they are all suspect).
    public var freshStart: Bool
    /// With `desiredState` `.stopped`: seconds between SIGTERM and SIGKILL, the trainer's time to save a checkpoint
    /// and exit (a drain, a move, an operator stop); 0 = the agent's own `--grace-period`.
    public var stopGraceSeconds: Int
    /// SHA-256 `resumeFrom` must have; the agent checks it before the trainer starts. Empty = not checked.
    public var resumeSHA256: String

    public init(
        spec: JobSpec,
        attempt: Int,
        fencingEpoch: UInt64,
        desiredState: DesiredState = .running,
        nodeID: String,
        resumeFrom: String = "",
        assignedAtMs: Int64 = 0,
        reason: String = "",
        freshStart: Bool = false,
        stopGraceSeconds: Int = 0,
        resumeSHA256: String = ""
    ) {
        self.spec = spec
        self.attempt = attempt
        self.fencingEpoch = fencingEpoch
        self.desiredState = desiredState
        self.nodeID = nodeID
        self.resumeFrom = resumeFrom
        self.assignedAtMs = assignedAtMs
        self.reason = reason
        self.freshStart = freshStart
        self.stopGraceSeconds = stopGraceSeconds
        self.resumeSHA256 = resumeSHA256
    }

    private enum CodingKeys: String, CodingKey {
        case spec, attempt, fencingEpoch, desiredState, nodeID, resumeFrom, assignedAtMs, reason, freshStart, stopGraceSeconds
        case resumeSHA256
    }

    /// Assignments an older agent stored (without `stopGraceSeconds`, `resumeSHA256`) still decode.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        spec = try c.decode(JobSpec.self, forKey: .spec)
        attempt = try c.decode(Int.self, forKey: .attempt)
        fencingEpoch = try c.decode(UInt64.self, forKey: .fencingEpoch)
        desiredState = try c.decode(DesiredState.self, forKey: .desiredState)
        nodeID = try c.decode(String.self, forKey: .nodeID)
        resumeFrom = try c.decode(String.self, forKey: .resumeFrom)
        assignedAtMs = try c.decode(Int64.self, forKey: .assignedAtMs)
        reason = try c.decode(String.self, forKey: .reason)
        freshStart = try c.decode(Bool.self, forKey: .freshStart)
        stopGraceSeconds = try c.decodeIfPresent(Int.self, forKey: .stopGraceSeconds) ?? 0
        resumeSHA256 = try c.decodeIfPresent(String.self, forKey: .resumeSHA256) ?? ""
    }
}
