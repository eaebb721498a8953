import ArchonModel
import ArchonWire
import Testing

/// Values with a non-default value in every field, for every message the codec handles.
enum Fixtures {
    static let config = TrainingConfig(
        batchSize: 16,
        gradientAccumulationSteps: 4,
        learningRate: 1e-4,
        lrSchedule: LRSchedule(kind: .exponential, decayRate: 0.96, decaySteps: 1000),
        gradientClipping: GradientClipping(enabled: true, maxNorm: 1.0),
        mixedPrecision: true,
        epochs: 90,
        dataSubset: 0.5,
        timeouts: Timeouts(perEpochSeconds: 1800, totalSeconds: 14_400, heartbeatSeconds: 120),
        checkpoint: CheckpointPolicy(everyEpochs: 2, everySteps: 5000, keepLast: 5, stopGraceSeconds: 600, sharedRoot: "/mnt/team-vision"),
        resources: Resources(memoryBytes: 16 << 30, cpuCores: 7.5, gpuClass: "a100-40gb", gpuCount: 2, diskBytes: 100 << 30),
        dataset: "imagenet-subset-v3",
        dataQualityCheck: true,
        hyperparameters: ["hidden": "64", "dropout": "0.1", "optimizer": "adamw", "ünïcødé": "値"],
        seed: 1_234_567_890_123
    )

    static let spec = JobSpec(
        id: "resnet-7",
        name: "ResNet-50 on ImageNet subset",
        team: "vision",
        command: ["python3", "train.py", "--arch=resnet50", ""],
        env: ["PYTHONUNBUFFERED": "1", "NCCL_DEBUG": "WARN", "EMPTY": ""],
        config: config,
        labels: ["kind": "resnet50", "priority": "high"]
    )

    static let assignment = JobAssignment(
        spec: spec,
        attempt: 3,
        fencingEpoch: 77,
        desiredState: .stopped,
        nodeID: "gpu-node-3",
        resumeFrom: "/var/lib/archon/ckpt/resnet-7/epoch-0004.pt",
        assignedAtMs: 1_732_870_400_000,
        reason: "oom: batchSize 32 -> 16, gradientAccumulationSteps 2 -> 4",
        freshStart: true,
        stopGraceSeconds: 300,
        resumeSHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    )

    static let nodeStatus = NodeStatus(
        nodeID: "gpu-node-3",
        hostname: "gpu-node-3.eu-1.example.net",
        agentVersion: "0.1.0",
        capacity: NodeCapacity(
            cpuCores: 64,
            memoryBytes: 512 << 30,
            gpus: [
                GPU(index: 0, name: "NVIDIA H200", gpuClass: "h200-141gb", memoryBytes: 141 << 30),
                GPU(index: 1, name: "NVIDIA H200", gpuClass: "h200-141gb", memoryBytes: 141 << 30),
            ],
            diskBytes: 3_840_000_000_000
        ),
        usage: NodeUsage(
            memoryReservedBytes: 32 << 30,
            memoryUsedBytes: 28 << 30,
            cpuUtilization: 0.25,
            gpuMemoryUsedBytes: 36 << 30,
            gpuUtilization: 0.5,
            diskUsedBytes: 1 << 40,
            runningJobs: 2
        ),
        labels: ["zone": "eu-1", "rack": "r12", "owner": "ml-platform ☁"],
        enforcement: EnforcementCapabilities(memory: .cgroupV2, cpu: .cgroupV1, pids: .watchdog, note: "pids via polling"),
        startedAtMs: 1_732_859_990_000,
        runningJobs: ["resnet-7", "bert-2"],
        checkpointStorage: CheckpointStorage(root: "/mnt/checkpoints", shared: true)
    )

    static func event(_ sequence: UInt64, _ body: TrainingEvent.Body) -> TrainingEvent {
        TrainingEvent(jobID: "resnet-7", nodeID: "gpu-node-3", attempt: 2, sequence: sequence, timeMs: 1_732_870_000_000 + Int64(sequence), body: body)
    }

    /// One event per arm of `TrainingEvent.Body` (checked by `everyBodyArmHasAFixture`).
    static let events: [TrainingEvent] = [
        event(1, .accepted(JobAccepted(fencingEpoch: 42, resumeFrom: "/ckpt/epoch-0004.pt"))),
        event(2, .started(JobStarted(pid: 31337, resumeFrom: "/ckpt/epoch-0004.pt", memoryLimitBytes: 16 << 30, memoryEnforcement: .rlimit))),
        event(3, .epoch(EpochMetrics(
            epoch: 5, totalEpochs: 90, loss: 1.25, learningRate: 0.001, durationSeconds: 812.5, step: 6255,
            validation: Validation(loss: 1.5, accuracy: 0.6875)
        ))),
        event(4, .step(StepProgress(step: 6300, epoch: 6, loss: .infinity, learningRate: 0.001, samplesPerSecond: 1543.75))),
        event(5, .checkpoint(CheckpointWritten(
            path: "/ckpt/epoch-0005.pt", epoch: 5, step: 6255, sizeBytes: 102_760_448,
            sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            storage: CheckpointStorage(root: "/ckpt", shared: true)
        ))),
        event(6, .resources(ResourceSample(
            memoryUsedBytes: 14 << 30, memoryLimitBytes: 16 << 30, cpuCores: 3.5, gpuMemoryUsedBytes: 36 << 30,
            gpuMemoryTotalBytes: 40 << 30, gpuUtilization: 0.97, diskUsedBytes: 1 << 30, diskTotalBytes: 500 << 30
        ))),
        event(7, .exited(JobExited(
            exitCode: -1, signal: 9, oomKilled: true, failureClass: .outOfMemory,
            detail: "SIGKILL and oom_kill rose 0 -> 1",
            logTail: ["epoch 6 step 6300", "", "RuntimeError: CUDA out of memory 💥"],
            runtimeSeconds: 4875.25, epochsCompleted: 5, stopRequested: true
        ))),
        event(8, .heartbeat(Heartbeat(runningJobs: 3, secondsSinceProgress: 12.5))),
        TrainingEvent(jobID: "", nodeID: "gpu-node-3", attempt: 0, sequence: 9, timeMs: -5, body: .nodeStatus(nodeStatus)),
        TrainingEvent(jobID: "", nodeID: "gpu-node-3", attempt: 0, sequence: 10, timeMs: 7, body: .securityAlert(SecurityAlert(
            kind: .permissionViolation, detail: "Permissions Violation for Publish to \"archon.v1.events.n2.j\" ✋", subject: "archon.v1.events.n2.j"))),
    ]

    /// An epoch whose loss is NaN: compared field by field, since NaN != NaN.
    static let nanEpoch = event(10, .epoch(EpochMetrics(epoch: 7, totalEpochs: 90, loss: .nan, learningRate: 0.01, step: 7000)))

    static let incident = Incident(
        id: "inc-0042",
        dedupKey: "job:resnet-7",
        cause: .badDataset,
        level: .l2,
        severity: .critical,
        status: .resolved,
        subject: "Training Failure Escalation - resnet-7",
        nodes: ["gpu-node-3", "gpu-node-4"],
        jobs: ["resnet-7", "bert-2"],
        dataset: "imagenet-subset-v3",
        failureTimeMs: 1_732_870_364_000,
        openedAtMs: 1_732_870_365_000,
        acknowledgedAtMs: 1_732_870_900_000,
        resolvedAtMs: 1_732_880_000_000,
        symptoms: ["diverging loss (NaN) on attempt 1", "data corruption on attempt 2"],
        stepsTaken: [
            RemediationStep(
                timeMs: 1_732_868_000_000, jobID: "resnet-7", attempt: 1, failureClass: .divergingLoss,
                action: "restart with learning rate x0.1", configChange: "learningRate 0.001 -> 0.0001", outcome: "failed again: data corruption"
            ),
            RemediationStep(
                timeMs: 1_732_870_400_000, jobID: "resnet-7", attempt: 2, failureClass: .dataCorruption,
                action: "pause retries", configChange: "", outcome: ""
            ),
        ],
        currentStatus: "job paused; retries stopped",
        impact: "2 jobs delayed on 2 nodes",
        logTail: ["ValueError: corrupt record 1234", "Traceback (most recent call last):"],
        rootCause: "truncated shard 17 of imagenet-subset-v3",
        timeline: [TimelineEntry(timeMs: 1_732_870_365_000, text: "opened at L2"), TimelineEntry(timeMs: 1_732_880_000_000, text: "resolved by bob")],
        parentID: "inc-0040",
        acknowledgedBy: "alice",
        resolvedBy: "bob",
        respondByMs: 1_732_874_000_000
    )

    static let escalation = Escalation(kind: .acknowledged, incident: incident, timeMs: 1_732_870_900_000, reason: "acknowledged by alice")
    static let logRequest = LogRequest(jobID: "resnet-7", tail: 250)
    static let logReply = LogReply(lines: ["epoch 5 loss 1.25", "", "Traceback (most recent call last):"], error: "partial: log rotated")

    /// Every fixture as an encoded sample, for the hostile-input tests.
    static let samples: [Sample] =
        events.map { Sample($0, name: "TrainingEvent.\(armName($0.body))") } + [
            Sample(nanEpoch, name: "TrainingEvent.epoch(NaN)"),
            Sample(spec, name: "JobSpec"),
            Sample(config, name: "TrainingConfig"),
            Sample(assignment, name: "JobAssignment"),
            Sample(SignedAssignment(unsigned: assignment), name: "SignedAssignment"),
            Sample(nodeStatus, name: "NodeStatus"),
            Sample(logRequest, name: "LogRequest"),
            Sample(logReply, name: "LogReply"),
            Sample(incident, name: "Incident"),
            Sample(escalation, name: "Escalation"),
        ]

    /// The decoder of every top-level message.
    static let decoders: [(name: String, decode: @Sendable ([UInt8]) throws(WireError) -> Void)] = [
        (TrainingEvent.protoMessageName, { bytes throws(WireError) in _ = try TrainingEvent.decode(bytes) }),
        (JobSpec.protoMessageName, { bytes throws(WireError) in _ = try JobSpec.decode(bytes) }),
        (TrainingConfig.protoMessageName, { bytes throws(WireError) in _ = try TrainingConfig.decode(bytes) }),
        (JobAssignment.protoMessageName, { bytes throws(WireError) in _ = try JobAssignment.decode(bytes) }),
        (SignedAssignment.protoMessageName, { bytes throws(WireError) in _ = try SignedAssignment.decode(bytes) }),
        (NodeStatus.protoMessageName, { bytes throws(WireError) in _ = try NodeStatus.decode(bytes) }),
        (LogRequest.protoMessageName, { bytes throws(WireError) in _ = try LogRequest.decode(bytes) }),
        (LogReply.protoMessageName, { bytes throws(WireError) in _ = try LogReply.decode(bytes) }),
        (Incident.protoMessageName, { bytes throws(WireError) in _ = try Incident.decode(bytes) }),
        (Escalation.protoMessageName, { bytes throws(WireError) in _ = try Escalation.decode(bytes) }),
    ]

    static func armName(_ body: TrainingEvent.Body) -> String {
        switch body {
        case .accepted: "accepted"
        case .started: "started"
        case .epoch: "epoch"
        case .step: "step"
        case .checkpoint: "checkpoint"
        case .resources: "resources"
        case .exited: "exited"
        case .heartbeat: "heartbeat"
        case .nodeStatus: "nodeStatus"
        case .securityAlert: "securityAlert"
        }
    }
}

/// A fixture's encoding together with the decoder of its type.
struct Sample: Sendable, CustomTestStringConvertible {
    let name: String
    let protoMessageName: String
    let bytes: [UInt8]
    let decode: @Sendable ([UInt8]) throws(WireError) -> Void
    /// Decodes and encodes again: equal to `bytes` exactly when the value is the same.
    let reencode: @Sendable ([UInt8]) throws(WireError) -> [UInt8]

    init<Message: WireMessage>(_ value: Message, name: String) {
        self.name = name
        self.protoMessageName = Message.protoMessageName
        self.bytes = value.encoded()
        self.decode = { bytes throws(WireError) in _ = try Message.decode(bytes) }
        self.reencode = { bytes throws(WireError) in try Message.decode(bytes).encoded() }
    }

    var testDescription: String { name }
}
