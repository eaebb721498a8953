import ArchonModel
import Foundation
import Testing

@testable import ArchonCore

/// What a store keeps: the entities the core named as changed, with their values at that moment.
private struct EntityStore {
    var entities: [EntityKey: StoredEntity] = [:]
    var written: [Set<EntityKey>] = []

    /// Takes the core's changes, as the shell does after each batch.
    mutating func commit(_ core: inout FleetController) {
        let keys = core.takeChanges()
        written.append(keys)
        for key in keys { entities[key] = core.stored(key) }
    }

    /// Each entity through JSON, as it travels to storage and back.
    func reloaded(policy: Policy, at now: Int64) throws -> FleetController {
        let encoder = JSONEncoder()
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        let values = try entities.values.map { try decoder.decode(StoredEntity.self, from: encoder.encode($0)) }
        return FleetController(policy: policy, entities: values, at: now)
    }
}

@Suite("The state is stored per entity, a batch writes what it changed")
struct StoredStateTests {
    @Test func rebuildingFromTheChangedEntitiesGivesTheSameStateAfterEveryInput() throws {
        var fleet = Fleet(policy: .noBackoff)
        var store = EntityStore()
        store.commit(&fleet.controller)
        var steps: [(inout Fleet) -> Void] = []
        steps.append { _ = $0.submit(spec("job-1")) }
        steps.append { _ = $0.submit(spec("job-2", dataset: "ds-2")) }
        steps.append { _ = $0.start("job-1") }
        steps.append { _ = $0.start("job-2") }
        steps.append { _ = $0.epoch("job-1", 1, loss: 1.0) }
        steps.append { _ = $0.exit("job-2", oom: true) }
        steps.append { _ = $0.start("job-2") }
        steps.append { _ = $0.epoch("job-1", 2, loss: .infinity) }  // not NaN: NaN is never == itself
        steps.append { $0.advance(20 * minute) }
        steps.append { _ = $0.tick() }
        steps.append { _ = $0.exit("job-2", failure: .permissionDenied) }
        steps.append { _ = try? $0.controller.incidentAcknowledged("INC-1", by: "kim", at: $0.now) }
        steps.append { _ = $0.complete("job-1") }
        for (i, step) in steps.enumerated() {
            step(&fleet)
            store.commit(&fleet.controller)
            let rebuilt = try store.reloaded(policy: fleet.controller.policy, at: fleet.now)
            #expect(rebuilt.state == fleet.controller.state, "after step \(i + 1): \(Self.difference(rebuilt.state, fleet.controller.state))")
            #expect(rebuilt.scheduledTimers.map(\.id) == fleet.controller.scheduledTimers.map(\.id), "timers after step \(i + 1)")
        }
    }

    @Test func aBatchWritesTheEntitiesItChangedAndNothingElse() {
        var fleet = Fleet(policy: .noBackoff)
        for i in 1...50 { _ = fleet.submit(spec("job-\(i)", memory: 1 * gib)) }
        for i in 1...50 { _ = fleet.start("job-\(i)") }
        _ = fleet.controller.takeChanges()
        _ = fleet.epoch("job-7", 1, loss: 1.0)
        let keys = fleet.controller.takeChanges()
        #expect(keys.contains(.job("job-7")))
        #expect(keys.filter { if case .job = $0 { true } else { false } } == [.job("job-7")])
        #expect(keys.count <= 3, "\(keys)")  // the job, its node's silence window at most, the fleet record
    }

    @Test func keysEscapeAnyIdIntoAValidKVKey() {
        for id in ["job-1", "a.b", "with space", "ünï", "=3D", "x/y", ""] {
            let key = EntityKey.job(id).description
            #expect(key.utf8.allSatisfy { b in
                (0x30...0x39).contains(b) || (0x41...0x5A).contains(b) || (0x61...0x7A).contains(b) || b == 0x2D || b == 0x5F || b == 0x3D || b == 0x2E
            }, "\(key)")
            if !id.isEmpty { #expect(EntityKey(key) == .job(id)) }
        }
        #expect(EntityKey("fleet.record") == .fleet)
        #expect(EntityKey("outbox.x") == nil)
    }

    @Test func finishedJobsAndResolvedIncidentsMoveToTheArchiveAfterTheRetention() throws {
        var fleet = Fleet(policy: .noBackoff)
        _ = fleet.submit(spec("job-1"))
        _ = fleet.start("job-1")
        _ = fleet.exit("job-1", failure: .datasetNotFound)
        #expect(fleet.job("job-1").status == .failed)
        _ = try fleet.controller.incidentResolved("INC-1", by: "kim", rootCause: "moved", at: fleet.now)
        fleet.advance(7 * 24 * hour - minute)
        #expect(fleet.tick().filter { if case .archive = $0 { true } else { false } }.isEmpty)
        fleet.advance(2 * minute)
        let archived = lines(fleet.tick()).filter { $0.hasPrefix("archive") }
        #expect(archived == ["archive incident INC-1", "archive job job-1"])
        #expect(fleet.controller.job("job-1") == nil && fleet.controller.incident("INC-1") == nil)
        let keys = fleet.controller.takeChanges()
        #expect(keys.contains(.job("job-1")) && keys.contains(.incident("INC-1")))
        #expect(fleet.controller.stored(.job("job-1")) == nil)
    }
}

@Suite("Level-triggered repair of archon_desired")
struct ReconcileTests {
    @Test func missingStaleOrphanAndUnreadableKeysAreRepaired() {
        var fleet = Fleet(policy: .noBackoff)
        _ = fleet.submit(spec("run", memory: 1 * gib))
        _ = fleet.start("run")
        _ = fleet.submit(spec("moved", memory: 1 * gib))
        _ = fleet.start("moved")
        _ = fleet.exit("moved", oom: true)  // attempt 2 assigned
        _ = fleet.submit(spec("done", memory: 1 * gib))
        _ = fleet.start("done")
        _ = fleet.complete("done")
        let moved = fleet.job("moved")
        let present = [
            DesiredEntry(nodeID: moved.history[0].nodeID, jobID: "moved", attempt: 1),  // the stop of attempt 1 was lost…
            DesiredEntry(nodeID: fleet.job("done").history[0].nodeID, jobID: "done", attempt: 1),  // finished
            DesiredEntry(nodeID: "n9", jobID: "ghost", attempt: 3),  // unknown job
            DesiredEntry(nodeID: "n2", jobID: "junk", attempt: nil),  // unreadable
        ]
        // …and "run" is missing; "moved" attempt 2 is missing where it now runs (or stale where it ran).
        let repairs = lines(fleet.controller.reconcileDesired(present))
        let runNode = fleet.job("run").nodeID
        var expected = [
            "stop done#1 on \(fleet.job("done").history[0].nodeID)",
            "stop junk#0 on n2",
            "stop ghost#3 on n9",
            "assign run#1 → \(runNode)",
        ]
        if moved.history[1].nodeID == moved.history[0].nodeID {
            expected.insert("assign moved#2 → \(moved.history[1].nodeID)", at: 1)
        } else {
            expected.insert("stop moved#1 on \(moved.history[0].nodeID)", at: 1)
            expected.append("assign moved#2 → \(moved.history[1].nodeID)")
        }
        #expect(repairs.sorted() == expected.sorted())
        // Once repaired, nothing more to do.
        let repaired = [
            DesiredEntry(nodeID: runNode, jobID: "run", attempt: 1),
            DesiredEntry(nodeID: moved.history[1].nodeID, jobID: "moved", attempt: 2),
        ]
        #expect(fleet.controller.reconcileDesired(repaired).isEmpty)
    }

    @Test func completedAndFailedJobsLeaveTheDesiredState() {
        var fleet = Fleet(policy: .noBackoff)
        _ = fleet.submit(spec("ok"))
        _ = fleet.start("ok")
        #expect(decisions(fleet.complete("ok")) == ["stop ok#1 on n1"])
        #expect(fleet.controller.desiredAssignment("ok") == nil)
        _ = fleet.submit(spec("bad"))
        _ = fleet.start("bad")
        #expect(decisions(fleet.exit("bad", failure: .datasetNotFound)).contains("stop bad#1 on \(fleet.job("bad").history[0].nodeID)"))
        #expect(fleet.controller.desiredAssignment("bad") == nil)
    }
}

@Suite("An outage of the controller is not a failure of the fleet")
struct OutageTests {
    /// Three nodes, a job on each, then the controller hears nothing for `gap`.
    private func fleetAfterOutage(_ gap: Int64) -> Fleet {
        var policy = Policy.noBackoff
        policy.detection.epochTimeout = .hours(1)  // the outage is longer than the hang window, not than an epoch
        var fleet = Fleet(policy: policy)
        for i in 1...3 {
            _ = fleet.submit(spec("job-\(i)"))
            _ = fleet.start("job-\(i)")
            _ = fleet.epoch("job-\(i)", 1, loss: 1.0)
        }
        fleet.now += gap  // no heartbeat reaches the controller meanwhile
        return fleet
    }

    @Test func deadlinesWaitForTheBacklogAndNoNodeOrJobIsBlamed() {
        var fleet = fleetAfterOutage(12 * minute)  // longer than nodeSilence (2 m) and the hang window (10 m)
        var actions = fleet.controller.leadershipAcquired(fencingEpoch: 9, at: fleet.now)
        #expect(decisions(actions).isEmpty)
        actions = fleet.controller.fleetHeardAgain(at: fleet.now)
        #expect(decisions(actions).isEmpty, "\(decisions(actions))")
        for i in 1...3 { #expect(fleet.job("job-\(i)").status == .running) }
        #expect(fleet.controller.nodes.allSatisfy { $0.health == .online && !$0.cordoned })
        #expect(fleet.controller.incidents.isEmpty)
        // A node that stays silent after the outage is judged on its own silence.
        fleet.silence("n3")
        fleet.advance(3 * minute)
        let later = decisions(fleet.tick())
        #expect(later.contains { $0.hasPrefix("stop job-3#1 on n3") })
        #expect(fleet.controller.node("n3")?.health == .offline)
    }

    @Test func withoutTheBacklogEveryNodeWouldLookSilent() {
        // The defect this guards against: judging deadlines at takeover, before the backlog is read.
        var fleet = fleetAfterOutage(12 * minute)
        let blamed = decisions(fleet.tick())
        for i in 1...3 { #expect(blamed.contains("stop job-\(i)#1 on n\(i)")) }
        #expect(fleet.controller.nodes.allSatisfy { $0.health == .offline })
    }

    @Test func avoidedNodesAreCandidatesAgainAfterAvoidNodesFor() {
        var policy = Policy.noBackoff
        policy.remediation.avoidNodesFor = .minutes(30)
        var fleet = Fleet(policy: policy, nodes: ["n1"])
        #expect(decisions(fleet.submit(spec("job-1"))) == ["assign job-1#1 → n1"])
        // Never started on n1: stuck, re-placed avoiding n1 — and n1 is the only node.
        fleet.advance(10 * minute)
        #expect(decisions(fleet.tick()) == ["stop job-1#1 on n1"])
        let pending = try! #require(fleet.job("job-1").pending)
        #expect(pending.excludeNodes == ["n1"] && pending.excludeUntilMs == fleet.now + 30 * minute)
        #expect(fleet.job("job-1").statusDetail.contains("avoiding n1"))
        // The avoid list expires: the job is placed on n1 again instead of waiting forever.
        fleet.advance(30 * minute)
        #expect(decisions(fleet.tick()).contains("assign job-1#2 → n1"))
    }
}

extension StoredStateTests {
    /// Which part of the state differs, for a readable failure.
    static func difference(_ a: FleetState, _ b: FleetState) -> [String] {
        var out: [String] = []
        for id in Set(a.jobs.keys).union(b.jobs.keys) where a.jobs[id] != b.jobs[id] {
            out.append("job \(id): \(String(describing: a.jobs[id]).prefix(0))")
            if let x = a.jobs[id], let y = b.jobs[id] {
                for (label, value) in Mirror(reflecting: x).children {
                    let other = Mirror(reflecting: y).children.first { $0.label == label }?.value
                    if "\(value)" != "\(other.map { "\($0)" } ?? "")" { out.append("  \(label ?? "?") differs") }
                }
            }
        }
        if a.nodes != b.nodes { out.append("nodes") }
        if a.datasets != b.datasets { out.append("datasets") }
        if a.incidents != b.incidents { out.append("incidents") }
        if a.correlation != b.correlation { out.append("correlation") }
        if a.deadlines != b.deadlines { out.append("deadlines") }
        if a.freezes != b.freezes { out.append("freezes") }
        if a.fencingEpoch != b.fencingEpoch { out.append("fencingEpoch") }
        return out
    }
}

@Suite("Live parts written without Foundation's encoder")
struct LivePartJSONTests {
    /// Whatever a window holds (empty, gap-free, with sequences beyond a gap, extreme values), the bytes written
    /// decode, with the decoder that reads every stored value, to the same part.
    @Test func jobAndNodeLivePartsRoundTripThroughTheDecoder() throws {
        var windows = [SequenceWindow()]
        var window = SequenceWindow()
        for sequence: UInt64 in [1, 2, 3] { _ = window.insert(sequence) }
        windows.append(window)
        for sequence: UInt64 in [7, 9, 1_000_000, .max] { _ = window.insert(sequence) }
        windows.append(window)
        for (index, sequences) in windows.enumerated() {
            let live = JobLive(attempt: index + 1, sequences: sequences, lastProgressMs: .max, epochStartMs: .min,
                               lastHeartbeatMs: -Int64(index))
            #expect(try JSONDecoder().decode(JobLive.self, from: Data(live.json)) == live)
        }
        for lastSeenMs: Int64 in [0, 1_764_000_000_000, .min, .max] {
            let live = NodeLive(lastSeenMs: lastSeenMs)
            #expect(try JSONDecoder().decode(NodeLive.self, from: Data(live.json)) == live)
        }
    }
}
