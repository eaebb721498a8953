import ArchonModel
import Testing

@testable import ArchonCore

@Suite struct NoticeTests {
    @Test func noImprovementForThreeEpochsNotifiesOnceWithoutRestart() {
        var fleet = Fleet()
        _ = fleet.submit(spec("job-1"))
        _ = fleet.start("job-1")
        var transcript: [String] = []
        for (i, loss) in [1.0, 0.995, 0.993, 0.992, 0.991].enumerated() {
            fleet.advance(minute)
            transcript += lines(fleet.epoch("job-1", i + 1, loss: loss))
        }
        #expect(transcript.filter { !$0.contains("deadline") } == ["opened INC-1 L1 Training Notice - job-1: poor training performance"])
        let incident = fleet.incident("INC-1")
        #expect(incident.cause == .notice && incident.severity == .warning && incident.respondByMs == 0)
        #expect(incident.symptoms == ["attempt 1: no training loss improvement of at least 0.01 for 3 consecutive epochs (best 1 at epoch 1, now 0.992 at epoch 4)"])
        #expect(fleet.job("job-1").status == .running && fleet.job("job-1").attempt == 1)
        // Notices never climb.
        fleet.at(5 * hour)
        #expect(escalations(fleet.tick()).isEmpty)
    }

    @Test func validationFarWorseThanTrainingNotifies() {
        var fleet = Fleet()
        _ = fleet.submit(spec("job-1"))
        _ = fleet.start("job-1")
        let actions = fleet.epoch("job-1", 1, loss: 0.5, validation: 1.5)
        #expect(decisions(actions) == ["opened INC-1 L1 Training Notice - job-1: poor training performance"])
        #expect(fleet.incident("INC-1").symptoms == ["attempt 1: epoch 1 validation loss 1.5 is 3× the training loss 0.5 (limit 2×)"])
    }

    @Test func resourcesAboveNinetyPercentNotifyBeforeTheOOM() {
        var fleet = Fleet()
        _ = fleet.submit(spec("job-1"))
        _ = fleet.start("job-1")
        var actions = fleet.send("job-1", .resources(ResourceSample(memoryUsedBytes: 7 * gib + gib / 2, memoryLimitBytes: 8 * gib, diskUsedBytes: 95, diskTotalBytes: 100)))
        #expect(decisions(actions) == [
            "opened INC-1 L1 Training Notice - job-1: resource pressure",
            "opened INC-2 L1 Training Notice - job-1: resource pressure",
        ])
        #expect(fleet.incident("INC-1").symptoms == ["attempt 1: memory 7.5 GiB of 8 GiB (94%, limit 90%)"])
        actions = fleet.send("job-1", .resources(ResourceSample(memoryUsedBytes: 7 * gib + gib / 2, memoryLimitBytes: 8 * gib)))
        #expect(actions.isEmpty)
        #expect(fleet.job("job-1").status == .running)
    }
}
