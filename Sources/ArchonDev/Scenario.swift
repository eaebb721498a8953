public import ArchonController
public import ArchonModel
import Foundation

/// What a scenario sees of the fleet: its jobs and the incidents that concern them.
public struct Observation: Sendable {
    public var jobs: [String: JobView]
    public var incidents: [IncidentView]
    public var nodes: [NodeView]

    public func job(_ id: String) -> JobView? { jobs[id] }
    /// Incidents that are pages of their own (not attached to a fleet incident).
    public var pages: [IncidentView] { incidents.filter { $0.parent.isEmpty } }
}

/// One failure of the runbook, staged for real on the dev fleet, with what must come of it.
public struct Scenario: Sendable {
    public let number: Int
    public let title: String
    /// What is wrong, in a line.
    public let setup: String
    /// The jobs it submits, in order.
    public let jobs: [JobSpec]
    /// Before submitting: files to make, datasets to register, nodes to bring in.
    public let prepare: @Sendable (ScenarioContext) async throws -> Void
    /// During the run, after each observation (e.g. restart the controller at the right moment).
    public let during: @Sendable (ScenarioContext, Observation) async throws -> Void
    /// The scenario is over when this holds (or `timeout` passes).
    public let settled: @Sendable (Observation) -> Bool
    /// What must be true at the end: an empty list means it ended as expected.
    public let verify: @Sendable (Observation) -> [String]
    public let timeout: Duration

    public init(
        number: Int, title: String, setup: String, jobs: [JobSpec],
        prepare: @escaping @Sendable (ScenarioContext) async throws -> Void = { _ in },
        during: @escaping @Sendable (ScenarioContext, Observation) async throws -> Void = { _, _ in },
        settled: @escaping @Sendable (Observation) -> Bool, verify: @escaping @Sendable (Observation) -> [String],
        timeout: Duration = .seconds(90)
    ) {
        self.number = number
        self.title = title
        self.setup = setup
        self.jobs = jobs
        self.prepare = prepare
        self.during = during
        self.settled = settled
        self.verify = verify
        self.timeout = timeout
    }
}

/// What a scenario may act on.
public final class ScenarioContext: @unchecked Sendable {
    public let fleet: DevFleet
    public let client: ControllerClient
    /// Where the scenario's files go.
    public let directory: String
    private let lock = NSLock()
    private var flags: Set<String> = []

    init(fleet: DevFleet, directory: String) {
        self.fleet = fleet
        self.client = fleet.client
        self.directory = directory
    }

    /// True the first time it is asked for `name`: for once-only actions in `during`.
    public func once(_ name: String) -> Bool {
        lock.withLock { flags.insert(name).inserted }
    }
}

/// Checks for `verify`, collecting what did not hold.
struct Expectations {
    private(set) var problems: [String] = []

    mutating func expect(_ condition: Bool, _ message: @autoclosure () -> String) {
        if !condition { problems.append(message()) }
    }
}
