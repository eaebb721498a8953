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
    /// The last lines of its output (stderr and stdout), newest last.
    public var logTail: [String]

    public init(
        exitCode: Int32?, signal: Int32? = nil, cgroupOOMKill: Bool = false, killedByAgent: AgentKill? = nil,
        reportedErrorClass: FailureClass? = nil, logTail: [String] = []
    ) {
        self.exitCode = exitCode
        self.signal = signal
        self.cgroupOOMKill = cgroupOOMKill
        self.killedByAgent = killedByAgent
        self.reportedErrorClass = reportedErrorClass
        self.logTail = logTail
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
/// Order of evidence: the agent's own kill reason, the kernel's OOM kill, the trainer's own report,
/// then the output signatures (newest line first), then the bare exit status.
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

    public init() {}

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
