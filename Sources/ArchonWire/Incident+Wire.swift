internal import ArchonProto
internal import CProtobufC
public import ArchonModel

extension Escalation: WireMessage, CPackable {
    public static var protoMessageName: String { "archon.v1.Escalation" }

    public static func decode(_ bytes: some Collection<UInt8>) throws(WireError) -> Escalation {
        try unpacked(bytes)
    }

    public func encoded() -> [UInt8] { packed() }

    typealias CMessage = Archon__V1__Escalation
    static var cInit: (UnsafeMutablePointer<CMessage>?) -> Void { archon__v1__escalation__init }
    static var cGetPackedSize: (UnsafePointer<CMessage>?) -> Int { archon__v1__escalation__get_packed_size }
    static var cPack: (UnsafePointer<CMessage>?, UnsafeMutablePointer<UInt8>?) -> Int { archon__v1__escalation__pack }
    static var cUnpack: (UnsafeMutablePointer<ProtobufCAllocator>?, Int, UnsafePointer<UInt8>?) -> UnsafeMutablePointer<CMessage>? {
        archon__v1__escalation__unpack
    }
    static var cFreeUnpacked: (UnsafeMutablePointer<CMessage>?, UnsafeMutablePointer<ProtobufCAllocator>?) -> Void {
        archon__v1__escalation__free_unpacked
    }

    func fill(_ c: inout CMessage, in arena: CArena) {
        c.kind = kind.wire
        c.incident = arena.message(incident)
        c.time_ms = timeMs
        c.reason = arena.string(reason)
    }

    init(c: CMessage) throws(WireError) {
        guard let incident = c.incident else {
            throw WireError(
                .missingField,
                "escalation at time_ms \(c.time_ms) has no incident; the publisher must include the incident it is about"
            )
        }
        self.init(
            kind: try Kind(wire: c.kind),
            incident: try Incident(c: incident.pointee),
            timeMs: c.time_ms,
            reason: try CRead.string(c.reason, "Escalation.reason")
        )
    }
}

extension Incident: WireMessage, CPackable {
    public static var protoMessageName: String { "archon.v1.Incident" }

    public static func decode(_ bytes: some Collection<UInt8>) throws(WireError) -> Incident {
        try unpacked(bytes)
    }

    public func encoded() -> [UInt8] { packed() }

    typealias CMessage = Archon__V1__Incident
    static var cInit: (UnsafeMutablePointer<CMessage>?) -> Void { archon__v1__incident__init }
    static var cGetPackedSize: (UnsafePointer<CMessage>?) -> Int { archon__v1__incident__get_packed_size }
    static var cPack: (UnsafePointer<CMessage>?, UnsafeMutablePointer<UInt8>?) -> Int { archon__v1__incident__pack }
    static var cUnpack: (UnsafeMutablePointer<ProtobufCAllocator>?, Int, UnsafePointer<UInt8>?) -> UnsafeMutablePointer<CMessage>? {
        archon__v1__incident__unpack
    }
    static var cFreeUnpacked: (UnsafeMutablePointer<CMessage>?, UnsafeMutablePointer<ProtobufCAllocator>?) -> Void {
        archon__v1__incident__free_unpacked
    }

    func fill(_ c: inout CMessage, in arena: CArena) {
        c.id = arena.string(id)
        c.dedup_key = arena.string(dedupKey)
        c.cause = cause.wire
        c.level = level.wire
        c.severity = severity.wire
        c.status = status.wire
        c.subject = arena.string(subject)
        (c.n_nodes, c.nodes) = arena.strings(nodes)
        (c.n_jobs, c.jobs) = arena.strings(jobs)
        c.dataset_id = arena.string(dataset)
        c.failure_time_ms = failureTimeMs
        c.opened_at_ms = openedAtMs
        c.acknowledged_at_ms = acknowledgedAtMs
        c.resolved_at_ms = resolvedAtMs
        (c.n_symptoms, c.symptoms) = arena.strings(symptoms)
        (c.n_steps_taken, c.steps_taken) = arena.messages(stepsTaken)
        c.current_status = arena.string(currentStatus)
        c.impact = arena.string(impact)
        (c.n_log_tail, c.log_tail) = arena.strings(logTail)
        c.root_cause = arena.string(rootCause)
        (c.n_timeline, c.timeline) = arena.messages(timeline)
        c.parent_id = arena.string(parentID)
        c.acknowledged_by = arena.string(acknowledgedBy)
        c.resolved_by = arena.string(resolvedBy)
        c.respond_by_ms = respondByMs
    }

    init(c: CMessage) throws(WireError) {
        let id = try CRead.string(c.id, "Incident.id")
        do {
            self.init(
                id: id,
                dedupKey: try CRead.string(c.dedup_key, "Incident.dedup_key"),
                cause: try IncidentCause(wire: c.cause),
                level: try EscalationLevel(wire: c.level),
                severity: try Severity(wire: c.severity),
                status: try IncidentStatus(wire: c.status),
                subject: try CRead.string(c.subject, "Incident.subject"),
                nodes: try CRead.strings(c.n_nodes, c.nodes, "Incident.nodes"),
                jobs: try CRead.strings(c.n_jobs, c.jobs, "Incident.jobs"),
                dataset: try CRead.string(c.dataset_id, "Incident.dataset_id"),
                failureTimeMs: c.failure_time_ms,
                openedAtMs: c.opened_at_ms,
                acknowledgedAtMs: c.acknowledged_at_ms,
                resolvedAtMs: c.resolved_at_ms,
                symptoms: try CRead.strings(c.n_symptoms, c.symptoms, "Incident.symptoms"),
                stepsTaken: try CRead.messages(c.n_steps_taken, c.steps_taken, "Incident.steps_taken"),
                currentStatus: try CRead.string(c.current_status, "Incident.current_status"),
                impact: try CRead.string(c.impact, "Incident.impact"),
                logTail: try CRead.strings(c.n_log_tail, c.log_tail, "Incident.log_tail"),
                rootCause: try CRead.string(c.root_cause, "Incident.root_cause"),
                timeline: try CRead.messages(c.n_timeline, c.timeline, "Incident.timeline"),
                parentID: try CRead.string(c.parent_id, "Incident.parent_id"),
                acknowledgedBy: try CRead.string(c.acknowledged_by, "Incident.acknowledged_by"),
                resolvedBy: try CRead.string(c.resolved_by, "Incident.resolved_by"),
                respondByMs: c.respond_by_ms
            )
        } catch {
            // Name the incident: an operator can then look it up in archon_incidents.
            throw WireError(error.code, "incident '\(id)': \(error.message)")
        }
    }
}

extension RemediationStep: CMessageConvertible {
    typealias CMessage = Archon__V1__RemediationStep
    static var cInit: (UnsafeMutablePointer<CMessage>?) -> Void { archon__v1__remediation_step__init }

    func fill(_ c: inout CMessage, in arena: CArena) {
        c.time_ms = timeMs
        c.job_id = arena.string(jobID)
        c.attempt = UInt32(clamping: attempt)
        c.failure_class = failureClass.wire
        c.action = arena.string(action)
        c.config_change = arena.string(configChange)
        c.outcome = arena.string(outcome)
    }

    init(c: CMessage) throws(WireError) {
        self.init(
            timeMs: c.time_ms,
            jobID: try CRead.string(c.job_id, "RemediationStep.job_id"),
            attempt: CRead.int(c.attempt),
            failureClass: FailureClass(wire: c.failure_class),
            action: try CRead.string(c.action, "RemediationStep.action"),
            configChange: try CRead.string(c.config_change, "RemediationStep.config_change"),
            outcome: try CRead.string(c.outcome, "RemediationStep.outcome")
        )
    }
}

extension TimelineEntry: CMessageConvertible {
    typealias CMessage = Archon__V1__TimelineEntry
    static var cInit: (UnsafeMutablePointer<CMessage>?) -> Void { archon__v1__timeline_entry__init }

    func fill(_ c: inout CMessage, in arena: CArena) {
        c.time_ms = timeMs
        c.text = arena.string(text)
    }

    init(c: CMessage) throws(WireError) {
        self.init(timeMs: c.time_ms, text: try CRead.string(c.text, "TimelineEntry.text"))
    }
}
