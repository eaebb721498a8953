import ArchonModel
import Foundation
import Testing

@testable import ArchonCore

@Suite struct OperatorInputTests {
    @Test func stoppingAJobStopsItForGood() throws {
        var fleet = Fleet()
        _ = fleet.submit(spec("job-1"))
        _ = fleet.start("job-1")
        let actions = try fleet.controller.jobStopRequested("job-1", by: "kim", at: fleet.now)
        // The running attempt gets its stop grace to save a checkpoint (DrainTests); its key goes once it has exited.
        #expect(lines(actions) == ["cancel attempt-deadline/job-1/1", "stop job-1#1 on n1 grace 120s", "timer drain-deadline/job-1/1 @2m15s",
                                   "timer archive-job/job-1 @7d"])
        #expect(firstReason(actions.filter { if case .stopGracefully = $0 { true } else { false } })?.evidence == "kim stopped job job-1")
        #expect(fleet.job("job-1").status == .stopped)
        // The agent reports the kill: nothing restarts it.
        #expect(lines(fleet.exit("job-1", code: -1, signal: 15)) == ["cancel drain-deadline/job-1/1", "stop job-1#1 on n1"])
        #expect(try fleet.controller.jobStopRequested("job-1", by: "kim", at: fleet.now).isEmpty)
        #expect(throws: OperatorError.self) { try fleet.controller.jobStopRequested("nope", by: "kim", at: fleet.now) }
    }

    @Test func cordoningKeepsRunningJobsAndUncordoningPlacesWaitingOnes() throws {
        var fleet = Fleet(nodes: ["n1"])
        _ = fleet.submit(spec("job-1"))
        _ = fleet.start("job-1")
        #expect(lines(try fleet.controller.nodeCordoned("n1", by: "sam", reason: "kernel upgrade", at: fleet.now)) == ["cordon n1"])
        #expect(fleet.job("job-1").status == .running)
        #expect(decisions(fleet.submit(spec("job-2"))) == [])
        #expect(decisions(try fleet.controller.nodeUncordoned("n1", by: "sam", at: fleet.now)) == ["uncordon n1", "assign job-2#1 → n1"])
        #expect(throws: OperatorError.self) { try fleet.controller.nodeUncordoned("n9", by: "sam", at: fleet.now) }
        #expect(throws: OperatorError.self) { try fleet.controller.datasetResumed("ds-9", by: "sam", at: fleet.now) }
    }

    @Test func aRejectedPublishIsASecurityIncident() {
        var fleet = Fleet()
        let actions = fleet.controller.securityViolationReported(nodeID: "n2", detail: "publish to archon.v1.events.n3.job-1 refused: not permitted for n2's credentials", at: fleet.now)
        #expect(decisions(actions) == ["opened INC-1 L2 Training Failure Escalation - security: node n2"])
    }

    @Test func actionsAreLoggableAndEncodable() throws {
        var fleet = Fleet()
        let actions = fleet.submit(spec("job-1"))
        #expect(actions.map(\.description) == [
            "assign job-1 attempt 1 to n1 — job submitted: job 'job-1' needs 8 GiB memory, 2 CPU cores — rule: placement: least loaded schedulable node with room",
            "schedule start-deadline/job-1 at 2026-01-01T00:10:00Z",
        ])
        let decoded = try JSONDecoder().decode([ControllerAction].self, from: JSONEncoder().encode(actions))
        #expect(decoded == actions)
    }
}
