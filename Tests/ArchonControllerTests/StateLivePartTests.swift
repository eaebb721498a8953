import ArchonController
import ArchonDev
import ArchonCore
import ArchonModel
import ArchonNATS
import Foundation
import Logging
import Testing

/// Steps, heartbeats and resource samples change only a job's live part (its applied sequences, its last signs of
/// life) and its node's (when it was last heard): a batch of them stores those parts alone, a few dozen bytes a job
/// instead of its whole record and its node's, and a reader
/// puts it back onto the record — from the journal, and from KV once flushed. Anything else that changes stores the
/// record again.
@Suite("A job's live part stored apart", .serialized)
struct StateLivePartTests {
    static let jobs = 40

    @Test func stepsStoreTheLivePartAloneAndTheStateComesBackWhole() async throws {
        let fleet = try await FleetHarness()
        let now = UnixTime.nowMillis()
        var core = StateScale.runningFleet(jobs: Self.jobs, nodes: 5, at: now)
        let running = core.jobs.filter { $0.status == .running }
        #expect(running.count == Self.jobs)
        let store = try await StateStore.open(fleet.js, writer: "live", flushInterval: .seconds(3600), logger: Logger(label: "test.live"))
        let whole = try await store.commit(core.takeChanges().map { ($0, core.stored($0)) }, outbox: [])

        // A step of every job: only live parts (and the nodes that heard them) are written.
        func batch(_ body: (JobRecord) -> TrainingEvent.Body, sequence: UInt64, at time: Int64) async throws -> Int {
            for job in running {
                let event = TrainingEvent(jobID: job.spec.id, nodeID: job.nodeID, attempt: 1, sequence: sequence, timeMs: time, body: body(job))
                _ = core.eventReceived(event, subjectNode: job.nodeID, at: time)
            }
            return try await store.commit(core.takeChanges().map { ($0, core.stored($0)) }, outbox: [])
        }
        // The first progress of an attempt arms its deadlines, which the record holds: that batch stores records.
        let firstSteps = try await batch({ _ in .step(StepProgress(step: 5, epoch: 1, loss: 1.6)) }, sequence: 3, at: now + 500)
        let steps = try await batch({ _ in .step(StepProgress(step: 10, epoch: 1, loss: 1.5)) }, sequence: 4, at: now + 1000)
        #expect(steps * 3 < firstSteps, "\(steps) bytes for the second step of \(Self.jobs) jobs, \(firstSteps) for the first")
        #expect(steps < Self.jobs * 400, "\(steps) bytes for a step of \(Self.jobs) jobs (all of them stored: \(whole))")
        let (afterSteps, _) = try await StateStore.read(fleet.js, policy: core.policy, at: now + 1500)
        #expect(afterSteps.state == core.state)
        #expect(afterSteps.job("job-0")?.current?.sequences.contains(4) == true)

        // An epoch changes the record (its metrics, its loss curve): the record is stored again, with its live part.
        let epochs = try await batch({ _ in
            .epoch(EpochMetrics(epoch: 1, totalEpochs: 20, loss: 1.2, learningRate: 0.001, durationSeconds: 60, step: 100))
        }, sequence: 5, at: now + 2000)
        #expect(epochs > steps * 3, "an epoch batch (\(epochs) bytes) stores records; a step batch (\(steps) bytes) did not")
        _ = try await batch({ _ in .step(StepProgress(step: 110, epoch: 2, loss: 1.1)) }, sequence: 6, at: now + 3000)

        // From the journal, then from KV alone once flushed (the journal purged below it).
        let (fromJournal, loaded) = try await StateStore.read(fleet.js, policy: core.policy, at: now + 3500)
        #expect(loaded.journalRecords == 5)
        #expect(fromJournal.state == core.state)
        // KV alone: flushed, and the journal emptied past the position (a flush keeps one flush's worth of it).
        await store.flush()
        let stateKV = try await fleet.js.keyValue(KeyValueConfig(bucket: Fleet.stateBucket, history: 1))
        let position = try #require(try await stateKV.get(StateStore.positionKey)).value
        try await fleet.js.purge(StateStore.journalStream, below: (UInt64(String(decoding: position, as: UTF8.self)) ?? 0) + 1)
        let (fromKV, flushed) = try await StateStore.read(fleet.js, policy: core.policy, at: now + 4000)
        #expect(flushed.journalRecords == 0)
        #expect(fromKV.state == core.state)
        #expect(fromKV.state.nodes[running[7].nodeID]?.lastSeenMs == now + 3000)
        let current = try #require(fromKV.job("job-7")?.current)
        #expect(current.sequences.contains(6) && !current.sequences.contains(7))
        #expect(current.lastMetrics?.epoch == 1)

        // A writer that took over knows the records it read: a heartbeat of every job stores live parts alone, as
        // the old writer's would (a new leader reading a backlog does not store every record it touches again).
        let next = try await StateStore.open(fleet.js, writer: "next", flushInterval: .seconds(3600), logger: Logger(label: "test.live.next"))
        var taken = fromKV
        _ = try await next.load()
        _ = taken.takeChanges()
        for job in running {
            let event = TrainingEvent(jobID: job.spec.id, nodeID: job.nodeID, attempt: 1, sequence: 7, timeMs: now + 5000,
                                      body: .heartbeat(Heartbeat(secondsSinceProgress: 1)))
            _ = taken.eventReceived(event, subjectNode: job.nodeID, at: now + 5000)
        }
        let afterTakeover = try await next.commit(taken.takeChanges().map { ($0, taken.stored($0)) }, outbox: [])
        #expect(afterTakeover < Self.jobs * 400, "\(afterTakeover) bytes for a heartbeat of \(Self.jobs) jobs after a load (all of them stored: \(whole))")
        // The records themselves are still written when they change.
        for job in running {
            let event = TrainingEvent(jobID: job.spec.id, nodeID: job.nodeID, attempt: 1, sequence: 8, timeMs: now + 6000,
                                      body: .epoch(EpochMetrics(epoch: 2, totalEpochs: 20, loss: 1.0, learningRate: 0.001, durationSeconds: 60, step: 200)))
            _ = taken.eventReceived(event, subjectNode: job.nodeID, at: now + 6000)
        }
        let epochsAfterTakeover = try await next.commit(taken.takeChanges().map { ($0, taken.stored($0)) }, outbox: [])
        #expect(epochsAfterTakeover > afterTakeover * 3, "an epoch batch after a load (\(epochsAfterTakeover) bytes) stores records")
        let (last, _) = try await StateStore.read(fleet.js, policy: core.policy, at: now + 7000)
        #expect(last.state == taken.state)
    }
}
