public import ArchonModel

/// Everything the controller decides from, restored after a restart.
///
/// Read it through ``FleetController``'s accessors; only the controller's inputs change it. It is stored as
/// entities (``EntityKey``, ``StoredEntity``): ``takeChanges()`` says which ones a batch wrote.
public struct FleetState: Codable, Sendable, Hashable {
    /// Jobs by id, finished ones included until their retention ends (then they are archived).
    public internal(set) var jobs = JobTable()
    /// Nodes by id, as their agents describe them.
    public internal(set) var nodes = EntityMap<NodeRecord>()
    /// The dataset registry.
    public internal(set) var datasets = EntityMap<DatasetRecord>()
    /// Every incident, open or resolved (resolved ones until their retention ends).
    public internal(set) var incidents = IncidentBook()
    /// Recent failures and healthy signs for the fleet rules.
    public internal(set) var correlation = CorrelationWindow()
    /// Every deadline the core waits for (what the timers stand for).
    public internal(set) var deadlines = Deadlines()
    /// Symptoms whose config changes are frozen, by the system-resource incident that froze them.
    public internal(set) var freezes: [String: [Symptom]] = [:]
    /// Written into every assignment; set by ``FleetController/leadershipAcquired(fencingEpoch:at:)``.
    public internal(set) var fencingEpoch: UInt64 = 0
    /// When the controller last heard the fleet again after not hearing it (``FleetController/fleetHeardAgain(at:)``):
    /// silence, hang and start windows count from no earlier than this.
    public internal(set) var heardAgainAtMs: Int64 = 0
    /// For the fleet-wide rules (`multi_agent`, `security:permission_denied`, `system_resource:<resource>`): failures
    /// before this time no longer count, because an operator resolved the incident they raised. A handful of keys.
    public internal(set) var evidenceSince: [String: Int64] = [:]
    /// Silences and maintenance windows in force or scheduled (at most ``FleetController/maxSilences``; ended ones
    /// are dropped when the next is added).
    public internal(set) var silences: [Silence] = []

    /// An empty fleet.
    public init() {}
}
