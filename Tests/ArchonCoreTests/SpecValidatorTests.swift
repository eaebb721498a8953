import ArchonModel
import Testing

@testable import ArchonCore

@Suite struct SpecValidatorTests {
    let datasets = [
        DatasetRecord(dataset: Dataset(id: "ds-1", location: "/data/ds-1"), registeredAtMs: 0),
        DatasetRecord(dataset: Dataset(id: "ds-2", location: "/data/ds-2", allowedTeams: ["nlp"]), registeredAtMs: 0),
        DatasetRecord(dataset: Dataset(id: "ds-3", location: "/data/ds-3", status: .unavailable), registeredAtMs: 0),
    ]

    var nodes: [NodeRecord] {
        var node = NodeRecord(id: "n1", at: 0)
        node.status.capacity = NodeCapacity(cpuCores: 8, memoryBytes: 32 * gib, gpus: [GPU(index: 0, name: "A100", gpuClass: "a100-40gb", memoryBytes: 40 * gib)])
        return [node]
    }

    @Test func aValidSpecHasNoProblems() {
        #expect(SpecValidator().problems(in: spec("job-1"), datasets: datasets, nodes: nodes).isEmpty)
    }

    @Test func everyProblemIsReportedAtOnce() {
        var bad = JobSpec(id: "job 1", team: "vision")
        bad.config.batchSize = 0
        bad.config.gradientAccumulationSteps = 0
        bad.config.learningRate = 12
        bad.config.epochs = 0
        bad.config.dataSubset = 1.5
        bad.config.lrSchedule = LRSchedule(kind: .exponential, decayRate: 0, decaySteps: 0)
        bad.config.gradientClipping = GradientClipping(enabled: true, maxNorm: 0)
        bad.config.timeouts.perEpochSeconds = -5
        bad.config.resources = Resources(memoryBytes: 64 * gib, gpuClass: "", gpuCount: 1)
        bad.config.dataset = "ds-9"
        let problems = SpecValidator().problems(in: bad, datasets: datasets, nodes: nodes).map(\.description)
        #expect(problems == [
            "id: must be 1-64 characters of A-Z, a-z, 0-9, '_' or '-' (it names NATS subjects and KV keys), got \"job 1\"",
            "command: required: the argv of the training process",
            "config.batchSize: must be 1...2147483647, got 0",
            "config.gradientAccumulationSteps: must be 1...2147483647, got 0",
            "config.epochs: must be 1...2147483647, got 0",
            "config.learningRate: must be > 0 and < 10, got 12.0",
            "config.dataSubset: must be between 0 (all data) and 1, got 1.5",
            "config.lrSchedule.decayRate: must be > 0 and <= 1 for a exponential schedule, got 0.0",
            "config.lrSchedule.decaySteps: must be >= 1 for a exponential schedule, got 0",
            "config.gradientClipping.maxNorm: must be > 0 when clipping is enabled, got 0",
            "config.timeouts.perEpochSeconds: must be 0...10000000 seconds (0 = the policy default), got -5",
            "config.resources.gpuClass: required when gpuCount is 1",
            "config.dataset: dataset 'ds-9' not found; ready datasets: ds-1, ds-2",
            "config.resources: no node in the fleet can run this job: it needs 64 GiB memory, 1× ; largest node: n1 (32 GiB memory, 8 CPU cores, 1× a100-40gb)",
        ])
    }

    @Test func countsPastThirtyTwoBitsAreRefusedBeforeAnyProductCanOverflow() {
        var huge = spec("job-1")
        huge.config.batchSize = 1 << 62
        huge.config.gradientAccumulationSteps = 4  // 2^64: effectiveBatchSize would trap
        huge.config.seed = UInt64.max
        #expect(SpecValidator().problems(in: huge, datasets: datasets, nodes: nodes).map(\.description) == [
            "config.batchSize: must be 1...2147483647, got 4611686018427387904",
            "config.seed: must be at most 9223372036854775807, got 18446744073709551615",
        ])
    }

    @Test func datasetsMustBeReadyAndReadable() {
        var job = spec("job-1", dataset: "ds-3")
        #expect(SpecValidator().problems(in: job, datasets: datasets, nodes: nodes).map(\.description) == [
            "config.dataset: dataset 'ds-3' is unavailable; ready datasets: ds-1, ds-2"
        ])
        job.config.dataset = "ds-2"
        #expect(SpecValidator().problems(in: job, datasets: datasets, nodes: nodes).map(\.description) == [
            "team: team 'vision' may not read dataset 'ds-2' (allowed: nlp)"
        ])
        job.config.dataset = ""
        var policy = ValidationPolicy()
        policy.requireDataset = true
        #expect(SpecValidator(policy: policy).problems(in: job, datasets: datasets, nodes: nodes).map(\.description) == [
            "config.dataset: required; ready datasets: ds-1, ds-2"
        ])
    }

    @Test func anEmptyFleetCannotJudgeCapacity() {
        #expect(SpecValidator().problems(in: spec("job-1", memory: 512 * gib), datasets: datasets, nodes: []).isEmpty)
    }
}
