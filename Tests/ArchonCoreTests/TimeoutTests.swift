import ArchonModel
import Testing

@testable import ArchonCore

@Suite struct TimeoutTests {
    @Test func slowEpochsExtendTheLimitsThenEnableMixedPrecisionThenEscalate() throws {
        var fleet = Fleet(policy: .noBackoff)
        _ = fleet.submit(spec("job-1"))
        #expect(fleet.job("job-1").config.timeouts == Timeouts(perEpochSeconds: 900, totalSeconds: 7200, heartbeatSeconds: 600))

        _ = fleet.start("job-1")
        var actions = fleet.epoch("job-1", 1, loss: 1.0, seconds: 20 * 60)
        #expect(decisions(actions) == ["stop job-1#1 on n1", "assign job-1#2 → n1"])
        #expect(firstReason(actions)?.evidence == "attempt 1 on n1: epoch 1 took 20m, limit 15m")
        var config = try #require(assignments(actions).first).spec.config
        #expect(config.timeouts.perEpochSeconds == 30 * 60 && config.timeouts.totalSeconds == 4 * 3600)
        #expect(!config.mixedPrecision)

        _ = fleet.start("job-1")
        actions = fleet.epoch("job-1", 1, loss: 1.0, seconds: 31 * 60)
        config = try #require(assignments(actions).first).spec.config
        #expect(config.mixedPrecision && config.timeouts.perEpochSeconds == 30 * 60)

        _ = fleet.start("job-1")
        actions = fleet.epoch("job-1", 1, loss: 1.0, seconds: 31 * 60)
        #expect(decisions(actions) == ["stop job-1#3 on n1", "opened INC-1 L1 Training Failure Escalation - job-1"])
        #expect(fleet.incident("INC-1").stepsTaken.map(\.configChange) == [
            "timeouts.perEpoch 15m -> 30m, timeouts.total 2h -> 4h",
            "mixedPrecision false -> true",
        ])
    }

    @Test func anEpochStillRunningPastItsLimitTimesOut() {
        var fleet = Fleet(policy: .noBackoff)
        _ = fleet.submit(spec("job-1"))
        _ = fleet.start("job-1")
        fleet.advance(10 * minute)
        #expect(lines(fleet.epoch("job-1", 1, loss: 1.0, seconds: 600)) == [
            "timer progress-deadline/job-1/1 @20m",
            "timer epoch-deadline/job-1/1 @15m",
        ])
        // Epoch 1 ended at 10m, so epoch 2 may run until 25m.
        fleet.at(15 * minute)
        #expect(lines(fleet.fire(.epochDeadline(jobID: "job-1", attempt: 1))) == ["timer epoch-deadline/job-1/1 @25m"])
        fleet.at(20 * minute)
        _ = fleet.send("job-1", .step(StepProgress(step: 150, epoch: 2, loss: 0.9)))
        _ = fleet.fire(.progressDeadline(jobID: "job-1", attempt: 1))
        fleet.at(25 * minute)
        let actions = fleet.fire(.epochDeadline(jobID: "job-1", attempt: 1))
        #expect(decisions(actions) == ["stop job-1#1 on n1", "assign job-1#2 → n1"])
        #expect(firstReason(actions)?.evidence == "attempt 1 on n1: epoch 2 running for 15m, limit 15m")
    }

    @Test func anAttemptPastItsTotalLimitTimesOut() throws {
        var fleet = Fleet(policy: .noBackoff)
        _ = fleet.submit(spec("job-1"))
        _ = fleet.start("job-1")  // reports nothing after starting: only the total limit applies
        fleet.at(2 * hour)
        let actions = fleet.tick()
        #expect(decisions(actions) == ["stop job-1#1 on n1", "assign job-1#2 → n1"])
        #expect(try #require(assignments(actions).first).spec.config.timeouts.totalSeconds == 4 * 3600)
    }
}
