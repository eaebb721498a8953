public import ArchonModel
public import ArchonNATS
public import ArchonWire

/// How an agent runs. Every duration has a default an operator rarely needs to change.
public struct AgentConfig: Sendable {
    /// `[A-Za-z0-9_-]+`: it appears in subjects and KV keys.
    public var nodeID: String
    public var nats: NATSOptions
    /// What an assignment must pass before it runs: the controller's signature (or, insecurely, nothing).
    public var assignments: AssignmentVerifier
    /// Per-job folders (logs, checkpoints, state) and the event spool live here.
    public var workDirectory: String
    public var labels: [String: String]
    public var memoryMode: MemoryEnforcer.Mode
    /// cgroup v2 under systemd's `Delegate=yes`: job cgroups go under the agent's own cgroup (see ``MemoryEnforcer``).
    public var cgroupDelegated = false
    /// Node heartbeat period.
    public var heartbeatInterval: Duration
    /// Per-job resource sample period.
    public var sampleInterval: Duration
    /// Full NodeStatus period (also sent whenever the running set changes).
    public var statusInterval: Duration
    /// Time between SIGTERM and SIGKILL when stopping a job (lets the trainer checkpoint).
    public var gracePeriod: Duration
    /// Hang window for jobs that report progress but set no `timeouts.heartbeatSeconds`.
    public var defaultHangSeconds: Int
    /// Stop the jobs when the agent itself is stopped (default: leave them and re-adopt on restart).
    public var stopJobsOnExit: Bool
    /// How often the supervision loop checks processes and limits.
    public var tickInterval: Duration
    /// Reported in NodeStatus; the memory a node advertises may be overridden (e.g. a node that shares its host).
    public var advertisedMemoryBytes: UInt64?
    /// The memory every job here really gets at most, whatever it asks for: a node sharing its host, or —
    /// in `archon dev --broken-node` — a node with far less memory than it advertises.
    public var memoryCeilingBytes: UInt64?
    /// What jobs may run here: entrypoints and environment, checked again before every start whatever the
    /// desired state says (the controller's policy checks the same at submission).
    public var executionRules: ExecutionRules
    /// The unprivileged user and groups trainers run as; nil = the agent's own (warned about when that is root).
    public var runAs: RunAsIdentity?
    /// Trainers are stopped (by their shims, `gracePeriod` after SIGTERM) once the agent has had no contact with NATS
    /// for this long (see ``NodeLease``); nil = never. Must end, grace included, before the controller's
    /// `detection.nodeSilence`.
    public var fenceAfter: Duration?
    /// Where checkpoints are written (`<root>/<job>/attempt-<n>/`), and whether other nodes read the same files;
    /// default: local, `<workDirectory>/checkpoints`.
    public var checkpointStorage: CheckpointStorage
    /// How long an assignment's fencing epoch may stay beyond every read of the leadership lease before it is
    /// reported as a security alert (a lease read can come from a lagging replica; it is read again each second).
    public var unconfirmedEpochGrace: Duration = .seconds(30)
    /// Folders under which a job may name its own shared checkpoint root (`checkpoint.sharedRoot`), besides
    /// `checkpointStorage.root`.
    public var allowedCheckpointRoots: [String]

    public init(
        nodeID: String,
        nats: NATSOptions,
        assignments: AssignmentVerifier,
        workDirectory: String,
        labels: [String: String] = [:],
        memoryMode: MemoryEnforcer.Mode = .auto,
        heartbeatInterval: Duration = .seconds(2),
        sampleInterval: Duration = .seconds(5),
        statusInterval: Duration = .seconds(30),
        gracePeriod: Duration = .seconds(10),
        defaultHangSeconds: Int = 300,
        stopJobsOnExit: Bool = false,
        tickInterval: Duration = .milliseconds(200),
        advertisedMemoryBytes: UInt64? = nil,
        memoryCeilingBytes: UInt64? = nil,
        executionRules: ExecutionRules = ExecutionRules(),
        runAs: RunAsIdentity? = nil,
        fenceAfter: Duration? = nil,
        checkpointStorage: CheckpointStorage? = nil,
        allowedCheckpointRoots: [String] = []
    ) {
        self.checkpointStorage = checkpointStorage ?? CheckpointStorage(root: "\(workDirectory)/checkpoints", shared: false)
        self.allowedCheckpointRoots = allowedCheckpointRoots
        self.nodeID = nodeID
        self.nats = nats
        self.assignments = assignments
        self.workDirectory = workDirectory
        self.labels = labels
        self.memoryMode = memoryMode
        self.heartbeatInterval = heartbeatInterval
        self.sampleInterval = sampleInterval
        self.statusInterval = statusInterval
        self.gracePeriod = gracePeriod
        self.defaultHangSeconds = defaultHangSeconds
        self.stopJobsOnExit = stopJobsOnExit
        self.tickInterval = tickInterval
        self.advertisedMemoryBytes = advertisedMemoryBytes
        self.memoryCeilingBytes = memoryCeilingBytes
        self.executionRules = executionRules
        self.runAs = runAs
        self.fenceAfter = fenceAfter
    }
}

extension Duration {
    var millis: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}
