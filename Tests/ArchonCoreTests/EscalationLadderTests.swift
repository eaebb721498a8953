import ArchonModel
import Testing

@testable import ArchonCore

@Suite struct EscalationLadderTests {
    /// A job whose data is corrupt: escalated at L2 at once, at t0 + 1 min.
    func fleetWithAnL2Incident() -> Fleet {
        var fleet = Fleet()
        _ = fleet.submit(spec("job-1"))
        _ = fleet.start("job-1")
        fleet.advance(minute)
        _ = fleet.exit("job-1", failure: .dataCorruption)
        return fleet
    }

    @Test func anUnacknowledgedL2IncidentReachesL3AfterOneHourAndL4AfterTwoMore() {
        var fleet = fleetWithAnL2Incident()
        #expect(fleet.incident("INC-1").level == .l2)
        #expect(fleet.controller.scheduledTimers.map(\.id).contains(.responseDue(incidentID: "INC-1", level: .l2)))

        fleet.at(minute + hour - 1)
        #expect(decisions(fleet.tick()).isEmpty)
        fleet.at(minute + hour)
        #expect(lines(fleet.fire(.responseDue(incidentID: "INC-1", level: .l2))) == [
            "timer response-due/INC-1/L3 @3h1m",
            "escalated INC-1 L3 Training Failure Escalation - job-1",
        ])
        fleet.at(minute + 3 * hour)
        let actions = fleet.fire(.responseDue(incidentID: "INC-1", level: .l3))
        #expect(lines(actions) == ["escalated INC-1 L4 Training Failure Escalation - job-1"])
        #expect(firstReason(actions)?.evidence == "INC-1 was not acknowledged by L3 (Platform Engineering) within 2h")
        // L4 is the top: nothing further, however long it waits.
        fleet.at(100 * hour)
        #expect(decisions(fleet.tick()).isEmpty)
        #expect(fleet.incident("INC-1").level == .l4)
    }

    @Test func acknowledgingStopsTheClimb() throws {
        var fleet = fleetWithAnL2Incident()
        fleet.at(minute + hour)
        _ = fleet.fire(.responseDue(incidentID: "INC-1", level: .l2))
        fleet.at(2 * hour)
        let acked = try fleet.controller.incidentAcknowledged("INC-1", by: "maria", at: fleet.now)
        #expect(lines(acked) == ["cancel response-due/INC-1/L3", "timer ack-expires/INC-1 @2h30m", "acknowledged INC-1 L3 Training Failure Escalation - job-1"])
        // A stale timer firing changes nothing.
        fleet.at(5 * hour)
        #expect(fleet.fire(.responseDue(incidentID: "INC-1", level: .l3)).isEmpty)
        #expect(fleet.incident("INC-1").level == .l3 && fleet.incident("INC-1").status == .acknowledged)
        // Acknowledging again is a no-op.
        #expect(try fleet.controller.incidentAcknowledged("INC-1", by: "maria", at: fleet.now).isEmpty)
    }

    @Test func resolvingClosesTheIncidentAndFreesItsKey() throws {
        var fleet = fleetWithAnL2Incident()
        let resolved = try fleet.controller.incidentResolved("INC-1", by: "maria", rootCause: "shard 17 truncated by a failed upload", at: fleet.now + minute)
        #expect(lines(resolved) == ["cancel response-due/INC-1/L2", "resolved INC-1 L2 Training Failure Escalation - job-1", "timer archive-incident/INC-1 @7d2m"])
        #expect(throws: OperatorError.self) { try fleet.controller.incidentAcknowledged("INC-1", by: "x", at: fleet.now) }
        #expect(throws: OperatorError.self) { try fleet.controller.incidentAcknowledged("INC-9", by: "x", at: fleet.now) }
        #expect(fleet.controller.state.incidents.open(forKey: "job:job-1") == nil)
    }

    @Test func oneIncidentPerCauseUpdatedNotRepaged() {
        var policy = Policy.noBackoff
        policy.remediation.ladders.divergingLoss.steps = [.dataQualityCheck(escalateTo: .l2), .restart]
        var fleet = Fleet(policy: policy)
        _ = fleet.submit(spec("job-1"))
        var all: [ControllerAction] = []
        for _ in 1...3 {
            all += fleet.start("job-1")
            all += fleet.epoch("job-1", 1, loss: .nan)
        }
        #expect(escalations(all).map { "\($0.kind) \($0.incident.id): \($0.incident.currentStatus)" } == [
            "opened INC-1: restarting as attempt 2 with a data-quality check; data quality suspected",
            "updated INC-1: attempt 2 running on n1",
            "updated INC-1: attempt 2 failed (diverging loss); attempt 3: restart from the latest checkpoint with the same config",
            "updated INC-1: attempt 3 running on n1",
            "updated INC-1: failed: diverging loss ladder exhausted after 2 steps; no automatic retries left",
        ])
        #expect(fleet.controller.incidents.count == 1)
    }
}
