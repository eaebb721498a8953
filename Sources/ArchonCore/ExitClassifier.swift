public import ArchonModel

/// What a process exit means.
public enum ExitVerdict: Sendable, Hashable {
    case completed
    /// Ended on a stop request: not a failure.
    case stopped
    case failed(Finding)
}

/// Turns an agent's exit report into a verdict: crash, OOM, or any class the agent recognised.
public enum ExitClassifier {
    /// - Parameters:
    ///   - expectedEpochs: epochs the config asks for.
    ///   - epochsReached: highest epoch any attempt reported; 0 when the job reports no epochs.
    ///   - nodeID: the node the attempt ran on, named in the evidence of a node resource fault.
    public static func classify(_ exit: JobExited, at timeMs: Int64, expectedEpochs: Int, epochsReached: Int, nodeID: String = "") -> ExitVerdict {
        if exit.stopRequested { return .stopped }
        let status = exit.signal != 0 ? "killed by signal \(exit.signal)" : "exit \(exit.exitCode)"
        func finding(_ symptom: Symptom, _ text: String) -> ExitVerdict {
            .failed(Finding(symptom: symptom, evidence: text, failureTimeMs: timeMs, logTail: exit.logTail))
        }
        func withDetail(_ text: String) -> String { exit.detail.isEmpty ? text : "\(text): \(exit.detail)" }

        if exit.oomKilled {
            return finding(.outOfMemory, withDetail("OOM-killed by the kernel (\(status))"))
        }
        if exit.failureClass == .nodeFault, let (fault, what) = NodeResourceFault.parse(exit.detail) {
            // "disk full on node n1: OSError: [Errno 28] No space left on device (exit 1)"
            let evidence = "\(fault.rawValue) on node \(nodeID.isEmpty ? "(unknown)" : nodeID): \(what) (\(status))"
            return .failed(Finding(symptom: .nodeFault, evidence: evidence, failureTimeMs: timeMs, logTail: exit.logTail, nodeResource: fault))
        }
        if let symptom = Symptom(exit.failureClass) {
            return finding(symptom, withDetail(status))
        }
        if exit.exitCode != 0 || exit.signal != 0 {
            return finding(.crash, withDetail("unexpected \(status)"))
        }
        if epochsReached > 0, expectedEpochs > epochsReached {
            return finding(.crash, withDetail("exited 0 after epoch \(epochsReached) of \(expectedEpochs)"))
        }
        return .completed
    }
}
