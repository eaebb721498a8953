import ArchonModel
import ArchonWire
import Foundation
import Testing

/// Vectors produced by protoc from `Golden/*.txtpb` (see `scripts/gen-golden`), decoded by us.
@Suite struct GoldenVectorTests {
    static let directory = Bundle.module.url(forResource: "Golden", withExtension: nil)!

    static func bytes(_ file: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: directory.appendingPathComponent(file + ".bin")))
    }

    @Test(arguments: GoldenCase.all)
    func decodesToTheExpectedValue(_ golden: GoldenCase) throws {
        try golden.check(try Self.bytes(golden.file))
    }

    @Test func everyVectorHasAnExpectation() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.directory.path)
        let vectors = Set(files.filter { $0.hasSuffix(".bin") }.map { String($0.dropLast(4)) })
        let sources = Set(files.filter { $0.hasSuffix(".txtpb") }.map { String($0.dropLast(6)) })
        #expect(vectors == Set(GoldenCase.all.map(\.file)), "every Golden/*.bin needs a GoldenCase, and every case a file")
        #expect(vectors == sources, "every .bin comes from a .txtpb; run scripts/gen-golden")
    }

    /// The committed .bin is what protoc makes of the .txtpb today (as `scripts/gen-golden --check`).
    @Test(arguments: GoldenCase.all)
    func vectorIsCurrent(_ golden: GoldenCase) throws {
        let text = try String(contentsOf: Self.directory.appendingPathComponent(golden.file + ".txtpb"), encoding: .utf8)
        let header = text.split(separator: "\n").first { $0.hasPrefix("# proto-message:") }
        let message = try #require(header?.split(separator: " ").last.map(String.init))
        #expect(try Protoc.encode(text, as: message) == (try Self.bytes(golden.file)), "stale vector; run scripts/gen-golden")
    }
}

struct GoldenCase: Sendable, CustomTestStringConvertible {
    let file: String
    let check: @Sendable ([UInt8]) throws -> Void

    var testDescription: String { file }

    /// Decoding gives exactly `expected`, and our encoding of `expected` decodes to it too.
    static func expect<Message: WireMessage & Equatable>(_ file: String, _ expected: Message) -> GoldenCase {
        GoldenCase(file: file) { bytes in
            let decoded = try Message.decode(bytes)
            #expect(decoded == expected, "\(file)")
            #expect(try Message.decode(expected.encoded()) == expected, "\(file)")
        }
    }

    static func event(_ sequence: UInt64, _ timeMs: Int64, _ body: TrainingEvent.Body) -> TrainingEvent {
        TrainingEvent(jobID: "resnet-7", nodeID: "gpu-node-3", attempt: 2, sequence: sequence, timeMs: timeMs, body: body)
    }

    static let checkpointPath = "/var/lib/archon/ckpt/resnet-7/epoch-0004.pt"

    static let all: [GoldenCase] = [
        expect("event-accepted", event(1, 1_732_870_000_123, .accepted(JobAccepted(fencingEpoch: 42, resumeFrom: checkpointPath)))),
        expect("event-started", event(2, 1_732_870_000_456, .started(JobStarted(
            pid: 31337, resumeFrom: checkpointPath, memoryLimitBytes: 17_179_869_184, memoryEnforcement: .cgroupV1
        )))),
        expect("event-epoch", event(7, 1_732_870_360_000, .epoch(EpochMetrics(
            epoch: 5, totalEpochs: 90, loss: 1.25, learningRate: 0.001, durationSeconds: 812.5, step: 6255,
            validation: Validation(loss: 1.5, accuracy: 0.6875)
        )))),
        GoldenCase(file: "event-step") { bytes in
            // NaN != NaN: compare the NaN by kind and everything else by value.
            var decoded = try TrainingEvent.decode(bytes)
            guard case .step(var step) = decoded.body else {
                Issue.record("event-step decoded to \(decoded.body)")
                return
            }
            #expect(step.loss.isNaN)
            step.loss = 0
            decoded.body = .step(step)
            #expect(decoded == event(8, 1_732_870_361_000, .step(StepProgress(step: 6300, epoch: 6, loss: 0, learningRate: 0.001, samplesPerSecond: 1543.75))))
        },
        expect("event-checkpoint", event(9, 1_732_870_362_000, .checkpoint(CheckpointWritten(
            path: "/var/lib/archon/ckpt/resnet-7/epoch-0005.pt", epoch: 5, step: 6255, sizeBytes: 102_760_448,
            sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            storage: CheckpointStorage(root: "/var/lib/archon/ckpt", shared: false)
        )))),
        expect("event-resources", event(10, 1_732_870_363_000, .resources(ResourceSample(
            memoryUsedBytes: 15_032_385_536, memoryLimitBytes: 17_179_869_184, cpuCores: 3.5,
            gpuMemoryUsedBytes: 38_654_705_664, gpuMemoryTotalBytes: 42_949_672_960, gpuUtilization: 0.97,
            diskUsedBytes: 1_073_741_824, diskTotalBytes: 536_870_912_000
        )))),
        expect("event-exited", event(11, 1_732_870_364_000, .exited(JobExited(
            exitCode: -1, signal: 9, oomKilled: true, failureClass: .outOfMemory,
            detail: "SIGKILL and memory.oom_control oom_kill rose 0 -> 1",
            logTail: [
                "epoch 6 step 6300",
                "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB",
                "Speicher erschöpft — 内存不足",
            ],
            runtimeSeconds: 4875.25, epochsCompleted: 5, stopRequested: false
        )))),
        expect("event-heartbeat", TrainingEvent(
            jobID: "", nodeID: "gpu-node-3", attempt: 0, sequence: 1234, timeMs: 1_732_870_365_000,
            body: .heartbeat(Heartbeat(runningJobs: 3, secondsSinceProgress: 0))
        )),
        expect("event-security-alert", TrainingEvent(
            jobID: "", nodeID: "gpu-node-3", attempt: 0, sequence: 77, timeMs: 1_732_870_366_000,
            body: .securityAlert(SecurityAlert(
                kind: .assignmentRejected, detail: "the signature does not verify against this agent's assignment public key",
                subject: "gpu-node-3.resnet50-a"))
        )),
        expect("signed-assignment", SignedAssignment(assignment: [0x0a, 0x02, 0x0a, 0x00, 0x10, 0x01], signature: [1, 2, 3, 0xff])),
        expect("event-node-status", TrainingEvent(
            jobID: "", nodeID: "gpu-node-3", attempt: 0, sequence: 1, timeMs: 1_732_860_000_000,
            body: .nodeStatus(NodeStatus(
                nodeID: "gpu-node-3",
                hostname: "gpu-node-3.eu-1.example.net",
                agentVersion: "0.1.0",
                capacity: NodeCapacity(
                    cpuCores: 64,
                    memoryBytes: 549_755_813_888,
                    gpus: [
                        GPU(index: 0, name: "NVIDIA A100-SXM4-40GB", gpuClass: "a100-40gb", memoryBytes: 42_949_672_960),
                        GPU(index: 1, name: "NVIDIA A100-SXM4-40GB", gpuClass: "a100-40gb", memoryBytes: 42_949_672_960),
                    ],
                    diskBytes: 3_840_000_000_000
                ),
                usage: NodeUsage(
                    memoryReservedBytes: 34_359_738_368, memoryUsedBytes: 30_064_771_072, cpuUtilization: 0.25,
                    gpuMemoryUsedBytes: 38_654_705_664, gpuUtilization: 0.5, diskUsedBytes: 1_099_511_627_776, runningJobs: 2
                ),
                labels: ["zone": "eu-1", "rack": "r12"],
                enforcement: EnforcementCapabilities(memory: .cgroupV1, cpu: .cgroupV1, pids: .none, note: "pids controller not mounted"),
                startedAtMs: 1_732_859_990_000,
                runningJobs: ["resnet-7", "bert-2"],
                checkpointStorage: CheckpointStorage(root: "/mnt/checkpoints", shared: true)
            ))
        )),
        expect("node-status", NodeStatus(
            nodeID: "cpu-node-1",
            hostname: "cpu-node-1",
            agentVersion: "0.2.0-dev",
            capacity: NodeCapacity(cpuCores: 2, memoryBytes: 8_589_934_592, gpus: [], diskBytes: 68_719_476_736),
            usage: NodeUsage(memoryUsedBytes: 1_073_741_824, cpuUtilization: 0.125),
            labels: ["zone": "eu-2", "tier": "cpu", "owner": "ml-platform ☁"],
            enforcement: EnforcementCapabilities(memory: .watchdog, cpu: .none, pids: .rlimit, note: "no writable cgroup; memory enforced by polling"),
            startedAtMs: 1_732_800_000_000,
            runningJobs: []
        )),
        expect("job-assignment", JobAssignment(
            spec: JobSpec(
                id: "resnet-7",
                name: "ResNet-50 on ImageNet subset",
                team: "vision",
                command: ["python3", "train.py", "--arch=resnet50"],
                env: ["PYTHONUNBUFFERED": "1", "NCCL_DEBUG": "WARN"],
                config: TrainingConfig(
                    batchSize: 16,
                    gradientAccumulationSteps: 4,
                    learningRate: 0.0001,
                    lrSchedule: LRSchedule(kind: .exponential, decayRate: 0.96, decaySteps: 1000),
                    gradientClipping: GradientClipping(enabled: true, maxNorm: 1),
                    mixedPrecision: true,
                    epochs: 90,
                    dataSubset: 0.5,
                    timeouts: Timeouts(perEpochSeconds: 1800, totalSeconds: 14_400, heartbeatSeconds: 120),
                    checkpoint: CheckpointPolicy(everyEpochs: 2, everySteps: 5000, keepLast: 5),
                    resources: Resources(memoryBytes: 17_179_869_184, cpuCores: 7.5, gpuClass: "a100-40gb", gpuCount: 2, diskBytes: 107_374_182_400),
                    dataset: "imagenet-subset-v3",
                    dataQualityCheck: true,
                    hyperparameters: ["hidden": "64", "dropout": "0.1"],
                    seed: 1_234_567_890_123
                ),
                labels: ["kind": "resnet50", "priority": "high"]
            ),
            attempt: 3,
            fencingEpoch: 77,
            desiredState: .running,
            nodeID: "gpu-node-3",
            resumeFrom: checkpointPath,
            assignedAtMs: 1_732_870_400_000,
            reason: "oom: batchSize 32 -> 16, gradientAccumulationSteps 2 -> 4",
            freshStart: true,
            resumeSHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
        )),
        // No config on the wire: the model's defaults, as in the JSON form.
        expect("job-spec-minimal", JobSpec(id: "mnist-1", command: ["python3", "mnist.py"], config: TrainingConfig())),
        // Present config: fields not on the wire are zero; absent sub-messages are model defaults.
        expect("training-config", TrainingConfig(
            batchSize: 128, gradientAccumulationSteps: 1, learningRate: 0.1,
            lrSchedule: LRSchedule(kind: .cosine, decayRate: 0, decaySteps: 0),
            gradientClipping: GradientClipping(), mixedPrecision: false, epochs: 10, dataSubset: 0,
            timeouts: Timeouts(), checkpoint: CheckpointPolicy(everyEpochs: 1, everySteps: 0, keepLast: 3),
            resources: Resources(), dataset: "digits-v1", dataQualityCheck: false, hyperparameters: [:], seed: 0
        )),
        expect("incident", Incident(
            id: "inc-0042",
            dedupKey: "job:resnet-7",
            cause: .job,
            level: .l1,
            severity: .high,
            status: .acknowledged,
            subject: "Training Failure Escalation - resnet-7",
            nodes: ["gpu-node-3"],
            jobs: ["resnet-7"],
            dataset: "imagenet-subset-v3",
            failureTimeMs: 1_732_870_364_000,
            openedAtMs: 1_732_870_365_000,
            acknowledgedAtMs: 1_732_870_900_000,
            resolvedAtMs: 0,
            symptoms: ["out of memory (OOM kill) on attempt 1", "out of memory (OOM kill) on attempt 2"],
            stepsTaken: [
                RemediationStep(
                    timeMs: 1_732_868_000_000, jobID: "resnet-7", attempt: 1, failureClass: .outOfMemory,
                    action: "restart with batch size halved",
                    configChange: "batchSize 64 -> 32, gradientAccumulationSteps 1 -> 2",
                    outcome: "failed again: out of memory"
                ),
                RemediationStep(
                    timeMs: 1_732_870_400_000, jobID: "resnet-7", attempt: 2, failureClass: .outOfMemory,
                    action: "restart with batch size halved",
                    configChange: "batchSize 32 -> 16, gradientAccumulationSteps 2 -> 4",
                    outcome: ""
                ),
            ],
            currentStatus: "attempt 3 running",
            impact: "1 job delayed by 40 min",
            logTail: ["RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB"],
            rootCause: "",
            timeline: [
                TimelineEntry(timeMs: 1_732_870_365_000, text: "opened at L1"),
                TimelineEntry(timeMs: 1_732_870_900_000, text: "acknowledged by alice"),
            ],
            parentID: "",
            acknowledgedBy: "alice",
            resolvedBy: "",
            respondByMs: 1_732_871_265_000
        )),
        expect("escalation", Escalation(
            kind: .escalated,
            incident: Incident(
                id: "inc-0043",
                dedupKey: "bad_node:gpu-node-3",
                cause: .badNode,
                level: .l4,
                severity: .critical,
                status: .open,
                subject: "Training Failure Escalation - gpu-node-3",
                nodes: ["gpu-node-3"],
                jobs: ["resnet-7", "bert-2", "gpt-s-1"],
                openedAtMs: 1_732_870_000_000,
                rootCause: "ECC errors on GPU 1",
                respondByMs: 1_732_884_400_000
            ),
            timeMs: 1_732_877_200_000,
            reason: "not acknowledged within 2 h at L3"
        )),
        expect("log-request", LogRequest(jobID: "resnet-7", tail: 100)),
        expect("log-reply", LogReply(lines: ["epoch 5 loss 1.25", "", "Traceback (most recent call last):"], error: "")),
        expect("log-reply-error", LogReply(lines: [], error: "no job 'resnet-9' on node 'gpu-node-3'; running: resnet-7, bert-2")),
    ]
}
