public import ArchonModel

/// A symptom a detector found, with the evidence that shows it.
public struct Finding: Codable, Sendable, Hashable {
    /// What was found.
    public var symptom: Symptom
    /// The facts, e.g. "OOM-killed by the kernel (killed by signal 9)".
    public var evidence: String
    /// When it went wrong (the agent's event time, or the deadline that passed).
    public var failureTimeMs: Int64
    /// Last output lines of the process, newest last, when the agent sent them.
    public var logTail: [String]
    /// Checkpoints from this epoch on are suspect (diverged); resume from an earlier one.
    public var badEpoch: Int?
    /// The node's storage failed the job (a `nodeFault` the agent named): the node is reported and the job moved,
    /// not charged a restart.
    public var nodeResource: NodeResourceFault?

    public init(symptom: Symptom, evidence: String, failureTimeMs: Int64, logTail: [String] = [], badEpoch: Int? = nil,
                nodeResource: NodeResourceFault? = nil) {
        self.symptom = symptom
        self.evidence = evidence
        self.failureTimeMs = failureTimeMs
        self.logTail = logTail
        self.badEpoch = badEpoch
        self.nodeResource = nodeResource
    }
}
