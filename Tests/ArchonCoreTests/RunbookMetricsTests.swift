import ArchonModel
import Testing

@testable import ArchonCore

/// The runbook's success metrics (issue #11 part 10): how each job's series of failures ends, how long the fix took
/// against the quick-fix table, and each incident's time to detect and resolve.
@Suite struct RunbookMetricsTests {
    @Test func anOOMFixedByHalvingTheBatchIsMeasuredWhenItsAttemptRunsHealthy() {
        var fleet = Fleet(policy: .noBackoff)
        _ = fleet.submit(spec("job-1", batch: 64))
        _ = fleet.start("job-1")
        fleet.advance(minute)
        #expect(measures(fleet.exit("job-1", oom: true)).isEmpty, "a series is measured when it ends")
        fleet.advance(90 * second)
        let started = fleet.start("job-1")
        #expect(lines(started).contains("timer healthy/job-1/2 @12m30s"), "no incident, but a series to confirm: \(lines(started))")
        fleet.advance(minute)
        _ = fleet.epoch("job-1", 1, loss: 1.0)
        fleet.at(12 * minute + 30 * second)
        #expect(measures(fleet.fire(.healthyFor(jobID: "job-1", attempt: 2))) == ["measure outOfMemory fixed in 1m30s (target 5m)"])
        #expect(fleet.job("job-1").firstFailureMs == 0, "the series is over")
        // Completion later measures nothing more: that series was already counted.
        #expect(measures(fleet.complete("job-1")).isEmpty)
    }

    @Test func aSeriesOfTwoClassesIsMeasuredOncePerClassAtCompletion() {
        var fleet = Fleet(policy: .noBackoff)
        _ = fleet.submit(spec("job-1", batch: 64))
        _ = fleet.start("job-1")
        _ = fleet.exit("job-1", code: 139)  // crash at 0
        fleet.advance(minute)
        _ = fleet.start("job-1")
        fleet.advance(minute)
        _ = fleet.exit("job-1", oom: true)  // OOM at 2m
        fleet.advance(minute)
        _ = fleet.start("job-1")  // attempt 3 at 3m, half the batch
        fleet.advance(5 * minute)
        #expect(measures(fleet.complete("job-1")) == ["measure crash fixed in 3m", "measure outOfMemory fixed in 1m (target 5m)"])
    }

    @Test func aJobThatFailsForGoodOrIsStoppedIsNotFixed() throws {
        var fleet = Fleet(policy: .noBackoff)
        _ = fleet.submit(spec("job-1"))
        _ = fleet.start("job-1")
        #expect(measures(fleet.exit("job-1", failure: .datasetNotFound)) == ["measure datasetNotFound failed in 0s (target 2m)"])

        _ = fleet.submit(spec("job-2"))
        _ = fleet.start("job-2")
        _ = fleet.exit("job-2", oom: true)
        fleet.advance(minute)
        #expect(measures(try fleet.controller.jobStopRequested("job-2", by: "sam", at: fleet.now)) == ["measure outOfMemory stopped in 1m (target 5m)"])
        // A job that never failed ends no series.
        _ = fleet.submit(spec("job-3"))
        _ = fleet.start("job-3")
        #expect(measures(fleet.complete("job-3")).isEmpty)
    }

    @Test func aResolvedIncidentIsMeasuredAndItsReportSaysWhetherTheQuickFixTimeWasMet() throws {
        var fleet = Fleet(policy: .noBackoff)
        _ = fleet.submit(spec("job-1"))
        _ = fleet.start("job-1")
        fleet.advance(minute)
        _ = fleet.exit("job-1", failure: .permissionDenied)  // L2 at once, detected at once
        fleet.advance(12 * minute)
        let resolved = try fleet.controller.incidentResolved("INC-1", by: "sam", rootCause: "IAM role restored", at: fleet.now)
        #expect(measures(resolved) == ["measure job resolved: detected in 0s, resolved in 12m"])
        let report = try #require(fleet.controller.postIncidentReport("INC-1"))
        #expect(report.runbookSymptom == "permissionDenied" && report.quickFixTargetMs == 10 * minute && report.withinQuickFixTarget == false)
        #expect(report.markdown.contains("| Runbook quick-fix time (permission denied) | 10m: missed by 2m |"), "\(report.markdown)")

        // Auto-resolved ones say so; an incident attached to a fleet incident is not measured on its own.
        _ = fleet.submit(spec("big-1", memory: 60 * gib))
        _ = fleet.submit(spec("big-2", memory: 60 * gib))
        _ = fleet.submit(spec("big-3", memory: 60 * gib))
        _ = fleet.submit(spec("big-4", memory: 60 * gib))
        for id in ["big-1", "big-2", "big-3"] { _ = fleet.start(id) }
        fleet.advance(10 * minute)
        _ = fleet.fire(.startDeadline(jobID: "big-4"))
        fleet.advance(minute)
        _ = fleet.complete("big-1")
        let auto = fleet.start("big-4")
        #expect(measures(auto) == ["measure job resolved by archon: detected in 10m, resolved in 11m"], "queued at 0, stuck at 10m, started at 11m")
        #expect(fleet.controller.postIncidentReport(fleet.job("big-4").incidentID)?.withinQuickFixTarget == nil, "stuck queued has no quick-fix time")
    }
}
