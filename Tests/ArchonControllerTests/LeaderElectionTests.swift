import ArchonController
import ArchonModel
import ArchonNATS
import ArchonTestSupport
import ArchonWire
import Foundation
import Logging
import Testing

@Suite("Leader election and failover against real NATS", .serialized)
struct LeaderElectionTests {
    // MARK: Two real controllers

    @Test func theStandbyTakesOverWithinTheLeaseAndFencesWithANewerEpoch() async throws {
        let fleet = try await FleetHarness()
        let agent = SyntheticAgent(nodeID: "n1", js: fleet.js)
        try await agent.publishStatus()
        let c1 = try ControllerProcess(try fleet.childConfig(id: "c1", lease: 2))
        let c2 = try ControllerProcess(try fleet.childConfig(id: "c2", lease: 2))
        defer {
            c1.kill()
            c2.kill()
        }
        try c1.start()
        try c2.start()

        // Exactly one leads, the other stands by.
        let roles = try await waitFor("one leader and one standby") { () -> [String]? in
            let roles = [await c1.role(), await c2.role()]
            return roles.compactMap { $0 }.sorted() == ["leader", "standby"] ? roles.map { $0 ?? "" } : nil
        }
        let (leader, standby) = roles[0] == "leader" ? (c1, c2) : (c2, c1)
        let leaderAPI = HTTP(base: leader.api, token: adminToken.token)
        let standbyAPI = HTTP(base: standby.api, token: adminToken.token)
        _ = try await waitFor("node n1 on the leader") { try await leaderAPI.call("GET", "/v1/nodes").json([NodeView].self).first { $0.id == "n1" } }

        // The standby refuses writes, saying where to send them; it still serves reads.
        let refused = try await standbyAPI.call("POST", "/v1/training/jobs", body: faultSpec("refused", fault: "none"))
        #expect(refused.status == 503, "\(refused.text)")
        #expect(try refused.json(APIErrorBody.self).error.contains("standby"))
        #expect(try await standbyAPI.call("GET", "/v1/training/jobs").status == 200)
        for route in APIServer.routes where route.method == "POST" && !route.path.hasSuffix("/validate") && route.path != "/v1/training/jobs" {
            let path = route.path.replacingOccurrences(of: "{id}", with: "n1")
            let body = switch route.path {
            case "/v1/datasets": #"{"id": "d2", "location": "/d2"}"#
            case "/v1/silences": #"{"node": "n1", "durationSeconds": 3600, "reason": "maintenance"}"#
            default: "{}"
            }
            let answer = try await standbyAPI.call("POST", path, body: body)
            #expect(answer.status == 503, "POST \(path) on the standby: \(answer.status) \(answer.text)")
        }

        #expect(try await leaderAPI.call("POST", "/v1/training/jobs", body: faultSpec("ha-1", fault: "none")).status == 201)
        let first = try #require(try await fleet.assignment(node: "n1", job: "ha-1"))
        #expect(first.fencingEpoch > 0)

        // The leader dies without resigning: the standby must wait out the lease, and no longer. Measured by the
        // standby's own clock (readyz says since when it leads), not by how soon this busy test process notices.
        let killedAtMs = Int64(Date().timeIntervalSince1970 * 1000)
        await leader.crash()
        try await standby.waitForRole("leader", timeout: .seconds(15))
        let since = try #require(await standby.readiness()).roleSince
        #expect(since >= killedAtMs, "the standby led before the leader died")
        #expect(since - killedAtMs <= 4000, "took over \(since - killedAtMs) ms after the kill, lease 2 s")

        // The new leader resumes from the persisted state and fences its assignments with a newer epoch.
        #expect(try await standbyAPI.call("GET", "/v1/training/jobs/ha-1").json(JobView.self).attempt == 1)
        let submitted = try await standbyAPI.call("POST", "/v1/training/jobs", body: faultSpec("ha-2", fault: "none"))
        #expect(submitted.status == 201, "\(submitted.text)")
        let second = try #require(try await fleet.assignment(node: "n1", job: "ha-2"))
        #expect(second.fencingEpoch > first.fencingEpoch, "E2 \(second.fencingEpoch) must exceed E1 \(first.fencingEpoch)")
    }

    // MARK: LeaderElection against a real KV

    struct Campaign {
        let fleet: FleetHarness
        let kv: KeyValue
        let leaseTime: Duration

        init(leaseTime: Duration) async throws {
            fleet = try await FleetHarness()
            kv = try await fleet.js.keyValue(KeyValueConfig(bucket: Fleet.leaderBucket))
            self.leaseTime = leaseTime
        }

        /// A candidate with its own NATS connection, as a separate controller has.
        func candidate(_ id: String) async throws -> LeaderElection {
            var logger = Logger(label: "test.election.\(id)")
            logger.logLevel = .critical
            let connection = try await connectTestClient(try fleet.clientOptions(name: id), to: fleet.server, logger: logger)
            let kv = try await connection.jetStream().keyValue(KeyValueConfig(bucket: Fleet.leaderBucket))
            return LeaderElection(kv: kv, id: id, leaseTime: leaseTime, logger: logger)
        }

        func holder() async throws -> (id: String, revision: UInt64)? {
            try await kv.get(LeaderElection.key).map { (String(decoding: $0.value, as: UTF8.self), $0.revision) }
        }
    }

    static func leaders(_ candidates: [LeaderElection]) async -> [(id: String, epoch: UInt64)] {
        var out: [(String, UInt64)] = []
        for c in candidates {
            if case .leader(let epoch) = await c.role { out.append((await c.id, epoch)) }
        }
        return out
    }

    @Test func twoCandidatesElectExactlyOneLeaderWhoseEpochIsTheLeaseRevision() async throws {
        let campaign = try await Campaign(leaseTime: .seconds(5))
        let a = try await campaign.candidate("a")
        let b = try await campaign.candidate("b")
        // Both campaign at once for an absent key: create is a compare-and-set, so one of them loses.
        async let stepA: Void = a.step()
        async let stepB: Void = b.step()
        _ = await (stepA, stepB)
        await a.step()
        await b.step()

        let leaders = await Self.leaders([a, b])
        #expect(leaders.count == 1)
        let leader = try #require(leaders.first)
        let holder = try #require(try await campaign.holder())
        #expect(holder.id == leader.id)
        #expect(leader.epoch > 0)
        let loser = leader.id == "a" ? b : a
        #expect(await loser.role == .standby(leader: leader.id))
    }

    @Test func standbysRacingForAnExpiredLeaseLeaveOneLeaderTheOtherLosesTheCompareAndSet() async throws {
        let campaign = try await Campaign(leaseTime: .milliseconds(600))
        let old = try await campaign.candidate("old")
        await old.step()
        guard case .leader(let oldEpoch) = await old.role else { Issue.record("old did not lead"); return }
        let a = try await campaign.candidate("a")
        let b = try await campaign.candidate("b")
        await a.step()
        await b.step()
        #expect(await a.role == .standby(leader: "old"))

        // "old" stops renewing. a and b step concurrently, round after round: whenever both see the lease
        // expired, both compare-and-set against the same revision and only one write can win.
        var rounds = 0
        let winner = try await waitFor("a takeover", timeout: .seconds(5)) { () -> (id: String, epoch: UInt64)? in
            rounds += 1
            async let stepA: Void = a.step()
            async let stepB: Void = b.step()
            _ = await (stepA, stepB)
            let leaders = await Self.leaders([a, b])
            #expect(leaders.count <= 1, "two leaders after round \(rounds): \(leaders)")
            return leaders.first
        }
        #expect(winner.epoch > oldEpoch)
        let holder = try #require(try await campaign.holder())
        #expect(holder.id == winner.id)
        #expect(holder.revision == winner.epoch)
        let loser = winner.id == "a" ? b : a
        await loser.step()
        #expect(await loser.role == .standby(leader: winner.id))
        // The old leader, back from its pause, finds the lease taken and stands by.
        await old.step()
        #expect(await old.role == .standby(leader: winner.id))
    }

    @Test func aLeaderThatStopsRenewingLosesTheLeaseAfterTheLeaseTimeAndNotBefore() async throws {
        let lease = Duration.milliseconds(800)
        let campaign = try await Campaign(leaseTime: lease)
        let a = try await campaign.candidate("a")
        let b = try await campaign.candidate("b")
        await a.step()
        guard case .leader(let epochA) = await a.role else { Issue.record("a did not lead"); return }

        // While a renews, b never takes over, however long it waits.
        await b.step()
        let renewing = ContinuousClock.now
        while ContinuousClock.now - renewing < lease * 2 {
            await a.step()
            await b.step()
            #expect(await b.role == .standby(leader: "a"))
            try await Task.sleep(for: lease / 4)
        }
        guard case .leader = await a.role else { Issue.record("a lost the lease while renewing"); return }

        // a renews one last time and stops: b takes over once a whole lease passes without a new revision.
        await a.step()
        let lastSeen = ContinuousClock.now  // b sees that last revision no earlier than this
        await b.step()
        // (No tight upper bound here: in this process every test's KV calls share a few Dispatch threads, so a
        // loaded run stretches the steps; the failover test bounds the takeover of real controllers.)
        let epochB = try await waitFor("b to take over", timeout: .seconds(10)) { () -> UInt64? in
            await b.step()
            if case .leader(let epoch) = await b.role { return epoch }
            return nil
        }
        let waited = ContinuousClock.now - lastSeen
        #expect(waited >= lease, "took over after \(waited), before the lease of \(lease) ran out")
        #expect(epochB > epochA)
        await a.step()
        #expect(await a.role == .standby(leader: "b"))
    }
}
