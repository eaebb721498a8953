import ArchonModel
import Testing

@testable import ArchonCore

@Suite struct DatasetAndPermissionTests {
    @Test func datasetNotFoundIsEscalatedAtOnceWithZeroRestarts() {
        var fleet = Fleet()
        _ = fleet.controller.datasetRegistered(Dataset(id: "ds-3", location: "/data/ds-3", status: .unavailable), at: fleet.now)
        _ = fleet.submit(spec("job-1", dataset: "ds-1"))
        _ = fleet.start("job-1")
        fleet.advance(30 * second)
        let actions = fleet.exit("job-1", failure: .datasetNotFound, detail: "FileNotFoundError: /data/ds-1/train", log: ["Traceback", "FileNotFoundError: /data/ds-1/train"])
        #expect(lines(actions) == [
            "cancel attempt-deadline/job-1/1",
            "timer response-due/INC-1/L1 @15m30s",
            "opened INC-1 L1 Training Failure Escalation - job-1",
            "stop job-1#1 on n1",
            "timer archive-job/job-1 @7d30s",
        ])
        let job = fleet.job("job-1")
        #expect(job.status == .failed)
        #expect(job.restarts == 0 && job.history.count == 1 && job.remediation.isEmpty)
        let incident = fleet.incident("INC-1")
        #expect(incident.symptoms == [
            "attempt 1 on n1: dataset not found — exit 1: FileNotFoundError: /data/ds-1/train",
            "dataset 'ds-1' not found; ready datasets: ds-1, ds-2",
        ])
        #expect(incident.stepsTaken.isEmpty)
        #expect(incident.currentStatus == "failed: not retried — retrying cannot help with dataset not found")
        #expect(incident.logTail == ["Traceback", "FileNotFoundError: /data/ds-1/train"])
        #expect(firstReason(actions.filter { if case .publishEscalation = $0 { true } else { false } })?.rule == "remediation.ladders.datasetNotFound has no steps → escalate to L1 at once")
    }

    @Test func permissionDeniedIsASecurityConcernAtL2Critical() {
        var fleet = Fleet()
        _ = fleet.submit(spec("job-1"))
        _ = fleet.start("job-1")
        let actions = fleet.exit("job-1", failure: .permissionDenied, detail: "PermissionError: [Errno 13] /data/ds-1")
        #expect(decisions(actions) == ["opened INC-1 L2 Training Failure Escalation - job-1", "stop job-1#1 on n1"])
        let incident = fleet.incident("INC-1")
        #expect(incident.severity == .critical)
        #expect(incident.symptoms.last == "security concern: permission denied for job job-1 (team 'vision'); check IAM roles and API key scopes")
        #expect(fleet.job("job-1").restarts == 0)
    }
}
