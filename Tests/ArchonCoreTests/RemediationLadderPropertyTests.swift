import ArchonModel
import PropertyBased
import Testing

@testable import ArchonCore

/// Rungs a random ladder is built from.
let anyRemedy: [Remedy] = [
    .restart, .replace, .halveBatch, .raiseMemory(factor: 2), .scaleLearningRate(factor: 0.1),
    .exponentialDecay(decayRate: 0.96, decaySteps: 1000), .gradientClipping(maxNorm: 1),
    .extendTimeouts(factor: 2, maxPerEpoch: .minutes(30), maxTotal: .hours(4)), .mixedPrecision,
    .dataQualityCheck(escalateTo: .l2),
]

/// Failure classes an agent reports, as random exits.
let anyFailure: [FailureClass] = [.outOfMemory, .divergingLoss, .timeout, .crash, .hang, .nodeFault, .dataCorruption, .datasetNotFound, .permissionDenied]

@Suite struct RemediationLadderPropertyTests {
    @Test func everyOOMStepPreservesTheEffectiveBatch() async {
        let ladder = LadderPolicy(steps: Array(repeating: .halveBatch, count: 14) + [.raiseMemory(factor: 2)])
        await propertyCheck(input: Gen.int(in: 1...4096), Gen.int(in: 1...64), Gen.uint64(in: 0...(64 * gib))) { batch, accumulation, memory in
            var config = TrainingConfig(batchSize: batch, gradientAccumulationSteps: accumulation)
            config.resources.memoryBytes = memory
            let effective = config.effectiveBatchSize
            var position = 0
            while let step = RemediationLadder.next(ladder, position: position, config: config, context: RemediationContext(maxMemoryRequest: 256 * gib)) {
                #expect(step.change.config.effectiveBatchSize == effective)
                #expect(step.change.config.batchSize >= 1)
                #expect(step.index >= position)
                config = step.change.config
                position = step.index + 1
            }
        }
    }

    @Test func theControllersOOMRestartsKeepTheEffectiveBatch() async {
        await propertyCheck(count: 40, input: Gen.int(in: 1...512), Gen.int(in: 1...16)) { batch, accumulation in
            var job = spec("job-1", batch: batch)
            job.config.gradientAccumulationSteps = accumulation
            var fleet = Fleet(policy: .noBackoff)
            var placed = assignments(fleet.submit(job))
            for _ in 0..<6 where fleet.job("job-1").status != .failed {
                _ = fleet.start("job-1")
                placed += assignments(fleet.exit("job-1", oom: true))
            }
            #expect(fleet.job("job-1").status == .failed)
            #expect(Set(placed.map(\.spec.config.effectiveBatchSize)) == [batch * accumulation])
        }
    }

    @Test func everyLadderTerminates() async {
        let rungs = Gen.int(in: 0...(anyRemedy.count - 1)).array(of: 0...5)
        let failures = Gen.int(in: 0...(anyFailure.count - 1)).array(of: 80)
        await propertyCheck(count: 60, input: rungs, rungs, failures, Gen.int(in: 0...12)) { oom, crash, sequence, budget in
            var policy = Policy.noBackoff
            policy.remediation.maxRestartsPerJob = budget
            policy.remediation.ladders.outOfMemory.steps = oom.map { anyRemedy[$0] }
            policy.remediation.ladders.crash.steps = crash.map { anyRemedy[$0] }
            policy.remediation.ladders.hang.steps = crash.reversed().map { anyRemedy[$0] }
            let ladders = policy.remediation.ladders
            let rungsInAll = Symptom.allCases.compactMap { ladders.ladder(for: $0)?.steps.count }.reduce(0, +)

            var fleet = Fleet(policy: policy)
            _ = fleet.submit(spec("job-1"))
            var failuresSent = 0
            for failure in sequence {
                let job = fleet.job("job-1")
                if job.status == .failed || job.status == .paused { break }
                if job.status == .queued && job.nodeID.isEmpty { break }  // nowhere left to place it
                _ = fleet.start("job-1")
                fleet.advance(minute)
                _ = fleet.exit("job-1", failure: anyFailure[failure])
                failuresSent += 1
            }
            let job = fleet.job("job-1")
            // Automation has stopped: failed (escalated), held for an operator, or waiting for room — never looping.
            #expect(job.status == .failed || job.status == .paused || (job.status == .queued && job.nodeID.isEmpty))
            #expect(job.restarts <= min(budget, rungsInAll))
            #expect(failuresSent <= rungsInAll + 1)
        }
    }
}

extension Gen where Value == UInt64 {
    static func uint64(in range: ClosedRange<UInt64>) -> Generator<UInt64, Shrink.Integer<UInt64>> { Gen<UInt64>.value(in: range) }
}
