public import ArchonModel

/// Where a job stands, as the API shows it.
public enum JobStatus: String, Codable, Sendable, CaseIterable {
    /// Waiting to run: for a node with room, for its node to start it, or for the backoff before a restart.
    case queued
    /// The current attempt started and has not ended.
    case running
    /// Finished successfully.
    case completed
    /// Given up: no remediation left or none applies; its incident says why.
    case failed
    /// Held: retries of its dataset are paused, or its symptom's remediation is frozen fleet-wide.
    case paused
    /// Stopped by an operator.
    case stopped

    /// No further attempt will be made.
    public var isTerminal: Bool {
        switch self {
        case .completed, .failed, .stopped: true
        case .queued, .running, .paused: false
        }
    }
}

/// One attempt of a job: where it ran, why it exists, how it ended.
public struct AttemptRecord: Codable, Sendable, Hashable {
    public internal(set) var attempt: Int
    public internal(set) var nodeID: String
    /// Why this attempt exists: "initial placement", "out of memory: halve the batch size, …".
    public internal(set) var action: String
    /// What changed against the previous attempt, e.g. "batchSize 64 -> 32, gradientAccumulationSteps 1 -> 2".
    public internal(set) var configChange: String
    public internal(set) var resumeFrom: String
    /// The assignment told the agent to start from scratch (no checkpoint predates the failure).
    public internal(set) var freshStart = false
    /// The checkpoint it resumed from: its lineage link. Checkpoints of other lines are never resumed from later.
    /// nil for a start from scratch (and in state written before lineage was kept).
    public internal(set) var resumeCheckpoint: CheckpointRecord?
    /// Which checkpoint it resumes from and why, e.g. "resume from epoch 4 (attempt 2), before the loss began to
    /// rise at epoch 5"; nil when the job had no checkpoint to choose from.
    public internal(set) var resumeChoice: String?
    public internal(set) var assignedAtMs: Int64
    public internal(set) var acceptedAtMs: Int64 = 0
    public internal(set) var startedAtMs: Int64 = 0
    /// When the core judged it over (exit, failure detected, stop); 0 while it lasts.
    public internal(set) var endedAtMs: Int64 = 0
    /// Why it ended; `.none` when it completed or still runs.
    public internal(set) var failureClass: FailureClass = .none
    public internal(set) var symptom: Symptom?
    /// "completed", "failed: out of memory — …", "stopped by alice", "" while it lasts.
    public internal(set) var outcome: String = ""
    /// The last epoch metrics the attempt reported.
    public internal(set) var lastMetrics: EpochMetrics?
    /// How its process ended, as the agent reported it.
    public internal(set) var lastExit: JobExited?
    /// Memory limit the agent applied (from the start event or resource samples).
    public internal(set) var memoryLimitBytes: UInt64 = 0
    /// Applied event sequences of this attempt.
    public internal(set) var sequences = SequenceWindow()
    var signals = AttemptSignals()
    /// Its graceful stop (a drain, a move, an operator stop); nil when it was never stopped that way.
    public internal(set) var drain: AttemptDrain?

    public var isOver: Bool { endedAtMs != 0 }
}

/// A graceful stop of one attempt: SIGTERM, up to `graceMs` for the trainer to save a checkpoint and exit, then
/// SIGKILL. The job's next attempt (if any) waits for it, so it resumes from that checkpoint.
public struct AttemptDrain: Codable, Sendable, Hashable {
    /// Why, e.g. "moved off n1: node n1 drained by sam", "moved off n1: bad node", "stopped by kim".
    public internal(set) var why: String
    public internal(set) var requestedAtMs: Int64
    /// The grace the agent was given, from the job's `checkpoint.stopGraceSeconds` or `remediation.stopGrace`.
    public internal(set) var graceMs: Int64
    /// The checkpoint the attempt reported during the grace; nil when it saved none.
    public internal(set) var checkpoint: CheckpointRecord?
    /// When the drain ended (the exit arrived, or the grace and a margin passed without one); 0 while it lasts.
    public internal(set) var endedAtMs: Int64
    /// The agent reported the attempt's exit; false when the controller stopped waiting for it.
    public internal(set) var exited: Bool

    init(why: String, requestedAtMs: Int64, graceMs: Int64) {
        self.why = why
        self.requestedAtMs = requestedAtMs
        self.graceMs = graceMs
        self.endedAtMs = 0
        self.exited = false
    }

    /// The attempt may still be saving: nothing replaces it yet.
    public var isActive: Bool { endedAtMs == 0 }
}

/// Detector state of one attempt.
struct AttemptSignals: Codable, Sendable, Hashable {
    /// Last epoch, step or checkpoint event; 0 until the job first reports (hang and epoch checks wait for it).
    var lastProgressMs: Int64 = 0
    /// Start of the current epoch (start of the attempt, then each epoch's end).
    var epochStartMs: Int64 = 0
    var lastHeartbeatMs: Int64 = 0
    var loss = LossMonitor()
    /// Notice keys already raised for this attempt.
    var notices: Set<String> = []
}

/// An attempt decided but not yet placed: waiting for its backoff, for a node with room, for a paused
/// dataset or a frozen symptom.
public struct PendingAttempt: Codable, Sendable, Hashable {
    /// The full config the next attempt runs.
    public var config: TrainingConfig
    public var action: String
    public var configChange: String
    public var reason: Reason
    /// What the attempt remedies; nil for the first placement.
    public var symptom: Symptom?
    /// When the backoff is over.
    public var dueMs: Int64
    /// Nodes the next attempt must avoid (a stuck or faulty node).
    public var excludeNodes: [String]
    /// Node to prefer (its checkpoints are local); empty for none.
    public var preferNode: String
    /// Resume from a checkpoint written before this epoch (diverged epochs are not resumed from).
    public var resumeBeforeEpoch: Int?
    /// When `excludeNodes` stops applying (`remediation.avoidNodesFor` after the attempt was queued).
    public var excludeUntilMs: Int64? = nil
    /// Since when the attempt waits for the node whose local storage holds its newest checkpoint
    /// (`remediation.checkpointNodeWait`); nil = it has not waited.
    public var checkpointWaitSinceMs: Int64? = nil

    /// The nodes still avoided at `now`.
    func excluded(at now: Int64) -> Set<String> {
        guard let until = excludeUntilMs, now >= until else { return Set(excludeNodes) }
        return []
    }
}

/// Why a job is paused.
public enum JobHold: Codable, Sendable, Hashable {
    /// Retries of jobs on this dataset are paused.
    case dataset(String)
    /// Config changes for this symptom are frozen fleet-wide.
    case frozen(Symptom)
}

/// A checkpoint the agent reported.
public struct CheckpointRecord: Codable, Sendable, Hashable {
    public var path: String
    public var epoch: Int
    public var step: Int
    public var sha256: String
    public var sizeBytes: UInt64
    public var attempt: Int
    public var nodeID: String
    public var writtenAtMs: Int64
    /// Where the file lies; nil = reported by an agent that did not say: local to `nodeID`.
    public var storage: CheckpointStorage?

    public init(path: String, epoch: Int, step: Int = 0, sha256: String = "", sizeBytes: UInt64 = 0, attempt: Int = 1, nodeID: String = "",
                writtenAtMs: Int64 = 0, storage: CheckpointStorage? = nil) {
        self.storage = storage
        self.path = path
        self.epoch = epoch
        self.step = step
        self.sha256 = sha256
        self.sizeBytes = sizeBytes
        self.attempt = attempt
        self.nodeID = nodeID
        self.writtenAtMs = writtenAtMs
    }

    /// The agent verified it: a SHA-256 in lower-case hex.
    public var verified: Bool {
        sha256.utf8.count == 64 && sha256.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }
}

/// Everything the core knows about one job.
public struct JobRecord: Codable, Sendable, Hashable {
    /// As submitted.
    public internal(set) var spec: JobSpec
    /// The config of the current (or next) attempt: the spec's, with policy defaults and remediation applied.
    public internal(set) var config: TrainingConfig
    /// Where the job stands (see ``JobStatus``).
    public internal(set) var status: JobStatus = .queued
    /// What the status means right now, e.g. "waiting for a node with 16 GiB free".
    public internal(set) var statusDetail: String = ""
    /// Node of the current attempt; empty when none is placed.
    public internal(set) var nodeID: String = ""
    /// Current attempt, from 1; 0 before the first placement.
    public internal(set) var attempt: Int = 0
    public internal(set) var submittedAtMs: Int64
    /// When it last started waiting to start (submission, or a restart coming due).
    public internal(set) var queuedSinceMs: Int64
    /// One record per attempt, oldest first.
    public internal(set) var history: [AttemptRecord] = []
    /// Every remediation step with its outcome (what an incident lists as "steps taken").
    public internal(set) var remediation: [RemediationStep] = []
    /// Restarts used against `remediation.maxRestartsPerJob`.
    public internal(set) var restarts: Int = 0
    /// Rungs used per ladder, by symptom name.
    public internal(set) var ladderSteps: [String: Int] = [:]
    /// Checkpoints kept by the retention policy, oldest first.
    public internal(set) var checkpoints: [CheckpointRecord] = []
    /// The job's own incident (latest), if any.
    public internal(set) var incidentID: String = ""
    /// Highest epoch any attempt reported.
    public internal(set) var maxEpochSeen: Int = 0
    /// When the first failure of the current series happened; 0 when none.
    public internal(set) var firstFailureMs: Int64 = 0
    /// The next attempt when one is decided but not placed (backoff, no room, paused).
    public internal(set) var pending: PendingAttempt?
    /// Why the job is paused; nil unless `status` is `.paused`.
    public internal(set) var hold: JobHold?
    /// Node whose desired-state key says "run" for this job; empty when none.
    public internal(set) var desiredNode: String = ""

    init(spec: JobSpec, config: TrainingConfig, at now: Int64) {
        self.spec = spec
        self.config = config
        self.submittedAtMs = now
        self.queuedSinceMs = now
    }

    /// The record of the current attempt.
    public var current: AttemptRecord? { history.last }

    /// The current attempt is being stopped gracefully: its process may still be saving a checkpoint.
    public var isDraining: Bool { current?.drain?.isActive ?? false }

    /// The `kind` label the bad-node rule compares across nodes.
    public var kind: String { spec.labels["kind"] ?? "" }

    func attemptIndex(_ attempt: Int) -> Int? { history.lastIndex { $0.attempt == attempt } }
}
