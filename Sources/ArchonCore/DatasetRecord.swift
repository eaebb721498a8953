/// Whether a dataset can be read.
public enum DatasetStatus: String, Codable, Sendable, CaseIterable {
    case ready
    case unavailable
}

/// A dataset in the registry, as an operator or pipeline registers it.
public struct Dataset: Codable, Sendable, Hashable {
    public var id: String
    /// Path or URL.
    public var location: String
    public var status: DatasetStatus
    /// Teams that may read it; empty = every team.
    public var allowedTeams: [String]

    public init(id: String, location: String = "", status: DatasetStatus = .ready, allowedTeams: [String] = []) {
        self.id = id
        self.location = location
        self.status = status
        self.allowedTeams = allowedTeams
    }

    /// People register datasets by hand: `id` and `location` (empty = the trainer's built-in data) are required,
    /// `status` defaults to ready and `allowedTeams` to every team.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(String.self, forKey: .id)
        location = try c.decode(String.self, forKey: .location)
        status = try c.decodeIfPresent(DatasetStatus.self, forKey: .status) ?? .ready
        allowedTeams = try c.decodeIfPresent([String].self, forKey: .allowedTeams) ?? []
    }
}

/// A registered dataset and whether retries of its jobs are paused.
public struct DatasetRecord: Codable, Sendable, Hashable {
    public internal(set) var dataset: Dataset
    public internal(set) var registeredAtMs: Int64
    /// Failed jobs on it are held instead of restarted (the bad-dataset rule) until an operator resumes it.
    public internal(set) var retriesPaused = false
    /// Incident that paused it; empty when not paused.
    public internal(set) var pausedByIncident = ""
    /// Failures on it before this time no longer count for the bad-dataset rule: it was resumed (repaired). nil = all count.
    public internal(set) var evidenceSinceMs: Int64?

    public var id: String { dataset.id }
    public var location: String { dataset.location }
    public var status: DatasetStatus { dataset.status }
}
