/// Why a training process ended, or was judged to have failed.
public enum FailureClass: String, Codable, Sendable, CaseIterable {
    /// No failure recognised (exit 0 means completed).
    case none
    /// OOM kill, `MemoryError`, CUDA out of memory.
    case outOfMemory = "out_of_memory"
    /// NaN/Inf or exploding loss.
    case divergingLoss = "diverging_loss"
    /// The dataset path or id does not exist.
    case datasetNotFound = "dataset_not_found"
    /// EACCES/EPERM on data, checkpoints or credentials.
    case permissionDenied = "permission_denied"
    /// An epoch or the whole attempt ran over its limit.
    case timeout
    /// Alive but silent past the heartbeat window.
    case hang
    /// Any other non-zero exit or fatal signal.
    case crash
    /// The dataset is present but unreadable or invalid.
    case dataCorruption = "data_corruption"
    /// The node could not run the process (spawn, disk, cgroup failure).
    case nodeFault = "node_fault"
    /// The checkpoint the attempt was told to resume from is missing or changed on its node (never the dataset).
    case checkpointUnavailable = "checkpoint_unavailable"
}

/// The agent accepted an assignment and is about to start it.
public struct JobAccepted: Codable, Sendable, Hashable {
    public var fencingEpoch: UInt64
    public var resumeFrom: String

    public init(fencingEpoch: UInt64, resumeFrom: String = "") {
        self.fencingEpoch = fencingEpoch
        self.resumeFrom = resumeFrom
    }
}

/// The training process is running.
public struct JobStarted: Codable, Sendable, Hashable {
    public var pid: Int32
    public var resumeFrom: String
    public var memoryLimitBytes: UInt64
    public var memoryEnforcement: Enforcement

    public init(pid: Int32, resumeFrom: String = "", memoryLimitBytes: UInt64 = 0, memoryEnforcement: Enforcement = .unspecified) {
        self.pid = pid
        self.resumeFrom = resumeFrom
        self.memoryLimitBytes = memoryLimitBytes
        self.memoryEnforcement = memoryEnforcement
    }
}

/// Evaluation results of an epoch.
public struct Validation: Codable, Sendable, Hashable {
    public var loss: Double
    /// 0...1.
    public var accuracy: Double

    public init(loss: Double, accuracy: Double = 0) {
        self.loss = loss
        self.accuracy = accuracy
    }
}

/// End-of-epoch metrics reported by the trainer.
public struct EpochMetrics: Codable, Sendable, Hashable {
    /// 1-based epoch that just finished.
    public var epoch: Int
    public var totalEpochs: Int
    /// Mean training loss (NaN/Inf when diverging).
    public var loss: Double
    public var learningRate: Double
    public var durationSeconds: Double
    /// Optimiser steps done so far.
    public var step: Int
    /// Absent when the trainer did not evaluate this epoch.
    public var validation: Validation?

    public init(
        epoch: Int,
        totalEpochs: Int = 0,
        loss: Double,
        learningRate: Double = 0,
        durationSeconds: Double = 0,
        step: Int = 0,
        validation: Validation? = nil
    ) {
        self.epoch = epoch
        self.totalEpochs = totalEpochs
        self.loss = loss
        self.learningRate = learningRate
        self.durationSeconds = durationSeconds
        self.step = step
        self.validation = validation
    }
}

/// Progress within an epoch.
public struct StepProgress: Codable, Sendable, Hashable {
    public var step: Int
    public var epoch: Int
    public var loss: Double
    public var learningRate: Double
    public var samplesPerSecond: Double

    public init(step: Int, epoch: Int = 0, loss: Double = 0, learningRate: Double = 0, samplesPerSecond: Double = 0) {
        self.step = step
        self.epoch = epoch
        self.loss = loss
        self.learningRate = learningRate
        self.samplesPerSecond = samplesPerSecond
    }
}

/// A checkpoint was written and verified by the agent.
public struct CheckpointWritten: Codable, Sendable, Hashable {
    public var path: String
    public var epoch: Int
    public var step: Int
    public var sizeBytes: UInt64
    /// Lower-case hex SHA-256.
    public var sha256: String
    /// Where the file lies; nil from agents that predate it (local to the reporting node).
    public var storage: CheckpointStorage?

    public init(path: String, epoch: Int, step: Int = 0, sizeBytes: UInt64 = 0, sha256: String = "", storage: CheckpointStorage? = nil) {
        self.path = path
        self.epoch = epoch
        self.step = step
        self.sizeBytes = sizeBytes
        self.sha256 = sha256
        self.storage = storage
    }
}

/// A resource sample of one job's process tree.
public struct ResourceSample: Codable, Sendable, Hashable {
    public var memoryUsedBytes: UInt64
    public var memoryLimitBytes: UInt64
    /// Cores in use (1.0 = one full core).
    public var cpuCores: Double
    public var gpuMemoryUsedBytes: UInt64
    public var gpuMemoryTotalBytes: UInt64
    /// 0...1.
    public var gpuUtilization: Double
    public var diskUsedBytes: UInt64
    public var diskTotalBytes: UInt64

    public init(
        memoryUsedBytes: UInt64 = 0,
        memoryLimitBytes: UInt64 = 0,
        cpuCores: Double = 0,
        gpuMemoryUsedBytes: UInt64 = 0,
        gpuMemoryTotalBytes: UInt64 = 0,
        gpuUtilization: Double = 0,
        diskUsedBytes: UInt64 = 0,
        diskTotalBytes: UInt64 = 0
    ) {
        self.memoryUsedBytes = memoryUsedBytes
        self.memoryLimitBytes = memoryLimitBytes
        self.cpuCores = cpuCores
        self.gpuMemoryUsedBytes = gpuMemoryUsedBytes
        self.gpuMemoryTotalBytes = gpuMemoryTotalBytes
        self.gpuUtilization = gpuUtilization
        self.diskUsedBytes = diskUsedBytes
        self.diskTotalBytes = diskTotalBytes
    }
}

/// The training process ended.
public struct JobExited: Codable, Sendable, Hashable {
    /// Exit status; -1 when killed by a signal.
    public var exitCode: Int32
    /// Terminating signal, 0 if none.
    public var signal: Int32
    /// Killed by the kernel OOM killer.
    public var oomKilled: Bool
    public var failureClass: FailureClass
    /// Why it was classified so (the matched signature).
    public var detail: String
    /// Last output lines, newest last.
    public var logTail: [String]
    public var runtimeSeconds: Double
    public var epochsCompleted: Int
    /// Stopped on request: not a failure.
    public var stopRequested: Bool

    public init(
        exitCode: Int32,
        signal: Int32 = 0,
        oomKilled: Bool = false,
        failureClass: FailureClass = .none,
        detail: String = "",
        logTail: [String] = [],
        runtimeSeconds: Double = 0,
        epochsCompleted: Int = 0,
        stopRequested: Bool = false
    ) {
        self.exitCode = exitCode
        self.signal = signal
        self.oomKilled = oomKilled
        self.failureClass = failureClass
        self.detail = detail
        self.logTail = logTail
        self.runtimeSeconds = runtimeSeconds
        self.epochsCompleted = epochsCompleted
        self.stopRequested = stopRequested
    }

    /// Ended successfully: exit 0, no failure recognised, not stopped.
    public var completed: Bool { exitCode == 0 && signal == 0 && failureClass == .none && !stopRequested }
}

/// A liveness signal: with a job id the process is alive, without it the agent is.
public struct Heartbeat: Codable, Sendable, Hashable {
    public var runningJobs: Int
    public var secondsSinceProgress: Double

    public init(runningJobs: Int = 0, secondsSinceProgress: Double = 0) {
        self.runningJobs = runningJobs
        self.secondsSinceProgress = secondsSinceProgress
    }
}

/// Something an agent refused because it failed an authenticity check; the controller opens a security
/// incident for the node.
public struct SecurityAlert: Codable, Sendable, Hashable {
    public enum Kind: String, Codable, Sendable, Hashable {
        /// A kind this build does not know (a newer agent's).
        case unspecified
        /// An assignment whose signature does not verify, or whose fencing epoch is beyond the leader's lease.
        case assignmentRejected = "assignment_rejected"
        /// NATS refused a publish or subscription of this node (its credential does not allow it).
        case permissionViolation = "permission_violation"
    }

    public var kind: Kind
    public var detail: String
    /// The KV key or subject concerned.
    public var subject: String

    public init(kind: Kind, detail: String, subject: String = "") {
        self.kind = kind
        self.detail = detail
        self.subject = subject
    }
}

/// Everything an agent says, on `archon.v1.events.<node>.<job>` (or `<node>._node`).
public struct TrainingEvent: Codable, Sendable, Hashable {
    public enum Body: Codable, Sendable, Hashable {
        case accepted(JobAccepted)
        case started(JobStarted)
        case epoch(EpochMetrics)
        case step(StepProgress)
        case checkpoint(CheckpointWritten)
        case resources(ResourceSample)
        case exited(JobExited)
        case heartbeat(Heartbeat)
        case nodeStatus(NodeStatus)
        case securityAlert(SecurityAlert)
    }

    /// Empty for node-wide events.
    public var jobID: String
    /// Must match the subject's node, else the event is rejected as spoofed.
    public var nodeID: String
    /// 0 for node-wide events.
    public var attempt: Int
    /// Per (job, attempt) from 1, gap-free: (jobID, attempt, sequence) identifies the event.
    public var sequence: UInt64
    public var timeMs: Int64
    public var body: Body

    public init(jobID: String, nodeID: String, attempt: Int, sequence: UInt64, timeMs: Int64, body: Body) {
        self.jobID = jobID
        self.nodeID = nodeID
        self.attempt = attempt
        self.sequence = sequence
        self.timeMs = timeMs
        self.body = body
    }

    /// The JetStream message id that de-duplicates a republished event.
    public var messageID: String {
        jobID.isEmpty ? "\(nodeID)._node.\(sequence)" : "\(jobID).\(attempt).\(sequence)"
    }
}

/// Request on `archon.v1.logs.<node>`: the last lines of a job's output.
public struct LogRequest: Codable, Sendable, Hashable {
    public var jobID: String
    /// 0 means 100.
    public var tail: Int

    public init(jobID: String, tail: Int = 100) {
        self.jobID = jobID
        self.tail = tail
    }
}

/// Reply to a ``LogRequest``.
public struct LogReply: Codable, Sendable, Hashable {
    public var lines: [String]
    /// Non-empty when the logs could not be read.
    public var error: String

    public init(lines: [String] = [], error: String = "") {
        self.lines = lines
        self.error = error
    }
}
