import ArchonController
import ArchonDev
import ArchonCore
import ArchonModel
import ArchonNATS
import Foundation
import Logging
import Testing

/// The state of a large fleet goes through the real store and comes back whole. Times and sizes are measured by
/// `make bench` (docs/performance.md), whose state step also rebuilds 100,000 jobs on 10,000 nodes and counts them back;
/// this shows at a fifth of that size (a fifth of the time in `make test`) that every entity comes back equal and a
/// controller serves and extends what it loaded.
@Suite("Controller state at fleet size", .serialized)
struct StateScaleTests {
    static let jobs = 20_000
    static let nodes = 2_000

    @Test func twentyThousandJobsOnTwoThousandNodesAreStoredRebuiltAndServed() async throws {
        let fleet = try await FleetHarness()
        let now = UnixTime.nowMillis()
        var core = StateScale.fleet(jobs: Self.jobs, nodes: Self.nodes, at: now)
        let store = try await StateStore.open(fleet.js, writer: "scale", flushInterval: .seconds(3600), logger: Logger(label: "test.scale"))
        let everything = core.takeChanges().map { ($0, core.stored($0)) }
        #expect(everything.count == 2 * Self.jobs + Self.nodes + 1)  // a record and a spec per job
        try await store.commit(everything, outbox: [])
        await store.flush()

        // One ordinary batch afterwards writes a few entities, not the fleet.
        _ = core.takeChanges()
        for n in 0..<64 { _ = core.nodeStatusReceived(NodeStatus(nodeID: "node-\(n)", agentVersion: "2"), at: now + 1000) }
        let batch = core.takeChanges().map { ($0, core.stored($0)) }
        #expect(batch.count == 65)
        let written = try await store.commit(batch, outbox: [])
        #expect(written < 64 * 2048, "\(written) bytes for a batch of 64 node statuses")

        // A new reader rebuilds exactly this state from KV plus the journal.
        let (rebuilt, loaded) = try await StateStore.read(fleet.js, policy: core.policy, at: now + 2000)
        #expect(loaded.journalRecords == 1)
        #expect(rebuilt.state.jobs.count == Self.jobs && rebuilt.state.nodes.count == Self.nodes)
        #expect(rebuilt.state == core.state)

        // A controller takes over that state, serves it, stores a change and finds it again after a restart.
        var config = fleet.controllerConfig()
        config.policyFile = try policyFile(#"{"validation": {"requireCapacity": false}}"#)
        var controller = try await RunningController(config: config)
        let api = HTTP(base: controller.api, token: adminToken.token)
        _ = try await waitFor("the controller to lead with the stored fleet", timeout: .seconds(120)) {
            try await api.call("GET", "/v1/training/jobs/job-\(Self.jobs - 1)").status == 200 ? true : nil
        }
        #expect(await controller.controller.read { $0.state.jobs.count } == Self.jobs)
        #expect(try await api.call("POST", "/v1/training/jobs", body: faultSpec("one-more", fault: "none")).status == 201)
        await controller.stop()
        controller = try await RunningController(config: config)
        let again = HTTP(base: controller.api, token: adminToken.token)
        _ = try await waitFor("one-more after the restart", timeout: .seconds(120)) {
            try await again.call("GET", "/v1/training/jobs/one-more").status == 200 ? true : nil
        }
        #expect(await controller.controller.read { $0.state.jobs.count } == Self.jobs + 1)
        await controller.stop()
    }
}

/// Found by `make chaos` (seed 2): while one controller took over, the other flushed its state and purged the journal
/// between the new leader's read of the keys and its read of the journal. The journal then started past the position
/// the keys were flushed at, and the load trapped on an empty range. Now such a load reads again, and a state that
/// stays that way is an error the controller retries, never a crash.
@Suite("Controller state read while another writer flushes", .serialized)
struct StateFlushedWhileLoadingTests {
    @Test func aJournalPurgedPastTheStoredPositionIsReadAgainNotATrap() async throws {
        let fleet = try await FleetHarness()
        let now = UnixTime.nowMillis()
        var core = StateScale.fleet(jobs: 3, nodes: 1, at: now)
        let store = try await StateStore.open(fleet.js, writer: "a", flushInterval: .seconds(3600), logger: Logger(label: "test.flush"))
        try await store.commit(core.takeChanges().map { ($0, core.stored($0)) }, outbox: [])
        _ = core.nodeStatusReceived(NodeStatus(nodeID: "node-0", agentVersion: "2"), at: now + 1000)
        try await store.commit(core.takeChanges().map { ($0, core.stored($0)) }, outbox: [])
        let bounds = try await fleet.js.streamBounds(StateStore.journalStream)
        #expect(bounds.last >= 2)

        // What the reader sees in the race: keys flushed at position 0, a journal purged to empty above it.
        try await fleet.js.purge(StateStore.journalStream, below: bounds.last + 1)
        let stateKV = try await fleet.js.keyValue(KeyValueConfig(bucket: Fleet.stateBucket, history: 1))
        _ = try await stateKV.put(StateStore.positionKey, Array("0".utf8))
        let reader = try await StateStore.open(fleet.js, writer: "b", flushInterval: .seconds(3600), logger: Logger(label: "test.flush"))
        await #expect(throws: StateLoadError.self) { _ = try await reader.load(forWriting: false) }

        // Once the keys catch up with the journal (the other writer's flush lands), the same load succeeds.
        _ = try await stateKV.put(StateStore.positionKey, Array("\(bounds.last)".utf8))
        let loaded = try await reader.load(forWriting: false)
        #expect(loaded.journalRecords == 0)
    }
}

/// Found by `make chaos` (seed 1): a deposed leader's flush, in flight while a NATS server restarted, landed after the
/// new leader's and put an older job record back over a newer one; the next leader would have lost acknowledged
/// events. Flushes now write over the revision they last saw, and the journal decides who wins a conflict.
@Suite("A deposed controller's late flush", .serialized)
struct StateLateFlushTests {
    @Test func aDeposedLeadersLateFlushDoesNotPutOlderValuesBack() async throws {
        let fleet = try await FleetHarness()
        let now = UnixTime.nowMillis()
        let logger = Logger(label: "test.late-flush")
        func changes(version: String) -> [(EntityKey, StoredEntity?)] {
            var core = StateScale.fleet(jobs: 1, nodes: 1, at: now)
            _ = core.takeChanges()
            _ = core.nodeStatusReceived(NodeStatus(nodeID: "node-0", agentVersion: version), at: now + 1000)
            return core.takeChanges().map { ($0, core.stored($0)) }
        }

        // A leads and journals version 1 of node-0, not flushed yet.
        let a = try await StateStore.open(fleet.js, writer: "a", flushInterval: .seconds(3600), logger: logger)
        _ = try await a.load()
        try await a.commit(changes(version: "1"), outbox: [])

        // B takes over: reads it, journals version 2, flushes.
        let b = try await StateStore.open(fleet.js, writer: "b", flushInterval: .seconds(3600), logger: logger)
        _ = try await b.load()
        try await b.commit(changes(version: "2"), outbox: [])
        await b.flush()
        #expect(try await StateStore.read(fleet.js, at: now).core.node("node-0")?.status.agentVersion == "2")

        // A's flush comes late: it must not put version 1 back, nor move the position back.
        await a.flush()
        let stored = try await StateStore.read(fleet.js, at: now).core
        #expect(stored.node("node-0")?.status.agentVersion == "2")
        await #expect(throws: NATSError.self) { try await a.commit(changes(version: "3"), outbox: []) }

        // B goes on flushing over whatever A managed to write.
        try await b.commit(changes(version: "4"), outbox: [])
        await b.flush()
        #expect(try await StateStore.read(fleet.js, at: now).core.node("node-0")?.status.agentVersion == "4")
    }
}

/// Found by `make chaos` (seed 2): a new leader loaded the journal's records above the keys' position but did not count
/// them as its own to flush; its first flush then purged the journal below its position, and with it those records,
/// which no key held. Jobs that had completed under the previous leader were running again two failovers later.
@Suite("What a new leader read from the journal", .serialized)
struct StateTakeoverFlushTests {
    @Test func aNewLeadersFirstFlushKeepsWhatItReadFromTheJournal() async throws {
        let fleet = try await FleetHarness()
        let now = UnixTime.nowMillis()
        let logger = Logger(label: "test.takeover-flush")
        func changes(node: String, version: String) -> [(EntityKey, StoredEntity?)] {
            var core = StateScale.fleet(jobs: 1, nodes: 2, at: now)
            _ = core.takeChanges()
            _ = core.nodeStatusReceived(NodeStatus(nodeID: node, agentVersion: version), at: now + 1000)
            return core.takeChanges().map { ($0, core.stored($0)) }.filter { $0.0.description.contains(node) }
        }

        // A journals node-0 at version 7 and dies before flushing it.
        let a = try await StateStore.open(fleet.js, writer: "a", flushInterval: .seconds(3600), logger: logger)
        _ = try await a.load()
        try await a.commit(changes(node: "node-0", version: "7"), outbox: [])

        // B takes over, journals a change of node-1 only, flushes: the journal is purged below its position.
        let b = try await StateStore.open(fleet.js, writer: "b", flushInterval: .seconds(3600), logger: logger)
        _ = try await b.load()
        try await b.commit(changes(node: "node-1", version: "8"), outbox: [])
        await b.flush()
        try await b.commit(changes(node: "node-1", version: "9"), outbox: [])
        await b.flush()
        #expect(try await fleet.js.streamBounds(StateStore.journalStream).first > 1, "the flushes purged the journal")

        // A third reader still finds node-0 at version 7.
        let stored = try await StateStore.read(fleet.js, at: now).core
        #expect(stored.node("node-0")?.status.agentVersion == "7")
        #expect(stored.node("node-1")?.status.agentVersion == "9")
    }
}

/// Found by `make chaos` (seed 15 of a 20-seed run, after three NATS faults): the stored position read 49 while the
/// journal had been purged below 52, so no controller could load the state again. However a position write gets lost
/// (a deposed writer's older one, a cluster that rolled it back), a flush now purges the journal only below the
/// position of the flush before it: one lost position still finds the journal above it.
@Suite("A lost position write", .serialized)
struct StateLostPositionTests {
    @Test func aPositionOneFlushBehindStillFindsTheJournalAboveIt() async throws {
        let fleet = try await FleetHarness()
        let now = UnixTime.nowMillis()
        var core = StateScale.fleet(jobs: 2, nodes: 1, at: now)
        let store = try await StateStore.open(fleet.js, writer: "a", flushInterval: .seconds(3600), logger: Logger(label: "test.lost-position"))
        _ = try await store.load()
        func step(_ version: String) async throws {
            _ = core.nodeStatusReceived(NodeStatus(nodeID: "node-0", agentVersion: version), at: now + 1000)
            try await store.commit(core.takeChanges().map { ($0, core.stored($0)) }, outbox: [])
        }
        try await step("1")
        await store.flush()
        let first = try await fleet.js.streamBounds(StateStore.journalStream).last
        try await step("2")
        await store.flush()
        try await step("3")
        #expect(try await fleet.js.streamBounds(StateStore.journalStream).first <= first + 1, "purged below the previous position only")

        // The second flush's position is lost: the stored one is the first flush's again.
        let stateKV = try await fleet.js.keyValue(KeyValueConfig(bucket: Fleet.stateBucket, history: 1))
        _ = try await stateKV.put(StateStore.positionKey, Array("\(first)".utf8))
        let (stored, _) = try await StateStore.read(fleet.js, policy: core.policy, at: now + 2000)
        #expect(stored.node("node-0")?.status.agentVersion == "3")
        #expect(stored.state == core.state)
    }
}
