/// Which sequence numbers of one (job, attempt) were applied, so a redelivered event changes nothing.
///
/// Holds the highest gap-free sequence plus the few seen beyond a gap; bounded even if a gap never fills.
public struct SequenceWindow: Codable, Sendable, Hashable {
    /// Every sequence in `1...contiguous` was applied.
    public private(set) var contiguous: UInt64 = 0
    /// Applied sequences above a gap.
    public private(set) var ahead: Set<UInt64> = []

    static let maxAhead = 1024

    /// Nothing applied yet.
    public init() {}

    /// Records `sequence`; false when it was applied before (or is 0, which no agent sends).
    public mutating func insert(_ sequence: UInt64) -> Bool {
        guard sequence > 0, sequence > contiguous, !ahead.contains(sequence) else { return false }
        ahead.insert(sequence)
        while ahead.remove(contiguous.addingSaturated(1)) != nil { contiguous += 1 }
        if ahead.count > Self.maxAhead, let lowest = ahead.min() {
            // A gap that never filled: treat what lies below the lowest seen as lost.
            contiguous = lowest - 1
            while ahead.remove(contiguous.addingSaturated(1)) != nil { contiguous += 1 }
        }
        return true
    }

    /// Whether `sequence` was applied.
    public func contains(_ sequence: UInt64) -> Bool { sequence <= contiguous || ahead.contains(sequence) }
}
