import ArchonModel
import Testing

@testable import ArchonCore

@Suite struct BadDatasetTests {
    @Test func aDatasetIncidentInhibitsThePerJobPagesAndPausesRetries() throws {
        var fleet = Fleet(policy: .noBackoff)
        _ = fleet.submit(spec("job-1", dataset: "ds-1"))
        _ = fleet.submit(spec("job-2", dataset: "ds-1"))
        _ = fleet.start("job-1")
        _ = fleet.start("job-2")
        fleet.advance(minute)
        #expect(decisions(fleet.exit("job-1", failure: .datasetNotFound)) == ["opened INC-1 L1 Training Failure Escalation - job-1", "stop job-1#1 on n1"])
        fleet.advance(minute)
        let actions = fleet.exit("job-2", failure: .datasetNotFound)
        #expect(decisions(actions) == [
            "pause retries ds-1",
            "opened INC-2 L2 Training Failure Escalation - dataset ds-1",
            "updated INC-1 L1 Training Failure Escalation - job-1",
        ])
        #expect(escalations(actions).filter { $0.kind == .opened }.map(\.incident.id) == ["INC-2"])  // no page for job-2
        #expect(firstReason(actions)?.rule == "correlation.badDataset: ≥ 2 jobs on one dataset fail → pause retries on it, escalate to L2")
        #expect(fleet.incident("INC-1").parentID == "INC-2")
        #expect(fleet.job("job-1").status == .paused && fleet.job("job-2").status == .paused)
        #expect(fleet.controller.dataset("ds-1")?.retriesPaused == true)

        // The per-job page stays quiet past its response time; the dataset incident climbs after 1 h.
        fleet.advance(20 * minute)
        #expect(escalations(fleet.tick()).isEmpty)
        fleet.advance(40 * minute)
        #expect(decisions(fleet.tick()) == ["escalated INC-2 L3 Training Failure Escalation - dataset ds-1"])

        // Fixed and resumed: both jobs run again.
        let resumed = try fleet.controller.datasetResumed("ds-1", by: "ana", at: fleet.now)
        #expect(decisions(resumed) == ["resume retries ds-1", "assign job-1#2 → n1", "assign job-2#2 → n2"])
    }

    @Test func divergenceAndCorruptionOnOneDatasetHoldTheWaitingRestart() {
        var fleet = Fleet()
        _ = fleet.submit(spec("job-1", dataset: "ds-2"))
        _ = fleet.submit(spec("job-2", dataset: "ds-2"))
        _ = fleet.start("job-1")
        _ = fleet.start("job-2")
        #expect(decisions(fleet.epoch("job-1", 1, loss: .nan)) == ["stop job-1#1 on n1"])  // restart waits 10 s
        let actions = fleet.exit("job-2", failure: .dataCorruption, detail: "UnicodeDecodeError in shard 17")
        #expect(lines(actions) == [
            "cancel attempt-deadline/job-2/1",
            "pause retries ds-2",
            "timer response-due/INC-1/L2 @1h",
            "opened INC-1 L2 Training Failure Escalation - dataset ds-2",
            "cancel restart-due/job-1",
        ])
        #expect(fleet.job("job-1").status == .paused && fleet.job("job-2").status == .paused)
        #expect(fleet.job("job-1").pending?.config.learningRate == 0.001)  // its LR cut waits for the dataset
    }
}
