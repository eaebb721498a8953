public import ArchonModel

/// A deadline the core asked the shell to wake it for.
///
/// Timers are advisory: the core keeps every deadline in its state and re-checks it when a timer fires, so a
/// late, early or repeated firing is harmless, and ``FleetController/tick(at:)`` can stand in for all of them.
/// Scheduling an id that is already scheduled replaces it.
public enum TimerID: Codable, Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The job must have started by then, else it is stuck queued.
    case startDeadline(jobID: String)
    /// The attempt must have reported progress by then, else it hangs.
    case progressDeadline(jobID: String, attempt: Int)
    /// The attempt's current epoch must have ended by then, else it timed out.
    case epochDeadline(jobID: String, attempt: Int)
    /// The attempt must have finished by then, else it timed out.
    case attemptDeadline(jobID: String, attempt: Int)
    /// The backoff before the job's next attempt is over.
    case restartDue(jobID: String)
    /// The incident's current level must have acknowledged by then, else it climbs.
    case responseDue(incidentID: String, level: EscalationLevel)
    /// The node must have been heard from by then, else it is lost.
    case nodeSilence(nodeID: String)

    public var description: String {
        switch self {
        case .startDeadline(let job): "start-deadline/\(job)"
        case .progressDeadline(let job, let attempt): "progress-deadline/\(job)/\(attempt)"
        case .epochDeadline(let job, let attempt): "epoch-deadline/\(job)/\(attempt)"
        case .attemptDeadline(let job, let attempt): "attempt-deadline/\(job)/\(attempt)"
        case .restartDue(let job): "restart-due/\(job)"
        case .responseDue(let incident, let level): "response-due/\(incident)/\(level.rawValue)"
        case .nodeSilence(let node): "node-silence/\(node)"
        }
    }

    public static func < (a: TimerID, b: TimerID) -> Bool { a.description < b.description }
}

/// Every deadline the core is waiting for; the source of truth behind ``TimerID`` timers.
public struct Deadlines: Codable, Sendable, Hashable {
    /// When each deadline falls, Unix milliseconds.
    public private(set) var due: [TimerID: Int64] = [:]

    /// No deadlines.
    public init() {}

    /// Sets (or moves) a deadline and asks the shell for a timer.
    mutating func set(_ id: TimerID, at ms: Int64, _ out: inout [ControllerAction]) {
        if due[id] == ms { return }
        due[id] = ms
        out.append(.scheduleTimer(id, atMs: ms))
    }

    /// Drops a deadline that is no longer wanted and tells the shell.
    mutating func cancel(_ id: TimerID, _ out: inout [ControllerAction]) {
        if due.removeValue(forKey: id) != nil {
            out.append(.cancelTimer(id))
        }
    }

    /// Removes a deadline that has come due (the timer already fired: nothing to tell).
    mutating func take(_ id: TimerID, now: Int64) -> Bool {
        guard let at = due[id], at <= now else { return false }
        due.removeValue(forKey: id)
        return true
    }

    /// Deadlines due at `now`, earliest first, ties by id.
    func dueIDs(now: Int64) -> [TimerID] {
        due.filter { $0.value <= now }
            .sorted { $0.value != $1.value ? $0.value < $1.value : $0.key < $1.key }
            .map(\.key)
    }

    /// Every deadline, earliest first: what a restarted shell must schedule.
    public var all: [(id: TimerID, atMs: Int64)] {
        due.sorted { $0.value != $1.value ? $0.value < $1.value : $0.key < $1.key }.map { ($0.key, $0.value) }
    }
}
