import ArchonModel
import Testing

@testable import ArchonCore

@Suite struct PostIncidentReportTests {
    @Test func aResolvedIncidentYieldsItsReview() throws {
        var fleet = Fleet(policy: .noBackoff)
        _ = fleet.submit(spec("job-1", team: "vision"))
        _ = fleet.start("job-1")
        fleet.at(5 * minute)
        _ = fleet.exit("job-1", failure: .datasetNotFound, detail: "FileNotFoundError")
        #expect(fleet.controller.postIncidentReport("INC-1") == nil)  // not resolved yet
        fleet.at(12 * minute)
        _ = try fleet.controller.incidentAcknowledged("INC-1", by: "ana", at: fleet.now)
        fleet.at(40 * minute)
        _ = try fleet.controller.incidentResolved("INC-1", by: "ana", rootCause: "dataset id renamed to ds-1b", at: fleet.now)

        let report = try #require(fleet.controller.postIncidentReport("INC-1"))
        #expect(report.timeToDetectMs == 0)
        #expect(report.timeToResolveMs == 35 * minute)
        #expect(report.rootCause == "dataset id renamed to ds-1b")
        #expect(report.resolutionSteps == ["resolved by ana: dataset id renamed to ds-1b"])
        #expect(report.timeline.map(\.text) == [
            "job job-1 submitted",
            "attempt 1 assigned to n1: initial placement",
            "attempt 1 started",
            "detected dataset not found on attempt 1: failed: dataset not found — exit 1: FileNotFoundError",
            "opened at L1 (ML Ops Team): dataset not found: attempt 1 on n1: exit 1: FileNotFoundError — rule: remediation.ladders.datasetNotFound has no steps → escalate to L1 at once",
            "acknowledged by ana at L1",
            "resolved by ana: dataset id renamed to ds-1b",
        ])
        let md = report.markdown
        #expect(md.hasPrefix("# Post-incident review: Training Failure Escalation - job-1\n"))
        #expect(md.contains("| Time of failure | 2026-01-01T00:05:00Z |"))
        #expect(md.contains("| Time to resolve | 35m |"))
        #expect(md.contains("## Root cause\n\ndataset id renamed to ds-1b\n"))
        #expect(md.contains("1. resolved by ana: dataset id renamed to ds-1b"))
    }

    @Test func stepsTakenBecomeResolutionStepsWithOutcomes() throws {
        var fleet = Fleet(policy: .noBackoff)
        _ = fleet.submit(spec("job-1", batch: 8))
        for _ in 1...4 {
            _ = fleet.start("job-1")
            fleet.advance(minute)
            _ = fleet.exit("job-1", oom: true)
        }
        fleet.advance(hour)
        _ = try fleet.controller.incidentResolved("INC-1", by: "lee", rootCause: "model too large for a100-40gb", at: fleet.now)
        let report = try #require(fleet.controller.postIncidentReport("INC-1"))
        #expect(report.resolutionSteps == [
            "job-1 attempt 2: halve the batch size, double gradient accumulation (batchSize 8 -> 4, gradientAccumulationSteps 1 -> 2) → failed again: out of memory",
            "job-1 attempt 3: halve the batch size, double gradient accumulation (batchSize 4 -> 2, gradientAccumulationSteps 2 -> 4) → failed again: out of memory",
            "job-1 attempt 4: raise the memory request ×2 (or the next GPU class) (resources.memory 8 GiB -> 16 GiB) → failed again: out of memory",
            "resolved by lee: model too large for a100-40gb",
        ])
        #expect(report.timeToDetectMs == 0)
        #expect(report.timeToResolveMs == 4 * minute + hour - minute)
    }
}
