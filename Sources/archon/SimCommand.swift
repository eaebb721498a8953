import ArchonDev
import ArchonModel
import ArchonNATS
import ArchonWire
import ArgumentParser
import Foundation
import Logging

/// `archon sim`: a made-up fleet's event stream into a real JetStream, to load-test a deployment.
struct SimCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sim",
        abstract: "Publish a simulated fleet's training events (heartbeats, resources, steps, epochs, failures) to NATS.",
        discussion: """
            Jobs job-0… run on nodes node-0… (job i on node i mod --nodes), each reporting what an agent reports for a \
            trainer. Events go to archon.v1.events.<node>.<job> like an agent's, as fast as possible or at --rate, \
            deterministic for a --seed. The controller counts events of jobs it does not know as such: submit jobs \
            of the same ids to have them tracked. ARCHON_EVENTS must exist (a controller creates it at start). Needs an identity allowed to publish on every node's subject \
            (the admin seed of `archon credentials`) where authentication is on.
            """)

    @OptionGroup var connection: NATSClientOptions
    @Option(help: "Simulated nodes.") var nodes = 50
    @Option(help: "Simulated jobs.") var jobs = 200
    @Option(help: "Events to publish in all.") var events = 100_000
    @Option(help: "Events per second; 0 = as fast as the server takes them.") var rate = 0.0
    @Option(help: "Probability that a job's event is a failure (the attempt's exit), 0-1.") var failureRate = 0.0
    @Option(help: "Seed: the same seed publishes the same events.") var seed: UInt64 = 1
    @Flag(help: "Wait for each event's JetStream acknowledgement (slower; proves every one was stored).") var acknowledged = false

    func validate() throws {
        guard nodes > 0, jobs > 0, events > 0 else { throw ValidationError("--nodes, --jobs and --events must be positive") }
        guard rate >= 0, rate.isFinite else { throw ValidationError("--rate must be 0 or a positive number") }
        guard (0...1).contains(failureRate) else { throw ValidationError("--failure-rate is a probability, 0 to 1") }
    }

    func run() async throws {
        var logger = Logger(label: "archon.sim")
        logger.logLevel = .warning
        let nc = try await NATSConnection.connect(try connection.options(name: "archon-sim"), logger: logger)
        defer { nc.close() }
        let js = try nc.jetStream()
        var simulator = EventSimulator(jobs: EventSimulator.placements(jobs: jobs, nodes: nodes),
                                       options: EventSimulator.Options(failureRate: failureRate, seed: seed))
        let started = ContinuousClock.now
        try await simulator.publish(events, on: nc, rate: rate, acknowledging: acknowledged ? js : nil)
        let elapsed = ContinuousClock.now - started
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        print("published \(events) events of \(jobs) jobs on \(nodes) nodes (\(simulator.failures) failures) in "
              + String(format: "%.1f s: %.0f events/s", seconds, Double(events) / seconds))
    }
}
