/// Why the core did something, in words an on-call engineer can check against the runbook.
///
/// Every ``ControllerAction`` carries one (timers name their purpose in their ``TimerID``).
public struct Reason: Codable, Sendable, Hashable, CustomStringConvertible {
    /// What was observed, in the runbook's words: "out of memory", "bad node".
    public var symptom: String
    /// The facts behind it: "attempt 2 on n1: OOM-killed (exit -1, signal 9)".
    public var evidence: String
    /// The policy rule applied: "remediation.ladders.outOfMemory step 1 of 3: halve batch size".
    public var rule: String

    /// A reason in free words.
    public init(symptom: String, evidence: String, rule: String) {
        self.symptom = symptom
        self.evidence = evidence
        self.rule = rule
    }

    /// A reason for a recognised symptom (its runbook title becomes `symptom`).
    public init(_ symptom: Symptom, evidence: String, rule: String) {
        self.init(symptom: symptom.title, evidence: evidence, rule: rule)
    }

    /// "out of memory: attempt 1 on n1: OOM-killed — rule: remediation.ladders.outOfMemory step 1 of 3".
    public var description: String {
        var text = symptom
        if !evidence.isEmpty { text += ": \(evidence)" }
        if !rule.isEmpty { text += " — rule: \(rule)" }
        return text
    }
}
