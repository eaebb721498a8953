public import ArchonModel

/// The on-call levels: who answers, how soon, and who is next.
public struct EscalationLadder: Sendable, Hashable {
    /// The policy's levels.
    public var levels: LevelTable

    /// The ladder of `levels` (the runbook's by default).
    public init(levels: LevelTable = LevelTable()) {
        self.levels = levels
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
