public import ArchonModel

/// The on-call levels: who answers, how soon, and who is next; and what holds a page back.
public struct EscalationLadder: Sendable, Hashable {
    /// The policy's levels.
    public var levels: LevelTable
    /// How long a job's own page waits for a fleet incident that may explain it (`escalation.groupWait`); 0 = none.
    public var groupWaitMs: Int64
    /// Silences in force or scheduled.
    public var silences: [Silence]

    /// The ladder of `levels` (the runbook's by default).
    public init(levels: LevelTable = LevelTable(), groupWaitMs: Int64 = 0, silences: [Silence] = []) {
        self.levels = levels
        self.groupWaitMs = groupWaitMs
        self.silences = silences
    }

    /// Until when a page of `incident` is held, and by what (`grouping` or a silence id); nil = page now. `grouping`:
    /// the page comes from a job's failure, which a fleet incident raised a moment later may explain. The longest
    /// hold wins; a page already held for grouping keeps its first deadline (Alertmanager's group_wait).
    func hold(_ incident: Incident, grouping: Bool, at now: Int64) -> (untilMs: Int64, by: String)? {
        var hold: (untilMs: Int64, by: String)?
        if grouping, incident.cause == .job, groupWaitMs > 0 {
            let first = incident.heldPage.flatMap { $0.by == HeldPage.grouping ? $0.untilMs : nil }
            hold = (first ?? now + groupWaitMs, HeldPage.grouping)
        }
        for silence in silences where silence.isActive(at: now) && silence.matches(incident) && silence.endsAtMs > (hold?.untilMs ?? now) {
            hold = (silence.endsAtMs, silence.id)
        }
        return hold
    }

    /// How long `level` has to acknowledge, in milliseconds.
    public func responseTime(_ level: EscalationLevel) -> Int64 { levels[level].responseTime.milliseconds }

    /// Who answers at `level`.
    public func contact(_ level: EscalationLevel) -> String { levels[level].contact }

    /// When `level` must have acknowledged an incident it received at `from`.
    public func respondBy(_ level: EscalationLevel, from: Int64) -> Int64 { from + responseTime(level) }

    /// "L2 (Senior ML Engineer)".
    public func name(_ level: EscalationLevel) -> String { "\(level.rawValue) (\(contact(level)))" }
}
