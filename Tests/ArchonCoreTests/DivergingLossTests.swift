import ArchonModel
import Testing

@testable import ArchonCore

@Suite struct DivergingLossTests {
    let sha = String(repeating: "ab", count: 32)

    /// With a learning rate far too high the loss explodes from the first epoch on: every checkpoint of the attempt
    /// holds exploded weights, so the restart with the lower rate starts fresh instead of resuming one.
    @Test func aLossThatRoseFromTheFirstEpochRestartsFromScratch() throws {
        var fleet = Fleet()
        _ = fleet.submit(spec("job-1", lr: 5))
        _ = fleet.start("job-1")
        for (epoch, loss) in [(1, 1.9e15), (2, 3.0e24)] {
            fleet.advance(minute)
            _ = fleet.epoch("job-1", epoch, loss: loss)
            _ = fleet.send("job-1", .checkpoint(CheckpointWritten(path: "/ckpt/job-1/e\(epoch)", epoch: epoch, sha256: sha)))
        }
        fleet.advance(minute)
        _ = fleet.epoch("job-1", 3, loss: .infinity)
        fleet.advance(10 * second)
        let actions = fleet.fire(.restartDue(jobID: "job-1"))
        let assignment = try #require(assignments(actions).first)
        #expect(assignment.resumeFrom == "", "no checkpoint of a run that diverged from its start is resumed")
        #expect(assignment.freshStart, "and the agent is told not to pick its newest one either")
        #expect(assignment.spec.config.learningRate == 0.5)
    }

    @Test func fixedAfterOneLearningRateCutWithoutEscalation() throws {
        var fleet = Fleet()
        _ = fleet.submit(spec("job-1", lr: 0.01))
        _ = fleet.start("job-1")
        fleet.advance(minute)
        _ = fleet.epoch("job-1", 1, loss: 2.3)
        _ = fleet.send("job-1", .checkpoint(CheckpointWritten(path: "/ckpt/job-1/e1", epoch: 1, sha256: sha)))
        fleet.advance(minute)
        _ = fleet.epoch("job-1", 2, loss: 1.9)
        _ = fleet.send("job-1", .checkpoint(CheckpointWritten(path: "/ckpt/job-1/e2", epoch: 2, sha256: sha)))
        fleet.advance(minute)
        // The trainer wrote epoch 3's checkpoint, then reported a NaN loss for it: that checkpoint is not resumed from.
        _ = fleet.send("job-1", .checkpoint(CheckpointWritten(path: "/ckpt/job-1/e3", epoch: 3, sha256: sha)))
        var actions = fleet.epoch("job-1", 3, loss: .nan)
        #expect(decisions(actions) == ["stop job-1#1 on n1"])
        #expect(firstReason(actions)?.evidence == "attempt 1 on n1: epoch 3 training loss is nan")

        fleet.advance(10 * second)
        actions = fleet.fire(.restartDue(jobID: "job-1"))
        #expect(decisions(actions) == ["assign job-1#2 → n1 resume /ckpt/job-1/e2"])
        let assignment = try #require(assignments(actions).first)
        #expect(assignment.spec.config.learningRate == 0.001)
        #expect(assignment.reason.contains("remediation.ladders.divergingLoss step 1 of 4: scale the learning rate ×0.1 — learningRate 0.01 -> 0.001"))

        _ = fleet.start("job-1")
        var all: [ControllerAction] = []
        for (i, loss) in [1.7, 1.4, 1.2, 1.0, 0.9, 0.8, 0.7, 0.65].enumerated() {
            fleet.advance(minute)
            all += fleet.epoch("job-1", 3 + i, loss: loss)
        }
        all += fleet.complete("job-1")
        #expect(decisions(all) == ["stop job-1#2 on n1"])  // a finished job leaves the desired state
        #expect(fleet.controller.incidents.isEmpty)
        let job = fleet.job("job-1")
        #expect(job.status == .completed)
        #expect(job.remediation.map(\.outcome) == ["completed"])
        #expect(job.history.map(\.failureClass) == [.divergingLoss, .none])
    }

    @Test func lossRisingThreeEpochsInARowIsDivergence() throws {
        var fleet = Fleet(policy: .noBackoff)
        _ = fleet.submit(spec("job-1"))
        _ = fleet.start("job-1")
        var actions: [ControllerAction] = []
        for (i, loss) in [1.0, 0.9, 0.95, 1.0].enumerated() {
            actions += fleet.epoch("job-1", i + 1, loss: loss)
        }
        #expect(decisions(actions) == [])
        actions = fleet.epoch("job-1", 5, loss: 1.1)
        #expect(decisions(actions) == ["stop job-1#1 on n1", "assign job-1#2 → n1"])
        #expect(firstReason(actions)?.evidence == "attempt 1 on n1: loss rose 3 epochs in a row by 22%: 0.9 → 0.95 → 1 → 1.1 (epochs 2–5)")
    }

    @Test func aSpikeAboveThreeTimesTheMedianIsDivergence() throws {
        var fleet = Fleet(policy: .noBackoff)
        _ = fleet.submit(spec("job-1"))
        _ = fleet.start("job-1")
        _ = fleet.epoch("job-1", 1, loss: 1.0)
        _ = fleet.epoch("job-1", 2, loss: 0.9)
        _ = fleet.epoch("job-1", 3, loss: 0.8)
        let actions = fleet.epoch("job-1", 4, loss: 5.0)
        #expect(decisions(actions) == ["stop job-1#1 on n1", "assign job-1#2 → n1"])
        #expect(firstReason(actions)?.evidence == "attempt 1 on n1: epoch 4 loss 5 is 5.56× the median 0.9 of the previous 3 epochs (limit 3×)")
    }

    @Test func nanStepLossIsDivergence() {
        var fleet = Fleet(policy: .noBackoff)
        _ = fleet.submit(spec("job-1"))
        _ = fleet.start("job-1")
        let actions = fleet.send("job-1", .step(StepProgress(step: 120, epoch: 2, loss: .infinity)))
        #expect(decisions(actions) == ["stop job-1#1 on n1", "assign job-1#2 → n1"])
    }

    @Test func fullLadderRequestsADataQualityCheckAndEscalatesToL2() throws {
        var fleet = Fleet(policy: .noBackoff)
        _ = fleet.submit(spec("job-1", lr: 0.1))
        var configs: [TrainingConfig] = []
        var transcript: [String] = []
        for attempt in 1...5 {
            _ = fleet.start("job-1")
            let actions = fleet.epoch("job-1", 1, loss: .nan)
            transcript += decisions(actions)
            configs += assignments(actions).map(\.spec.config)
            #expect(fleet.job("job-1").attempt == min(attempt + 1, 5))
        }
        #expect(transcript == [
            "stop job-1#1 on n1", "assign job-1#2 → n1",
            "stop job-1#2 on n1", "assign job-1#3 → n1",
            "stop job-1#3 on n1", "assign job-1#4 → n1",
            "stop job-1#4 on n1", "assign job-1#5 → n1", "opened INC-1 L2 Training Failure Escalation - job-1",
            "stop job-1#5 on n1", "updated INC-1 L2 Training Failure Escalation - job-1",
        ])
        #expect(configs.map(\.learningRate) == [0.01, 0.01, 0.01, 0.01])
        #expect(configs[1].lrSchedule == LRSchedule(kind: .exponential, decayRate: 0.96, decaySteps: 1000))
        #expect(configs[2].gradientClipping == GradientClipping(enabled: true, maxNorm: 1.0))
        #expect(configs[3].dataQualityCheck)
        let incident = fleet.incident("INC-1")
        #expect(incident.level == .l2)
        #expect(incident.stepsTaken.map(\.action) == [
            "scale the learning rate ×0.1",
            "add exponential LR decay (rate 0.96 every 1000 steps)",
            "add gradient clipping (max norm 1)",
            "request a data-quality check and escalate to L2",
        ])
        #expect(incident.currentStatus == "failed: diverging loss ladder exhausted after 4 steps; no automatic retries left")
        #expect(fleet.job("job-1").status == .failed)
    }
}
