import ArchonDev
import ArchonModel
import Testing

/// `archon sim`'s generator: what it publishes must look like agents' events, the same for a seed.
@Suite("Event simulator")
struct EventSimulatorTests {
    static let placements = EventSimulator.placements(jobs: 20, nodes: 5)

    @Test func theSameSeedGivesTheSameEventsAndAnotherSeedOthers() {
        var a = EventSimulator(jobs: Self.placements, options: .init(failureRate: 0.05, seed: 7))
        var b = EventSimulator(jobs: Self.placements, options: .init(failureRate: 0.05, seed: 7))
        var c = EventSimulator(jobs: Self.placements, options: .init(failureRate: 0.05, seed: 8))
        let first = (0..<500).map { a.next(timeMs: Int64($0)).event }
        #expect(first == (0..<500).map { b.next(timeMs: Int64($0)).event })
        #expect(first != (0..<500).map { c.next(timeMs: Int64($0)).event })
    }

    @Test func eventsGoOnTheirAgentsSubjectsWithRisingSequencesPerAttempt() {
        var simulator = EventSimulator(jobs: Self.placements, options: .init(failureRate: 0.02, seed: 3))
        var last: [String: UInt64] = [:]  // job/attempt -> sequence
        var kinds: Set<String> = []
        for i in 0..<5000 {
            let (subject, event) = simulator.next(timeMs: Int64(i))
            if event.jobID.isEmpty {
                #expect(subject == "archon.v1.events.\(event.nodeID)._node")
            } else {
                #expect(subject == "archon.v1.events.\(event.nodeID).\(event.jobID)")
                #expect(Self.placements.contains { $0.jobID == event.jobID && $0.nodeID == event.nodeID })
            }
            let key = "\(event.nodeID)/\(event.jobID)/\(event.attempt)"
            #expect(event.sequence == (last[key] ?? 0) + 1, "sequences of \(key) rise by one")
            last[key] = event.sequence
            kinds.insert("\(event.body)".components(separatedBy: "(").first ?? "")
        }
        #expect(kinds.isSuperset(of: ["heartbeat", "resources", "step", "epoch", "exited"]), "saw \(kinds)")
    }

    @Test func failuresEndTheAttemptAtTheConfiguredRate() {
        var simulator = EventSimulator(jobs: Self.placements, options: .init(failureRate: 0.1, nodeHeartbeatShare: 0, seed: 11))
        var exits: [FailureClass] = []
        for i in 0..<10_000 {
            let (_, event) = simulator.next(timeMs: Int64(i))
            if case .exited(let exit) = event.body {
                exits.append(exit.failureClass)
                #expect(!exit.completed)
            }
        }
        #expect(exits.count == simulator.failures)
        #expect((800...1200).contains(exits.count), "about 10 % of 10,000 events, got \(exits.count)")
        #expect(Set(exits) == Set(EventSimulator.failureClasses))
        // Each failure moved its job to a new attempt.
        #expect(simulator.jobs.map(\.attempt).reduce(0, +) == Self.placements.count + exits.count)
    }

    @Test func withoutAFailureRateNoAttemptEnds() {
        var simulator = EventSimulator(jobs: Self.placements, options: .init(seed: 5))
        for i in 0..<5000 {
            if case .exited = simulator.next(timeMs: Int64(i)).event.body { Issue.record("no failure expected") }
        }
        #expect(simulator.failures == 0 && simulator.produced == 5000)
    }
}
