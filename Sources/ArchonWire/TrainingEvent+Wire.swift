internal import ArchonProto
internal import CProtobufC
public import ArchonModel

extension TrainingEvent: WireMessage, CPackable {
    public static var protoMessageName: String { "archon.v1.TrainingEvent" }

    public static func decode(_ bytes: some Collection<UInt8>) throws(WireError) -> TrainingEvent {
        try unpacked(bytes)
    }

    public func encoded() -> [UInt8] { packed() }

    typealias CMessage = Archon__V1__TrainingEvent
    static var cInit: (UnsafeMutablePointer<CMessage>?) -> Void { archon__v1__training_event__init }
    static var cGetPackedSize: (UnsafePointer<CMessage>?) -> Int { archon__v1__training_event__get_packed_size }
    static var cPack: (UnsafePointer<CMessage>?, UnsafeMutablePointer<UInt8>?) -> Int { archon__v1__training_event__pack }
    static var cUnpack: (UnsafeMutablePointer<ProtobufCAllocator>?, Int, UnsafePointer<UInt8>?) -> UnsafeMutablePointer<CMessage>? {
        archon__v1__training_event__unpack
    }
    static var cFreeUnpacked: (UnsafeMutablePointer<CMessage>?, UnsafeMutablePointer<ProtobufCAllocator>?) -> Void {
        archon__v1__training_event__free_unpacked
    }

    func fill(_ c: inout CMessage, in arena: CArena) {
        c.job_id = arena.string(jobID)
        c.node_id = arena.string(nodeID)
        c.attempt = UInt32(clamping: attempt)
        c.sequence = sequence
        c.time_ms = timeMs
        switch body {
        case .accepted(let accepted):
            c.body_case = ARCHON__V1__TRAINING_EVENT__BODY_ACCEPTED
            c.accepted = arena.message(accepted)
        case .started(let started):
            c.body_case = ARCHON__V1__TRAINING_EVENT__BODY_STARTED
            c.started = arena.message(started)
        case .epoch(let epoch):
            c.body_case = ARCHON__V1__TRAINING_EVENT__BODY_EPOCH
            c.epoch = arena.message(epoch)
        case .step(let step):
            c.body_case = ARCHON__V1__TRAINING_EVENT__BODY_STEP
            c.step = arena.message(step)
        case .checkpoint(let checkpoint):
            c.body_case = ARCHON__V1__TRAINING_EVENT__BODY_CHECKPOINT
            c.checkpoint = arena.message(checkpoint)
        case .resources(let resources):
            c.body_case = ARCHON__V1__TRAINING_EVENT__BODY_RESOURCES
            c.resources = arena.message(resources)
        case .exited(let exited):
            c.body_case = ARCHON__V1__TRAINING_EVENT__BODY_EXITED
            c.exited = arena.message(exited)
        case .heartbeat(let heartbeat):
            c.body_case = ARCHON__V1__TRAINING_EVENT__BODY_HEARTBEAT
            c.heartbeat = arena.message(heartbeat)
        case .nodeStatus(let nodeStatus):
            c.body_case = ARCHON__V1__TRAINING_EVENT__BODY_NODE_STATUS
            c.node_status = arena.message(nodeStatus)
        case .securityAlert(let alert):
            c.body_case = ARCHON__V1__TRAINING_EVENT__BODY_SECURITY_ALERT
            c.security_alert = arena.message(alert)
        }
    }

    init(c: CMessage) throws(WireError) {
        let jobID = try CRead.string(c.job_id, "TrainingEvent.job_id")
        let nodeID = try CRead.string(c.node_id, "TrainingEvent.node_id")
        let body: Body
        switch c.body_case {
        case ARCHON__V1__TRAINING_EVENT__BODY_ACCEPTED:
            body = .accepted(try Self.arm(c.accepted, "accepted"))
        case ARCHON__V1__TRAINING_EVENT__BODY_STARTED:
            body = .started(try Self.arm(c.started, "started"))
        case ARCHON__V1__TRAINING_EVENT__BODY_EPOCH:
            body = .epoch(try Self.arm(c.epoch, "epoch"))
        case ARCHON__V1__TRAINING_EVENT__BODY_STEP:
            body = .step(try Self.arm(c.step, "step"))
        case ARCHON__V1__TRAINING_EVENT__BODY_CHECKPOINT:
            body = .checkpoint(try Self.arm(c.checkpoint, "checkpoint"))
        case ARCHON__V1__TRAINING_EVENT__BODY_RESOURCES:
            body = .resources(try Self.arm(c.resources, "resources"))
        case ARCHON__V1__TRAINING_EVENT__BODY_EXITED:
            body = .exited(try Self.arm(c.exited, "exited"))
        case ARCHON__V1__TRAINING_EVENT__BODY_HEARTBEAT:
            body = .heartbeat(try Self.arm(c.heartbeat, "heartbeat"))
        case ARCHON__V1__TRAINING_EVENT__BODY_NODE_STATUS:
            body = .nodeStatus(try Self.arm(c.node_status, "node_status"))
        case ARCHON__V1__TRAINING_EVENT__BODY_SECURITY_ALERT:
            body = .securityAlert(try Self.arm(c.security_alert, "security_alert"))
        default:
            throw WireError(
                .missingBody,
                "event from node '\(nodeID)', job '\(jobID)', attempt \(c.attempt), sequence \(c.sequence) has no body; "
                    + "the publisher sent none or uses a newer schema with a body this build does not know"
            )
        }
        self.init(
            jobID: jobID,
            nodeID: nodeID,
            attempt: CRead.int(c.attempt),
            sequence: c.sequence,
            timeMs: c.time_ms,
            body: body
        )
    }

    /// The message of the oneof arm that is set; protobuf-c always allocates it, NULL is tolerated as malformed.
    private static func arm<Value: CMessageConvertible>(
        _ pointer: UnsafeMutablePointer<Value.CMessage>?,
        _ name: String
    ) throws(WireError) -> Value {
        guard let pointer else { throw WireError(.malformed, "body \(name) is set but holds no message") }
        return try Value(c: pointer.pointee)
    }
}

extension JobAccepted: CMessageConvertible {
    typealias CMessage = Archon__V1__JobAccepted
    static var cInit: (UnsafeMutablePointer<CMessage>?) -> Void { archon__v1__job_accepted__init }

    func fill(_ c: inout CMessage, in arena: CArena) {
        c.fencing_epoch = fencingEpoch
        c.resume_from = arena.string(resumeFrom)
    }

    init(c: CMessage) throws(WireError) {
        self.init(fencingEpoch: c.fencing_epoch, resumeFrom: try CRead.string(c.resume_from, "JobAccepted.resume_from"))
    }
}

extension JobStarted: CMessageConvertible {
    typealias CMessage = Archon__V1__JobStarted
    static var cInit: (UnsafeMutablePointer<CMessage>?) -> Void { archon__v1__job_started__init }

    func fill(_ c: inout CMessage, in arena: CArena) {
        c.pid = pid
        c.resume_from = arena.string(resumeFrom)
        c.memory_limit_bytes = memoryLimitBytes
        c.memory_enforcement = memoryEnforcement.wire
    }

    init(c: CMessage) throws(WireError) {
        self.init(
            pid: c.pid,
            resumeFrom: try CRead.string(c.resume_from, "JobStarted.resume_from"),
            memoryLimitBytes: c.memory_limit_bytes,
            memoryEnforcement: Enforcement(wire: c.memory_enforcement)
        )
    }
}

extension Validation: CMessageConvertible {
    typealias CMessage = Archon__V1__Validation
    static var cInit: (UnsafeMutablePointer<CMessage>?) -> Void { archon__v1__validation__init }

    func fill(_ c: inout CMessage, in arena: CArena) {
        c.loss = loss
        c.accuracy = accuracy
    }

    init(c: CMessage) throws(WireError) {
        self.init(loss: c.loss, accuracy: c.accuracy)
    }
}

extension EpochMetrics: CMessageConvertible {
    typealias CMessage = Archon__V1__EpochMetrics
    static var cInit: (UnsafeMutablePointer<CMessage>?) -> Void { archon__v1__epoch_metrics__init }

    func fill(_ c: inout CMessage, in arena: CArena) {
        c.epoch = UInt32(clamping: epoch)
        c.total_epochs = UInt32(clamping: totalEpochs)
        c.loss = loss
        c.learning_rate = learningRate
        c.duration_seconds = durationSeconds
        c.step = UInt64(clamping: step)
        c.validation = validation.map { arena.message($0) }
    }

    init(c: CMessage) throws(WireError) {
        self.init(
            epoch: CRead.int(c.epoch),
            totalEpochs: CRead.int(c.total_epochs),
            loss: c.loss,
            learningRate: c.learning_rate,
            durationSeconds: c.duration_seconds,
            step: CRead.int(c.step),
            validation: try c.validation.map { pointer throws(WireError) in try Validation(c: pointer.pointee) }
        )
    }
}

extension StepProgress: CMessageConvertible {
    typealias CMessage = Archon__V1__StepProgress
    static var cInit: (UnsafeMutablePointer<CMessage>?) -> Void { archon__v1__step_progress__init }

    func fill(_ c: inout CMessage, in arena: CArena) {
        c.step = UInt64(clamping: step)
        c.epoch = UInt32(clamping: epoch)
        c.loss = loss
        c.learning_rate = learningRate
        c.samples_per_second = samplesPerSecond
    }

    init(c: CMessage) throws(WireError) {
        self.init(
            step: CRead.int(c.step),
            epoch: CRead.int(c.epoch),
            loss: c.loss,
            learningRate: c.learning_rate,
            samplesPerSecond: c.samples_per_second
        )
    }
}

extension CheckpointWritten: CMessageConvertible {
    typealias CMessage = Archon__V1__CheckpointWritten
    static var cInit: (UnsafeMutablePointer<CMessage>?) -> Void { archon__v1__checkpoint_written__init }

    func fill(_ c: inout CMessage, in arena: CArena) {
        c.path = arena.string(path)
        c.epoch = UInt32(clamping: epoch)
        c.step = UInt64(clamping: step)
        c.size_bytes = sizeBytes
        c.sha256 = arena.string(sha256)
        c.storage = storage.map { arena.message($0) }
    }

    init(c: CMessage) throws(WireError) {
        self.init(
            path: try CRead.string(c.path, "CheckpointWritten.path"),
            epoch: CRead.int(c.epoch),
            step: CRead.int(c.step),
            sizeBytes: c.size_bytes,
            sha256: try CRead.string(c.sha256, "CheckpointWritten.sha256"),
            storage: try c.storage.map { (pointer) throws(WireError) in try CheckpointStorage(c: pointer.pointee) }
        )
    }
}

extension ResourceSample: CMessageConvertible {
    typealias CMessage = Archon__V1__ResourceSample
    static var cInit: (UnsafeMutablePointer<CMessage>?) -> Void { archon__v1__resource_sample__init }

    func fill(_ c: inout CMessage, in arena: CArena) {
        c.memory_used_bytes = memoryUsedBytes
        c.memory_limit_bytes = memoryLimitBytes
        c.cpu_cores = cpuCores
        c.gpu_memory_used_bytes = gpuMemoryUsedBytes
        c.gpu_memory_total_bytes = gpuMemoryTotalBytes
        c.gpu_utilization = gpuUtilization
        c.disk_used_bytes = diskUsedBytes
        c.disk_total_bytes = diskTotalBytes
    }

    init(c: CMessage) throws(WireError) {
        self.init(
            memoryUsedBytes: c.memory_used_bytes,
            memoryLimitBytes: c.memory_limit_bytes,
            cpuCores: c.cpu_cores,
            gpuMemoryUsedBytes: c.gpu_memory_used_bytes,
            gpuMemoryTotalBytes: c.gpu_memory_total_bytes,
            gpuUtilization: c.gpu_utilization,
            diskUsedBytes: c.disk_used_bytes,
            diskTotalBytes: c.disk_total_bytes
        )
    }
}

extension JobExited: CMessageConvertible {
    typealias CMessage = Archon__V1__JobExited
    static var cInit: (UnsafeMutablePointer<CMessage>?) -> Void { archon__v1__job_exited__init }

    func fill(_ c: inout CMessage, in arena: CArena) {
        c.exit_code = exitCode
        c.signal = signal
        c.oom_killed = oomKilled ? 1 : 0
        c.failure_class = failureClass.wire
        c.detail = arena.string(detail)
        (c.n_log_tail, c.log_tail) = arena.strings(logTail)
        c.runtime_seconds = runtimeSeconds
        c.epochs_completed = UInt32(clamping: epochsCompleted)
        c.stop_requested = stopRequested ? 1 : 0
    }

    init(c: CMessage) throws(WireError) {
        self.init(
            exitCode: c.exit_code,
            signal: c.signal,
            oomKilled: c.oom_killed != 0,
            failureClass: FailureClass(wire: c.failure_class),
            detail: try CRead.string(c.detail, "JobExited.detail"),
            logTail: try CRead.strings(c.n_log_tail, c.log_tail, "JobExited.log_tail"),
            runtimeSeconds: c.runtime_seconds,
            epochsCompleted: CRead.int(c.epochs_completed),
            stopRequested: c.stop_requested != 0
        )
    }
}

extension Heartbeat: CMessageConvertible {
    typealias CMessage = Archon__V1__Heartbeat
    static var cInit: (UnsafeMutablePointer<CMessage>?) -> Void { archon__v1__heartbeat__init }

    func fill(_ c: inout CMessage, in arena: CArena) {
        c.running_jobs = UInt32(clamping: runningJobs)
        c.seconds_since_progress = secondsSinceProgress
    }

    init(c: CMessage) throws(WireError) {
        self.init(runningJobs: CRead.int(c.running_jobs), secondsSinceProgress: c.seconds_since_progress)
    }
}

extension SecurityAlert: CMessageConvertible {
    typealias CMessage = Archon__V1__SecurityAlert
    static var cInit: (UnsafeMutablePointer<CMessage>?) -> Void { archon__v1__security_alert__init }

    func fill(_ c: inout CMessage, in arena: CArena) {
        c.kind = kind.wire
        c.detail = arena.string(detail)
        c.subject = arena.string(subject)
    }

    init(c: CMessage) throws(WireError) {
        self.init(
            kind: Kind(wire: c.kind),
            detail: try CRead.string(c.detail, "SecurityAlert.detail"),
            subject: try CRead.string(c.subject, "SecurityAlert.subject"))
    }
}

extension SecurityAlert.Kind {
    var wire: Archon__V1__SecurityAlert__Kind {
        switch self {
        case .unspecified: ARCHON__V1__SECURITY_ALERT__KIND__KIND_UNSPECIFIED
        case .assignmentRejected: ARCHON__V1__SECURITY_ALERT__KIND__KIND_ASSIGNMENT_REJECTED
        case .permissionViolation: ARCHON__V1__SECURITY_ALERT__KIND__KIND_PERMISSION_VIOLATION
        }
    }

    /// A kind this build does not know is `.unspecified`: the alert still opens the node's security incident.
    init(wire: Archon__V1__SecurityAlert__Kind) {
        switch wire {
        case ARCHON__V1__SECURITY_ALERT__KIND__KIND_ASSIGNMENT_REJECTED: self = .assignmentRejected
        case ARCHON__V1__SECURITY_ALERT__KIND__KIND_PERMISSION_VIOLATION: self = .permissionViolation
        default: self = .unspecified
        }
    }
}

extension LogRequest: WireMessage, CPackable {
    public static var protoMessageName: String { "archon.v1.LogRequest" }

    public static func decode(_ bytes: some Collection<UInt8>) throws(WireError) -> LogRequest {
        try unpacked(bytes)
    }

    public func encoded() -> [UInt8] { packed() }

    typealias CMessage = Archon__V1__LogRequest
    static var cInit: (UnsafeMutablePointer<CMessage>?) -> Void { archon__v1__log_request__init }
    static var cGetPackedSize: (UnsafePointer<CMessage>?) -> Int { archon__v1__log_request__get_packed_size }
    static var cPack: (UnsafePointer<CMessage>?, UnsafeMutablePointer<UInt8>?) -> Int { archon__v1__log_request__pack }
    static var cUnpack: (UnsafeMutablePointer<ProtobufCAllocator>?, Int, UnsafePointer<UInt8>?) -> UnsafeMutablePointer<CMessage>? {
        archon__v1__log_request__unpack
    }
    static var cFreeUnpacked: (UnsafeMutablePointer<CMessage>?, UnsafeMutablePointer<ProtobufCAllocator>?) -> Void {
        archon__v1__log_request__free_unpacked
    }

    func fill(_ c: inout CMessage, in arena: CArena) {
        c.job_id = arena.string(jobID)
        c.tail = UInt32(clamping: tail)
    }

    init(c: CMessage) throws(WireError) {
        self.init(jobID: try CRead.string(c.job_id, "LogRequest.job_id"), tail: CRead.int(c.tail))
    }
}

extension LogReply: WireMessage, CPackable {
    public static var protoMessageName: String { "archon.v1.LogReply" }

    public static func decode(_ bytes: some Collection<UInt8>) throws(WireError) -> LogReply {
        try unpacked(bytes)
    }

    public func encoded() -> [UInt8] { packed() }

    typealias CMessage = Archon__V1__LogReply
    static var cInit: (UnsafeMutablePointer<CMessage>?) -> Void { archon__v1__log_reply__init }
    static var cGetPackedSize: (UnsafePointer<CMessage>?) -> Int { archon__v1__log_reply__get_packed_size }
    static var cPack: (UnsafePointer<CMessage>?, UnsafeMutablePointer<UInt8>?) -> Int { archon__v1__log_reply__pack }
    static var cUnpack: (UnsafeMutablePointer<ProtobufCAllocator>?, Int, UnsafePointer<UInt8>?) -> UnsafeMutablePointer<CMessage>? {
        archon__v1__log_reply__unpack
    }
    static var cFreeUnpacked: (UnsafeMutablePointer<CMessage>?, UnsafeMutablePointer<ProtobufCAllocator>?) -> Void {
        archon__v1__log_reply__free_unpacked
    }

    func fill(_ c: inout CMessage, in arena: CArena) {
        (c.n_lines, c.lines) = arena.strings(lines)
        c.error = arena.string(error)
    }

    init(c: CMessage) throws(WireError) {
        self.init(
            lines: try CRead.strings(c.n_lines, c.lines, "LogReply.lines"),
            error: try CRead.string(c.error, "LogReply.error")
        )
    }
}
