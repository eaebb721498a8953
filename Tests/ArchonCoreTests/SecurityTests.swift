import ArchonModel
import Testing

@testable import ArchonCore

@Suite struct SecurityTests {
    @Test func anEventWhoseNodeDoesNotMatchItsSubjectIsRejectedAsASecurityConcern() {
        var fleet = Fleet()
        _ = fleet.submit(spec("job-1"))
        _ = fleet.start("job-1")
        let spoof = TrainingEvent(jobID: "job-1", nodeID: "n1", attempt: 1, sequence: 99, timeMs: fleet.now, body: .exited(JobExited(exitCode: 1)))
        let actions = fleet.controller.eventReceived(spoof, subjectNode: "n2", at: fleet.now)
        #expect(decisions(actions) == ["opened INC-1 L2 Training Failure Escalation - security: node n2"])
        #expect(fleet.incident("INC-1").severity == .critical && fleet.incident("INC-1").cause == .security)
        #expect(firstReason(actions)?.evidence == "events published on node n2's subject claim to come from node 'n1'; rejected")
        #expect(fleet.job("job-1").status == .running)  // not applied
        // More of the same: one incident, no new page, no update.
        var again = spoof
        again.sequence = 100
        #expect(fleet.controller.eventReceived(again, subjectNode: "n2", at: fleet.now).isEmpty)
    }

    @Test func aNodeReportingAnotherNodesJobIsRejected() {
        var fleet = Fleet()
        _ = fleet.submit(spec("job-1"))
        _ = fleet.start("job-1")
        let actions = fleet.send("job-1", .exited(JobExited(exitCode: 1)), node: "n3")
        #expect(decisions(actions) == ["opened INC-1 L2 Training Failure Escalation - security: node n3"])
        #expect(fleet.job("job-1").status == .running)
    }

    @Test func permissionDeniedAcrossJobsIsOneSecurityIncident() {
        var fleet = Fleet()
        _ = fleet.submit(spec("job-1", dataset: "ds-1"))
        _ = fleet.submit(spec("job-2", dataset: "ds-2"))
        _ = fleet.start("job-1")
        _ = fleet.start("job-2")
        #expect(decisions(fleet.exit("job-1", failure: .permissionDenied)) == ["opened INC-1 L2 Training Failure Escalation - job-1", "stop job-1#1 on n1"])
        let actions = fleet.exit("job-2", failure: .permissionDenied)
        #expect(decisions(actions) == [
            "opened INC-2 L2 Training Failure Escalation - security: permission denied across jobs",
            "updated INC-1 L2 Training Failure Escalation - job-1",
            "stop job-2#1 on n2",
        ])
        #expect(fleet.incident("INC-2").jobs == ["job-1", "job-2"])
        #expect(fleet.controller.incidents.count == 3)
        #expect(fleet.incident("INC-3").parentID == "INC-2")  // job-2's own incident, opened inhibited
    }
}
