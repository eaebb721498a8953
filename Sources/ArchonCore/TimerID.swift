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
    /// The finished job's retention is over: it moves from the hot state to the archive.
    case archiveJob(jobID: String)
    /// The gracefully stopped attempt must have exited by then (its stop grace and a margin), else the job
    /// stops waiting for it.
    case drainDeadline(jobID: String, attempt: Int)
    /// The resolved incident's retention is over: it moves from the hot state to the archive.
    case archiveIncident(incidentID: String)
    /// The incident's acknowledgement expires then (`escalation.ackTimeout`): still unresolved, it pages again.
    case ackExpires(incidentID: String)
    /// The attempt has run that long (`escalation.resolveAfterHealthy`): reporting progress, the job's incident
    /// resolves itself.
    case healthyFor(jobID: String, attempt: Int)
    /// The attempt has run `remediation.restartBudgetResetAfter`: making progress, the job gets its restart budget
    /// and ladder positions back.
    case restartBudgetReset(jobID: String, attempt: Int)
    /// The incident's held page is due (its grouping wait or its silence is over): sent if still wanted.
    case pageHeld(incidentID: String)

    public var description: String {
        switch self {
        case .startDeadline(let job): "start-deadline/\(job)"
        case .progressDeadline(let job, let attempt): "progress-deadline/\(job)/\(attempt)"
        case .epochDeadline(let job, let attempt): "epoch-deadline/\(job)/\(attempt)"
        case .attemptDeadline(let job, let attempt): "attempt-deadline/\(job)/\(attempt)"
        case .restartDue(let job): "restart-due/\(job)"
        case .responseDue(let incident, let level): "response-due/\(incident)/\(level.rawValue)"
        case .nodeSilence(let node): "node-silence/\(node)"
        case .archiveJob(let job): "archive-job/\(job)"
        case .drainDeadline(let job, let attempt): "drain-deadline/\(job)/\(attempt)"
        case .archiveIncident(let incident): "archive-incident/\(incident)"
        case .ackExpires(let incident): "ack-expires/\(incident)"
        case .healthyFor(let job, let attempt): "healthy/\(job)/\(attempt)"
        case .restartBudgetReset(let job, let attempt): "budget-reset/\(job)/\(attempt)"
        case .pageHeld(let incident): "page-held/\(incident)"
        }
    }

    /// The entity whose stored record carries this deadline.
    public var owner: EntityKey {
        switch self {
        case .startDeadline(let job), .progressDeadline(let job, _), .epochDeadline(let job, _), .attemptDeadline(let job, _),
            .restartDue(let job), .archiveJob(let job), .drainDeadline(let job, _), .healthyFor(let job, _),
            .restartBudgetReset(let job, _):
            .job(job)
        case .responseDue(let incident, _), .archiveIncident(let incident), .ackExpires(let incident), .pageHeld(let incident):
            .incident(incident)
        case .nodeSilence(let node):
            .node(node)
        }
    }

    public static func < (a: TimerID, b: TimerID) -> Bool { a.description < b.description }
}

/// Every deadline the core is waiting for; the source of truth behind ``TimerID`` timers.
///
/// Each deadline belongs to an entity (``TimerID/owner``) and is stored with it; the index by owner makes
/// that cheap, and the owners whose deadlines changed are reported like changed entities.
public struct Deadlines: Codable, Sendable, Hashable {
    /// When each deadline falls, Unix milliseconds.
    public private(set) var due: [TimerID: Int64] = [:]
    private var byOwner: [EntityKey: Set<TimerID>] = [:]
    private var changedOwners: Set<EntityKey> = []

    /// No deadlines.
    public init() {}

    /// Sets (or moves) a deadline and asks the shell for a timer.
    mutating func set(_ id: TimerID, at ms: Int64, _ out: inout [ControllerAction]) {
        if due[id] == ms { return }
        store(id, ms)
        out.append(.scheduleTimer(id, atMs: ms))
    }

    /// Drops a deadline that is no longer wanted and tells the shell.
    mutating func cancel(_ id: TimerID, _ out: inout [ControllerAction]) {
        if remove(id) {
            out.append(.cancelTimer(id))
        }
    }

    /// Removes a deadline that has come due (the timer already fired: nothing to tell).
    mutating func take(_ id: TimerID, now: Int64) -> Bool {
        guard let at = due[id], at <= now else { return false }
        return remove(id)
    }

    private mutating func store(_ id: TimerID, _ ms: Int64) {
        due[id] = ms
        byOwner[id.owner, default: []].insert(id)
        changedOwners.insert(id.owner)
    }

    private mutating func remove(_ id: TimerID) -> Bool {
        guard due.removeValue(forKey: id) != nil else { return false }
        byOwner[id.owner]?.remove(id)
        if byOwner[id.owner]?.isEmpty == true { byOwner[id.owner] = nil }
        changedOwners.insert(id.owner)
        return true
    }

    /// The deadlines an entity carries.
    func owned(by owner: EntityKey) -> [TimerID: Int64] {
        var out: [TimerID: Int64] = [:]
        for id in byOwner[owner] ?? [] { out[id] = due[id] }
        return out
    }

    /// Replaces an entity's deadlines with those read from storage (not a change).
    mutating func load(_ owner: EntityKey, _ timers: [TimerID: Int64]) {
        for id in byOwner[owner] ?? [] { due[id] = nil }
        byOwner[owner] = timers.isEmpty ? nil : Set(timers.keys)
        for (id, at) in timers { due[id] = at }
    }

    mutating func takeChangedOwners() -> Set<EntityKey> {
        defer { changedOwners = [] }
        return changedOwners
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

    private enum CodingKeys: String, CodingKey { case due }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        for (id, at) in try c.decode([TimerID: Int64].self, forKey: .due) { store(id, at) }
        changedOwners = []
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(due, forKey: .due)
    }

    public static func == (a: Self, b: Self) -> Bool { a.due == b.due }
    public func hash(into hasher: inout Hasher) { hasher.combine(due) }
}
