import ArchonModel
import ArchonNATS
import ArchonWire
import Foundation

/// Plays an agent on the wire (no processes): publishes NodeStatus and job events exactly as an agent would.
/// For tests that need exact control of the event stream (bursts, crashes, spoofing).
final class SyntheticAgent: @unchecked Sendable {
    let nodeID: String
    let js: JetStream
    private var sequences: [String: UInt64] = [:]
    private var nodeSequence: UInt64 = 0

    init(nodeID: String, js: JetStream) {
        self.nodeID = nodeID
        self.js = js
    }

    func publishStatus(memory: UInt64 = 64 << 30, cpus: Int = 32) async throws {
        nodeSequence += 1
        let status = NodeStatus(nodeID: nodeID, agentVersion: "test", capacity: NodeCapacity(cpuCores: cpus, memoryBytes: memory, diskBytes: 1 << 40),
                                enforcement: EnforcementCapabilities(memory: .cgroupV2))
        try await send(TrainingEvent(jobID: "", nodeID: nodeID, attempt: 0, sequence: nodeSequence, timeMs: UnixTime.nowMillis(), body: .nodeStatus(status)))
    }

    /// Publishes the next event of (job, attempt), with its own gap-free sequence.
    func emit(_ job: String, attempt: Int, _ body: TrainingEvent.Body, asNode: String? = nil) async throws {
        let key = "\(job).\(attempt)"
        let sequence = (sequences[key] ?? 0) + 1
        sequences[key] = sequence
        let event = TrainingEvent(jobID: job, nodeID: asNode ?? nodeID, attempt: attempt, sequence: sequence, timeMs: UnixTime.nowMillis(), body: body)
        try await send(event)
    }

    func send(_ event: TrainingEvent, subjectNode: String? = nil) async throws {
        let subject = Fleet.eventsSubject(node: subjectNode ?? nodeID, job: event.jobID.isEmpty ? nil : event.jobID)
        _ = try await js.publish(subject, event.encoded(), messageID: event.messageID)
    }

    /// An attempt that starts, reports `epochs` epochs and ends with `exit`.
    func run(_ job: String, attempt: Int, epochs: Int, exit: JobExited) async throws {
        try await emit(job, attempt: attempt, .accepted(JobAccepted(fencingEpoch: 1)))
        try await emit(job, attempt: attempt, .started(JobStarted(pid: 4242)))
        for epoch in 0..<epochs {
            try await emit(job, attempt: attempt, .epoch(EpochMetrics(epoch: epoch + 1, totalEpochs: 10, loss: 2.0 / Double(epoch + 1))))
        }
        try await emit(job, attempt: attempt, .exited(exit))
    }
}

func waitFor<T>(_ what: String, timeout: Duration = .seconds(30), _ probe: () async throws -> T?) async throws -> T {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if let value = try await probe() { return value }
        try await Task.sleep(for: .milliseconds(100))
    }
    if let value = try await probe() { return value }
    throw WaitTimeout(description: "timed out waiting for \(what)")
}

struct WaitTimeout: Error, CustomStringConvertible {
    let description: String
}
