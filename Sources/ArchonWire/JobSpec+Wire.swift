internal import ArchonProto
internal import CProtobufC
public import ArchonModel

extension JobAssignment: WireMessage, CPackable {
    public static var protoMessageName: String { "archon.v1.JobAssignment" }

    public static func decode(_ bytes: some Collection<UInt8>) throws(WireError) -> JobAssignment {
        try unpacked(bytes)
    }

    public func encoded() -> [UInt8] { packed() }

    typealias CMessage = Archon__V1__JobAssignment
    static var cInit: (UnsafeMutablePointer<CMessage>?) -> Void { archon__v1__job_assignment__init }
    static var cGetPackedSize: (UnsafePointer<CMessage>?) -> Int { archon__v1__job_assignment__get_packed_size }
    static var cPack: (UnsafePointer<CMessage>?, UnsafeMutablePointer<UInt8>?) -> Int { archon__v1__job_assignment__pack }
    static var cUnpack: (UnsafeMutablePointer<ProtobufCAllocator>?, Int, UnsafePointer<UInt8>?) -> UnsafeMutablePointer<CMessage>? {
        archon__v1__job_assignment__unpack
    }
    static var cFreeUnpacked: (UnsafeMutablePointer<CMessage>?, UnsafeMutablePointer<ProtobufCAllocator>?) -> Void {
        archon__v1__job_assignment__free_unpacked
    }

    func fill(_ c: inout CMessage, in arena: CArena) {
        c.spec = arena.message(spec)
        c.attempt = UInt32(clamping: attempt)
        c.fencing_epoch = fencingEpoch
        c.desired_state = desiredState.wire
        c.node_id = arena.string(nodeID)
        c.resume_from = arena.string(resumeFrom)
        c.assigned_at_ms = assignedAtMs
        c.reason = arena.string(reason)
        c.fresh_start = freshStart ? 1 : 0
        c.stop_grace_seconds = UInt32(clamping: stopGraceSeconds)
        c.resume_sha256 = arena.string(resumeSHA256)
    }

    init(c: CMessage) throws(WireError) {
        let nodeID = try CRead.string(c.node_id, "JobAssignment.node_id")
        guard let spec = c.spec else {
            throw WireError(
                .missingField,
                "assignment for node '\(nodeID)', attempt \(c.attempt) has no spec; the writer of archon_desired must include the job spec"
            )
        }
        self.init(
            spec: try JobSpec(c: spec.pointee),
            attempt: CRead.int(c.attempt),
            fencingEpoch: c.fencing_epoch,
            desiredState: try DesiredState(wire: c.desired_state),
            nodeID: nodeID,
            resumeFrom: try CRead.string(c.resume_from, "JobAssignment.resume_from"),
            assignedAtMs: c.assigned_at_ms,
            reason: try CRead.string(c.reason, "JobAssignment.reason"),
            freshStart: c.fresh_start != 0,
            stopGraceSeconds: CRead.int(c.stop_grace_seconds),
            resumeSHA256: try CRead.string(c.resume_sha256, "JobAssignment.resume_sha256")
        )
    }
}

extension JobSpec: WireMessage, CPackable {
    public static var protoMessageName: String { "archon.v1.JobSpec" }

    public static func decode(_ bytes: some Collection<UInt8>) throws(WireError) -> JobSpec {
        try unpacked(bytes)
    }

    public func encoded() -> [UInt8] { packed() }

    typealias CMessage = Archon__V1__JobSpec
    static var cInit: (UnsafeMutablePointer<CMessage>?) -> Void { archon__v1__job_spec__init }
    static var cGetPackedSize: (UnsafePointer<CMessage>?) -> Int { archon__v1__job_spec__get_packed_size }
    static var cPack: (UnsafePointer<CMessage>?, UnsafeMutablePointer<UInt8>?) -> Int { archon__v1__job_spec__pack }
    static var cUnpack: (UnsafeMutablePointer<ProtobufCAllocator>?, Int, UnsafePointer<UInt8>?) -> UnsafeMutablePointer<CMessage>? {
        archon__v1__job_spec__unpack
    }
    static var cFreeUnpacked: (UnsafeMutablePointer<CMessage>?, UnsafeMutablePointer<ProtobufCAllocator>?) -> Void {
        archon__v1__job_spec__free_unpacked
    }

    func fill(_ c: inout CMessage, in arena: CArena) {
        c.job_id = arena.string(id)
        c.name = arena.string(name)
        c.team = arena.string(team)
        (c.n_command, c.command) = arena.strings(command)
        (c.n_env, c.env) = arena.map(env, archon__v1__job_spec__env_entry__init) { entry, key, value in
            entry.key = key
            entry.value = value
        }
        c.config = arena.message(config)
        (c.n_labels, c.labels) = arena.map(labels, archon__v1__job_spec__labels_entry__init) { entry, key, value in
            entry.key = key
            entry.value = value
        }
    }

    init(c: CMessage) throws(WireError) {
        self.init(
            id: try CRead.string(c.job_id, "JobSpec.job_id"),
            name: try CRead.string(c.name, "JobSpec.name"),
            team: try CRead.string(c.team, "JobSpec.team"),
            command: try CRead.strings(c.n_command, c.command, "JobSpec.command"),
            env: try CRead.map(c.n_env, c.env, "JobSpec.env") { ($0.key, $0.value) },
            config: try CRead.message(c.config, absent: TrainingConfig()),
            labels: try CRead.map(c.n_labels, c.labels, "JobSpec.labels") { ($0.key, $0.value) }
        )
    }
}

extension TrainingConfig: WireMessage, CPackable {
    public static var protoMessageName: String { "archon.v1.TrainingConfig" }

    public static func decode(_ bytes: some Collection<UInt8>) throws(WireError) -> TrainingConfig {
        try unpacked(bytes)
    }

    public func encoded() -> [UInt8] { packed() }

    typealias CMessage = Archon__V1__TrainingConfig
    static var cInit: (UnsafeMutablePointer<CMessage>?) -> Void { archon__v1__training_config__init }
    static var cGetPackedSize: (UnsafePointer<CMessage>?) -> Int { archon__v1__training_config__get_packed_size }
    static var cPack: (UnsafePointer<CMessage>?, UnsafeMutablePointer<UInt8>?) -> Int { archon__v1__training_config__pack }
    static var cUnpack: (UnsafeMutablePointer<ProtobufCAllocator>?, Int, UnsafePointer<UInt8>?) -> UnsafeMutablePointer<CMessage>? {
        archon__v1__training_config__unpack
    }
    static var cFreeUnpacked: (UnsafeMutablePointer<CMessage>?, UnsafeMutablePointer<ProtobufCAllocator>?) -> Void {
        archon__v1__training_config__free_unpacked
    }

    func fill(_ c: inout CMessage, in arena: CArena) {
        c.batch_size = UInt32(clamping: batchSize)
        c.gradient_accumulation_steps = UInt32(clamping: gradientAccumulationSteps)
        c.learning_rate = learningRate
        c.lr_schedule = arena.message(lrSchedule)
        c.gradient_clipping = arena.message(gradientClipping)
        c.mixed_precision = mixedPrecision ? 1 : 0
        c.epochs = UInt32(clamping: epochs)
        c.data_subset = dataSubset
        c.timeouts = arena.message(timeouts)
        c.checkpoint = arena.message(checkpoint)
        c.resources = arena.message(resources)
        c.dataset_id = arena.string(dataset)
        c.data_quality_check = dataQualityCheck ? 1 : 0
        (c.n_hyperparameters, c.hyperparameters) = arena.map(
            hyperparameters, archon__v1__training_config__hyperparameters_entry__init
        ) { entry, key, value in
            entry.key = key
            entry.value = value
        }
        c.seed = seed
    }

    init(c: CMessage) throws(WireError) {
        self.init(
            batchSize: CRead.int(c.batch_size),
            gradientAccumulationSteps: CRead.int(c.gradient_accumulation_steps),
            learningRate: c.learning_rate,
            lrSchedule: try CRead.message(c.lr_schedule, absent: LRSchedule.constant),
            gradientClipping: try CRead.message(c.gradient_clipping, absent: GradientClipping()),
            mixedPrecision: c.mixed_precision != 0,
            epochs: CRead.int(c.epochs),
            dataSubset: c.data_subset,
            timeouts: try CRead.message(c.timeouts, absent: Timeouts()),
            checkpoint: try CRead.message(c.checkpoint, absent: CheckpointPolicy()),
            resources: try CRead.message(c.resources, absent: Resources()),
            dataset: try CRead.string(c.dataset_id, "TrainingConfig.dataset_id"),
            dataQualityCheck: c.data_quality_check != 0,
            hyperparameters: try CRead.map(c.n_hyperparameters, c.hyperparameters, "TrainingConfig.hyperparameters") {
                ($0.key, $0.value)
            },
            seed: c.seed
        )
    }
}

extension LRSchedule: CMessageConvertible {
    typealias CMessage = Archon__V1__LRSchedule
    static var cInit: (UnsafeMutablePointer<CMessage>?) -> Void { archon__v1__lrschedule__init }

    func fill(_ c: inout CMessage, in arena: CArena) {
        c.kind = kind.wire
        c.decay_rate = decayRate
        c.decay_steps = UInt64(clamping: decaySteps)
    }

    init(c: CMessage) throws(WireError) {
        self.init(kind: Kind(wire: c.kind), decayRate: c.decay_rate, decaySteps: CRead.int(c.decay_steps))
    }
}

extension GradientClipping: CMessageConvertible {
    typealias CMessage = Archon__V1__GradientClipping
    static var cInit: (UnsafeMutablePointer<CMessage>?) -> Void { archon__v1__gradient_clipping__init }

    func fill(_ c: inout CMessage, in arena: CArena) {
        c.enabled = enabled ? 1 : 0
        c.max_norm = maxNorm
    }

    init(c: CMessage) throws(WireError) {
        self.init(enabled: c.enabled != 0, maxNorm: c.max_norm)
    }
}

extension Timeouts: CMessageConvertible {
    typealias CMessage = Archon__V1__Timeouts
    static var cInit: (UnsafeMutablePointer<CMessage>?) -> Void { archon__v1__timeouts__init }

    func fill(_ c: inout CMessage, in arena: CArena) {
        c.per_epoch_seconds = UInt64(clamping: perEpochSeconds)
        c.total_seconds = UInt64(clamping: totalSeconds)
        c.heartbeat_seconds = UInt64(clamping: heartbeatSeconds)
    }

    init(c: CMessage) throws(WireError) {
        self.init(
            perEpochSeconds: CRead.int(c.per_epoch_seconds),
            totalSeconds: CRead.int(c.total_seconds),
            heartbeatSeconds: CRead.int(c.heartbeat_seconds)
        )
    }
}

extension CheckpointPolicy: CMessageConvertible {
    typealias CMessage = Archon__V1__CheckpointPolicy
    static var cInit: (UnsafeMutablePointer<CMessage>?) -> Void { archon__v1__checkpoint_policy__init }

    func fill(_ c: inout CMessage, in arena: CArena) {
        c.every_epochs = UInt32(clamping: everyEpochs)
        c.every_steps = UInt64(clamping: everySteps)
        c.keep_last = UInt32(clamping: keepLast)
        c.stop_grace_seconds = UInt32(clamping: stopGraceSeconds)
        c.shared_root = arena.string(sharedRoot)
    }

    init(c: CMessage) throws(WireError) {
        self.init(
            everyEpochs: CRead.int(c.every_epochs),
            everySteps: CRead.int(c.every_steps),
            keepLast: CRead.int(c.keep_last),
            stopGraceSeconds: CRead.int(c.stop_grace_seconds),
            sharedRoot: try CRead.string(c.shared_root, "CheckpointPolicy.shared_root")
        )
    }
}

extension Resources: CMessageConvertible {
    typealias CMessage = Archon__V1__Resources
    static var cInit: (UnsafeMutablePointer<CMessage>?) -> Void { archon__v1__resources__init }

    func fill(_ c: inout CMessage, in arena: CArena) {
        c.memory_bytes = memoryBytes
        c.cpu_cores = cpuCores
        c.gpu_class = arena.string(gpuClass)
        c.gpu_count = UInt32(clamping: gpuCount)
        c.disk_bytes = diskBytes
    }

    init(c: CMessage) throws(WireError) {
        self.init(
            memoryBytes: c.memory_bytes,
            cpuCores: c.cpu_cores,
            gpuClass: try CRead.string(c.gpu_class, "Resources.gpu_class"),
            gpuCount: CRead.int(c.gpu_count),
            diskBytes: c.disk_bytes
        )
    }
}
