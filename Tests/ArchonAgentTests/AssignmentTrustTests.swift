import ArchonAgent
import ArchonModel
import ArchonNATS
import ArchonWire
import Foundation
import Testing

/// An agent runs only what the controller signed, under a fencing epoch the leadership lease allows; anything
/// else is refused, reported to the controller as a security alert, and changes nothing for real assignments.
@Suite("Agent runs only signed assignments", .serialized)
struct AssignmentTrustTests {
    func alerts(_ h: AgentHarness, count: Int) async throws -> [SecurityAlert] {
        try await h.events("_node", timeout: .seconds(15)) { $0.alerts.count >= count }.alerts
    }

    @Test func anAssignmentSignedWithAnotherKeyOrUnsignedNeverRuns() async throws {
        let h = try await AgentHarness()
        try await h.startAgent()
        let forger = FileManager.default.temporaryDirectory.appendingPathComponent("forger-\(UUID().uuidString)").path
        try AssignmentSigner.generate(keyFile: forger + ".key", publicKeyFile: forger + ".pub")
        let evil = JobAssignment(spec: faultJob("evil", fault: "none", epochs: 1), attempt: 1, fencingEpoch: 1,
                                 desiredState: .running, nodeID: h.nodeID)
        try await h.desired.put("\(h.nodeID).evil", try AssignmentSigner(keyFile: forger + ".key").sign(evil).encoded())
        var unsigned = evil
        unsigned.spec.id = "unsigned"
        try await h.desired.put("\(h.nodeID).unsigned", SignedAssignment(unsigned: unsigned).encoded())
        // A bare JobAssignment, as written before assignments were signed.
        var bare = evil
        bare.spec.id = "bare"
        try await h.desired.put("\(h.nodeID).bare", bare.encoded())

        let reported = try await alerts(h, count: 3)
        #expect(reported.allSatisfy { $0.kind == .assignmentRejected })
        #expect(Set(reported.map(\.subject)) == ["n1.evil", "n1.unsigned", "n1.bare"])
        #expect(reported.contains { $0.detail.contains("signature does not verify") })
        #expect(reported.contains { $0.detail.contains("unsigned") })
        #expect(await h.agent!.rejectedAssignments == 3)

        // The real controller's assignments still run.
        try await h.assign(faultJob("real", fault: "none", epochs: 1))
        let real = try await h.events("real") { $0.exit != nil }
        #expect(real.exit?.completed == true)
        for job in ["evil", "unsigned", "bare"] {
            #expect(try await h.events(job, timeout: .milliseconds(300)) { !$0.isEmpty }.isEmpty, "\(job) never started")
        }
        #expect(await h.agent!.runningJobs.isEmpty)
    }

    @Test func aFencingEpochBeyondTheLeaseIsRefusedAndNotRemembered() async throws {
        let h = try await AgentHarness()
        try await h.startAgent(unconfirmedEpochGrace: .seconds(1))
        // Signed with the real key (a controller bug, or a stolen key), but the lease was never at this revision.
        try await h.assign(faultJob("future", fault: "none", epochs: 1), epoch: .max)
        let reported = try await alerts(h, count: 1)
        #expect(reported.first?.detail.contains("beyond the leadership lease") == true)
        #expect(try await h.events("future", timeout: .milliseconds(300)) { !$0.isEmpty }.isEmpty)

        // Had the agent taken that epoch, it would ignore every real assignment from now on.
        try await h.assign(faultJob("after", fault: "none", epochs: 1), epoch: 2)
        #expect(try await h.events("after") { $0.exit != nil }.exit?.completed == true)
        let remembered = try String(contentsOfFile: "\(h.workDirectory)/fencing-epoch", encoding: .utf8)
        #expect(remembered.trimmingCharacters(in: .whitespacesAndNewlines) == "2")
    }

    /// Chaos seed 18: a lease read from a lagging replica (its server cut from its peers) was one revision behind the
    /// new leader's epoch; the agent refused the assignments for good and the jobs never started.
    @Test func anEpochAheadOfTheLeaseReadRunsOnceTheLeaseReachesIt() async throws {
        let h = try await AgentHarness()
        try await h.startAgent()
        let leader = try await h.js.existingKeyValue(bucket: Fleet.leaderBucket)
        let revision = try await h.js.streamBounds("KV_\(Fleet.leaderBucket)").last
        try await h.assign(faultJob("ahead", fault: "none", epochs: 1), epoch: revision + 2)
        #expect(try await h.events("ahead", timeout: .seconds(2)) { !$0.isEmpty }.isEmpty, "not run while the lease is behind it")

        try await leader.put("lease", Array("test-controller".utf8))
        try await leader.put("lease", Array("test-controller".utf8))
        #expect(try await h.events("ahead") { $0.exit != nil }.exit?.completed == true)
        #expect(await h.agent!.rejectedAssignments == 0, "a lagging read is no security concern")
        let remembered = try String(contentsOfFile: "\(h.workDirectory)/fencing-epoch", encoding: .utf8)
        #expect(remembered.trimmingCharacters(in: .whitespacesAndNewlines) == "\(revision + 2)")
    }

    @Test func aSubscriptionNATSRefusesIsReportedToTheController() async throws {
        let h = try await AgentHarness()
        // The servers' permissions for n1 lack its log subject (a tightened or stale nats-auth.conf).
        let file = h.credentials.authorizationFile
        let granted = try String(contentsOfFile: file, encoding: .utf8)
        let narrowed = granted.replacingOccurrences(of: #""archon.v1.logs.n1""#, with: #""archon.v1.logs.elsewhere""#)
        #expect(narrowed != granted)
        try narrowed.write(toFile: file, atomically: true, encoding: .utf8)
        try h.server.reload()
        try await h.startAgent()

        let reported = try await alerts(h, count: 1)
        #expect(reported.first?.kind == .permissionViolation)
        #expect(reported.first?.detail.contains("archon.v1.logs.n1") == true, "\(reported)")
    }

    @Test func nodeStatusSaysWhetherSignaturesAreChecked() async throws {
        let h = try await AgentHarness()
        try await h.startAgent()
        let status = try await h.events("_node") { $0.statuses.count >= 1 }.statuses.first
        #expect(status?.unsignedAssignmentsAccepted == false)
    }
}

extension [TrainingEvent] {
    var alerts: [SecurityAlert] {
        compactMap { if case .securityAlert(let alert) = $0.body { alert } else { nil } }
    }

    var statuses: [NodeStatus] {
        compactMap { if case .nodeStatus(let status) = $0.body { status } else { nil } }
    }
}
