public import ArchonModel

/// How a training process ended, as the agent saw it.
public struct ExitObservation: Sendable, Equatable {
    /// Exit status when it exited; nil when a signal ended it.
    public var exitCode: Int32?
    /// Terminating signal, or nil.
    public var signal: Int32?
    /// The job cgroup's `oom_kill` counter rose during the run.
    public var cgroupOOMKill: Bool
    /// The agent killed it, and why (timeout, hang, memory watchdog, stop request).
    public var killedByAgent: AgentKill?
    /// The error the trainer reported on its events fd, if any (`errorClass` of an `error` line).
    public var reportedErrorClass: FailureClass?
    /// The message of that `error` line: searched for node resource faults after the log tail (a full disk may have
    /// kept the traceback out of the log).
    public var reportedErrorMessage: String
    /// The last lines of its output (stderr and stdout), newest last.
    public var logTail: [String]
    /// The job's `ARCHON_CHECKPOINT_DIR`: "Permission denied" on a path inside it is the node's storage, not the job.
    public var checkpointDirectory: String
    /// The job's `ARCHON_RESUME_FROM`: a file-not-found, corrupt-data or permission error naming it is the
    /// checkpoint's, never the dataset's.
    public var resumePath: String

    public init(
        exitCode: Int32?, signal: Int32? = nil, cgroupOOMKill: Bool = false, killedByAgent: AgentKill? = nil,
        reportedErrorClass: FailureClass? = nil, reportedErrorMessage: String = "", logTail: [String] = [], checkpointDirectory: String = "",
        resumePath: String = ""
    ) {
        self.resumePath = resumePath
        self.exitCode = exitCode
        self.signal = signal
        self.cgroupOOMKill = cgroupOOMKill
        self.killedByAgent = killedByAgent
        self.reportedErrorClass = reportedErrorClass
        self.reportedErrorMessage = reportedErrorMessage
        self.logTail = logTail
        self.checkpointDirectory = checkpointDirectory
    }
}

/// Why the agent ended a process.
public enum AgentKill: String, Sendable, Equatable {
    /// An epoch ran over `timeouts.perEpochSeconds`.
    case epochTimeout = "epoch_timeout"
    /// The attempt ran over `timeouts.totalSeconds`.
    case totalTimeout = "total_timeout"
    /// Alive but silent past the heartbeat window.
    case hang
    /// Memory over the limit where only the agent's watchdog enforces it.
    case memoryWatchdog = "memory_watchdog"
    /// Desired state says stop, or a newer attempt replaces it.
    case stopRequested = "stop_requested"
    /// The shim stopped it: the agent had no NATS contact within `--fence-after` (frozen, or cut off), so the
    /// controller is about to run the job elsewhere.
    case fenced
}

/// One recognisable failure in a process's output.
public struct ErrorSignature: Sendable {
    public var failureClass: FailureClass
    /// Matched case-sensitively against each line of the log tail.
    public var substrings: [String]
    /// Shown to people as the reason for the classification.
    public var name: String

    public init(_ failureClass: FailureClass, _ name: String, _ substrings: [String]) {
        self.failureClass = failureClass
        self.name = name
        self.substrings = substrings
    }
}

/// Classifies a process's end into a ``FailureClass``: the agent's half of the runbook's detection.
///
/// Order of evidence: the agent's own kill reason, the kernel's OOM kill, exit 0, a node resource fault in the
/// output (disk full, checkpoint folder not writable), the trainer's own report, then the output signatures
/// (newest line first), then the bare exit status.
public struct ProcessExitClassifier: Sendable {
    /// The signature table, most specific first. Extend it here; each row needs a test with a real sample.
    public static let signatures: [ErrorSignature] = [
        ErrorSignature(.outOfMemory, "CUDA out of memory", ["CUDA out of memory", "CUDA error: out of memory", "CUBLAS_STATUS_ALLOC_FAILED"]),
        ErrorSignature(.outOfMemory, "Python MemoryError", ["MemoryError", "numpy.core._exceptions._ArrayMemoryError", "Unable to allocate"]),
        ErrorSignature(.outOfMemory, "allocator failure", ["std::bad_alloc", "Cannot allocate memory", "java.lang.OutOfMemoryError"]),
        ErrorSignature(.divergingLoss, "non-finite loss", ["Loss is NaN", "loss is nan", "Loss is inf", "non-finite loss", "NaN or Inf found in input tensor", "FloatingPointError"]),
        ErrorSignature(.datasetNotFound, "dataset not found", ["FileNotFoundError", "No such file or directory", "DatasetNotFoundError", "dataset not found"]),
        ErrorSignature(.permissionDenied, "permission denied", ["PermissionError", "Permission denied", "Operation not permitted", "AccessDenied", "403 Forbidden"]),
        ErrorSignature(.dataCorruption, "corrupt data", ["zlib.error", "BadZipFile", "EOFError: Compressed file ended", "UnpicklingError", "DataCorruptionError", "data corruption", "invalid load key"]),
    ]

    /// Node resource faults: the node's storage failed the job, so the class is `node_fault` and the detail starts
    /// with the fault's name (``NodeResourceFault/detail(_:)``), which the controller reads to re-place the job.
    public static let nodeResourceSignatures: [(fault: NodeResourceFault, substrings: [String])] = [
        (.diskFull, ["No space left on device", "[Errno 28]", "ENOSPC", "Disk quota exceeded", "[Errno 122]", "EDQUOT"]),
        (.checkpointDirectoryNotWritable, ["Read-only file system", "[Errno 30]", "EROFS"]),
    ]

    /// Permission errors that name the checkpoint directory: the agent made that folder for the job, so a trainer
    /// denied there meets the node's storage, not a credential problem.
    static let permissionSubstrings = ["PermissionError", "Permission denied", "EACCES", "[Errno 13]"]

    public init() {}

    /// The node resource fault the output shows (newest line first), with the line; nil when none.
    public func nodeResourceFault(in logTail: [String], checkpointDirectory: String) -> (NodeResourceFault, line: String)? {
        for line in logTail.reversed() {
            for (fault, substrings) in Self.nodeResourceSignatures where substrings.contains(where: { line.contains($0) }) {
                return (fault, line)
            }
            if !checkpointDirectory.isEmpty, line.contains(checkpointDirectory),
               Self.permissionSubstrings.contains(where: { line.contains($0) }) {
                return (.checkpointDirectoryNotWritable, line)
            }
        }
        return nil
    }

    /// The newest line that names the resume checkpoint with a not-found, corrupt-data or permission error; nil when
    /// none (or no checkpoint was resumed from).
    public func resumeCheckpointError(in lines: [String], resumePath: String) -> String? {
        guard !resumePath.isEmpty else { return nil }
        let readErrors = Self.signatures.filter { [.datasetNotFound, .dataCorruption, .permissionDenied].contains($0.failureClass) }.flatMap(\.substrings)
        return lines.reversed().first { line in line.contains(resumePath) && readErrors.contains(where: { line.contains($0) }) }
    }

    public func classify(_ exit: ExitObservation) -> (FailureClass, detail: String) {
        if let kill = exit.killedByAgent {
            switch kill {
            case .epochTimeout: return (.timeout, "killed by the agent: epoch over its time limit")
            case .totalTimeout: return (.timeout, "killed by the agent: attempt over its total time limit")
            case .hang: return (.hang, "killed by the agent: no progress within the heartbeat window")
            case .memoryWatchdog: return (.outOfMemory, "killed by the agent's memory watchdog: usage over the limit")
            case .stopRequested: return (.none, "stopped on request")
            case .fenced: return (.nodeFault, "stopped by the node's fence: the agent had no contact with NATS within its fence window (frozen or cut off), so the job is run elsewhere")
            }
        }
        if exit.signal == 9 && exit.cgroupOOMKill {
            return (.outOfMemory, "killed by the kernel OOM killer (SIGKILL, cgroup oom_kill rose)")
        }
        if exit.exitCode == 0 && exit.signal == nil {
            return (.none, "exited 0")
        }
        // Before the trainer's report: a trainer sees an OSError (reported as `crash`) or a PermissionError
        // (`permission_denied`); only the output says the node's disk is full or its checkpoint folder read-only.
        let reported = exit.reportedErrorMessage.isEmpty ? [] : [exit.reportedErrorMessage]
        if let (fault, line) = nodeResourceFault(in: reported + exit.logTail, checkpointDirectory: exit.checkpointDirectory) {
            return (.nodeFault, fault.detail(line.trimmed(to: 200)))
        }
        if let line = resumeCheckpointError(in: reported + exit.logTail, resumePath: exit.resumePath) {
            return (.checkpointUnavailable, "the trainer could not read the checkpoint it resumed from: \(line.trimmed(to: 200))")
        }
        if let reported = exit.reportedErrorClass, reported != .none {
            return (reported, "reported by the trainer: \(reported.rawValue)")
        }
        for line in exit.logTail.reversed() {
            for signature in Self.signatures where signature.substrings.contains(where: { line.contains($0) }) {
                return (signature.failureClass, "\(signature.name): \(line.trimmed(to: 200))")
            }
        }
        if let signal = exit.signal {
            return (.crash, "killed by signal \(signal)\(signalName(signal).map { " (\($0))" } ?? "")")
        }
        return (.crash, "exited with status \(exit.exitCode ?? -1)")
    }
}

func signalName(_ signal: Int32) -> String? {
    switch signal {
    case 1: "SIGHUP"
    case 2: "SIGINT"
    case 4: "SIGILL"
    case 6: "SIGABRT"
    case 7: "SIGBUS"
    case 8: "SIGFPE"
    case 9: "SIGKILL"
    case 11: "SIGSEGV"
    case 13: "SIGPIPE"
    case 15: "SIGTERM"
    default: nil
    }
}

extension String {
    func trimmed(to length: Int) -> String {
        let t = self.drop { $0 == " " || $0 == "\t" }
        return t.count <= length ? String(t) : String(t.prefix(length)) + "…"
    }
}
