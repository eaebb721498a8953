import ArchonModel
import Testing

@testable import ArchonCore

@Suite struct OutOfMemoryLadderTests {
    @Test func fullLadderEndsInEscalationWithEveryStepListed() throws {
        var fleet = Fleet()
        #expect(lines(fleet.submit(spec("job-1", batch: 64))) == [
            "assign job-1#1 → n1",
            "timer start-deadline/job-1 @10m",
        ])
        #expect(lines(fleet.start("job-1")) == [
            "cancel start-deadline/job-1",
            "timer attempt-deadline/job-1/1 @2h",
        ])

        // Attempt 1: OOM-killed → batch 64 → 32, accumulation 1 → 2, after a 10 s backoff.
        fleet.advance(5 * minute)
        #expect(lines(fleet.exit("job-1", code: -1, signal: 9, oom: true, log: ["Killed"])) == [
            "cancel attempt-deadline/job-1/1",
            "timer restart-due/job-1 @5m10s",
        ])
        fleet.advance(10 * second)
        var actions = fleet.fire(.restartDue(jobID: "job-1"))
        #expect(lines(actions) == ["assign job-1#2 → n1", "timer start-deadline/job-1 @15m10s"])
        var config = try #require(assignments(actions).first).spec.config
        #expect(config.batchSize == 32 && config.gradientAccumulationSteps == 2)

        // Attempt 2: CUDA OOM → 32 → 16, accumulation 4, after 20 s.
        _ = fleet.start("job-1")
        fleet.advance(minute)
        _ = fleet.exit("job-1", failure: .outOfMemory, detail: "CUDA out of memory. Tried to allocate 2.00 GiB")
        #expect(fleet.controller.scheduledTimers.contains { $0.id == .restartDue(jobID: "job-1") && $0.atMs == fleet.now + 20 * second })
        fleet.advance(20 * second)
        actions = fleet.fire(.restartDue(jobID: "job-1"))
        config = try #require(assignments(actions).first).spec.config
        #expect(config.batchSize == 16 && config.gradientAccumulationSteps == 4)

        // Attempt 3: MemoryError → memory request 8 GiB → 16 GiB, batch unchanged, after 40 s.
        _ = fleet.start("job-1")
        fleet.advance(minute)
        _ = fleet.exit("job-1", failure: .outOfMemory, detail: "MemoryError")
        fleet.advance(40 * second)
        actions = fleet.fire(.restartDue(jobID: "job-1"))
        config = try #require(assignments(actions).first).spec.config
        #expect(config.batchSize == 16 && config.resources.memoryBytes == 16 * gib)

        // Attempt 4: OOM again → the ladder is used up: escalate at L1, with all three steps and their outcomes.
        _ = fleet.start("job-1")
        fleet.advance(minute)
        actions = fleet.exit("job-1", code: -1, signal: 9, oom: true, log: ["step 12", "Killed"])
        #expect(lines(actions) == [
            "cancel attempt-deadline/job-1/4",
            "cancel healthy/job-1/4",
            "cancel budget-reset/job-1/4",
            "timer response-due/INC-1/L1 @24m10s",
            "opened INC-1 L1 Training Failure Escalation - job-1",
            "stop job-1#4 on n1",
            "timer archive-job/job-1 @7d9m10s",
        ])
        let incident = fleet.incident("INC-1")
        #expect(incident.cause == .job && incident.severity == .high && incident.jobs == ["job-1"] && incident.nodes == ["n1"])
        #expect(incident.stepsTaken.map(\.configChange) == [
            "batchSize 64 -> 32, gradientAccumulationSteps 1 -> 2",
            "batchSize 32 -> 16, gradientAccumulationSteps 2 -> 4",
            "resources.memory 8 GiB -> 16 GiB",
        ])
        #expect(incident.stepsTaken.map(\.outcome) == Array(repeating: "failed again: out of memory", count: 3))
        #expect(incident.stepsTaken.map(\.attempt) == [2, 3, 4])
        #expect(incident.symptoms.count == 4)
        #expect(incident.symptoms[0].hasPrefix("attempt 1 on n1: out of memory — OOM-killed by the kernel (killed by signal 9)"))
        #expect(incident.currentStatus == "failed: out of memory ladder exhausted after 3 steps; no automatic retries left")
        #expect(incident.logTail == ["step 12", "Killed"])
        #expect(incident.failureTimeMs == t0 + 5 * minute)
        #expect(fleet.job("job-1").status == .failed)
        #expect(fleet.job("job-1").restarts == 3)
    }

    @Test func memoryAtTheLimitIsOutOfMemoryWhileRunning() throws {
        var fleet = Fleet(policy: .noBackoff)
        _ = fleet.submit(spec("job-1", batch: 64))
        _ = fleet.start("job-1")
        let actions = fleet.send("job-1", .resources(ResourceSample(memoryUsedBytes: 8 * gib, memoryLimitBytes: 8 * gib)))
        #expect(decisions(actions) == ["stop job-1#1 on n1", "assign job-1#2 → n1"])
        let reason = try #require(actions.first { if case .assign = $0 { true } else { false } }?.reason)
        #expect(reason.symptom == "out of memory")
        #expect(reason.evidence == "attempt 1 on n1: memory 8 GiB reached the limit of 8 GiB")
        #expect(reason.rule == "remediation.ladders.outOfMemory step 1 of 3: halve the batch size, double gradient accumulation — batchSize 64 -> 32, gradientAccumulationSteps 1 -> 2")
    }

    @Test func batchOfOneSkipsToMoreMemory() throws {
        var fleet = Fleet(policy: .noBackoff)
        _ = fleet.submit(spec("job-1", batch: 1))
        _ = fleet.start("job-1")
        let actions = fleet.exit("job-1", oom: true)
        let assignment = try #require(assignments(actions).first)
        #expect(assignment.spec.config.batchSize == 1)
        #expect(assignment.spec.config.resources.memoryBytes == 16 * gib)
        #expect(fleet.job("job-1").ladderSteps["outOfMemory"] == 3)
        #expect(assignment.reason.contains("skipped, nothing to change: halve the batch size"))
    }

    @Test func gpuJobsMoveToTheNextGPUClass() throws {
        var fleet = Fleet(policy: .noBackoff, nodes: [])
        fleet.addNode("n1", gpus: [GPU(index: 0, name: "A100", gpuClass: "a100-40gb", memoryBytes: 40 * gib)])
        fleet.addNode("n2", gpus: [GPU(index: 0, name: "A100", gpuClass: "a100-80gb", memoryBytes: 80 * gib)])
        var job = spec("job-1", batch: 1)
        job.config.resources.gpuClass = "a100-40gb"
        job.config.resources.gpuCount = 1
        _ = fleet.submit(job)
        _ = fleet.start("job-1")
        let actions = fleet.exit("job-1", failure: .outOfMemory, detail: "CUDA out of memory")
        #expect(decisions(actions) == ["stop job-1#1 on n1", "assign job-1#2 → n2"])  // the old key is cleared
        #expect(try #require(assignments(actions).first).spec.config.resources.gpuClass == "a100-80gb")
    }

    @Test func oddBatchesKeepTheEffectiveBatchExactly() {
        #expect(Remedy.halved(batch: 64, accumulation: 1)! == (32, 2))
        #expect(Remedy.halved(batch: 33, accumulation: 1)! == (11, 3))
        #expect(Remedy.halved(batch: 3, accumulation: 2)! == (1, 6))
        #expect(Remedy.halved(batch: 1, accumulation: 8) == nil)
    }
}
