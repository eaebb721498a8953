internal import ArchonProto
import ArchonModel

// Enum mapping, both ways, with exhaustive switches over the model's enums.
// Decoding: value 0 and unknown values map to the model's "unspecified" case where it has one;
// otherwise they are rejected (see `WireMessage`).

extension FailureClass {
    var wire: Archon__V1__FailureClass {
        switch self {
        case .none: ARCHON__V1__FAILURE_CLASS__FAILURE_CLASS_UNSPECIFIED
        case .outOfMemory: ARCHON__V1__FAILURE_CLASS__FAILURE_CLASS_OUT_OF_MEMORY
        case .divergingLoss: ARCHON__V1__FAILURE_CLASS__FAILURE_CLASS_DIVERGING_LOSS
        case .datasetNotFound: ARCHON__V1__FAILURE_CLASS__FAILURE_CLASS_DATASET_NOT_FOUND
        case .permissionDenied: ARCHON__V1__FAILURE_CLASS__FAILURE_CLASS_PERMISSION_DENIED
        case .timeout: ARCHON__V1__FAILURE_CLASS__FAILURE_CLASS_TIMEOUT
        case .hang: ARCHON__V1__FAILURE_CLASS__FAILURE_CLASS_HANG
        case .crash: ARCHON__V1__FAILURE_CLASS__FAILURE_CLASS_CRASH
        case .dataCorruption: ARCHON__V1__FAILURE_CLASS__FAILURE_CLASS_DATA_CORRUPTION
        case .nodeFault: ARCHON__V1__FAILURE_CLASS__FAILURE_CLASS_NODE_FAULT
        case .checkpointUnavailable: ARCHON__V1__FAILURE_CLASS__FAILURE_CLASS_CHECKPOINT_UNAVAILABLE
        }
    }

    /// Unknown values are `.none` ("no failure recognised"), as the schema defines value 0.
    init(wire: Archon__V1__FailureClass) {
        switch wire {
        case ARCHON__V1__FAILURE_CLASS__FAILURE_CLASS_OUT_OF_MEMORY: self = .outOfMemory
        case ARCHON__V1__FAILURE_CLASS__FAILURE_CLASS_DIVERGING_LOSS: self = .divergingLoss
        case ARCHON__V1__FAILURE_CLASS__FAILURE_CLASS_DATASET_NOT_FOUND: self = .datasetNotFound
        case ARCHON__V1__FAILURE_CLASS__FAILURE_CLASS_PERMISSION_DENIED: self = .permissionDenied
        case ARCHON__V1__FAILURE_CLASS__FAILURE_CLASS_TIMEOUT: self = .timeout
        case ARCHON__V1__FAILURE_CLASS__FAILURE_CLASS_HANG: self = .hang
        case ARCHON__V1__FAILURE_CLASS__FAILURE_CLASS_CRASH: self = .crash
        case ARCHON__V1__FAILURE_CLASS__FAILURE_CLASS_DATA_CORRUPTION: self = .dataCorruption
        case ARCHON__V1__FAILURE_CLASS__FAILURE_CLASS_NODE_FAULT: self = .nodeFault
        case ARCHON__V1__FAILURE_CLASS__FAILURE_CLASS_CHECKPOINT_UNAVAILABLE: self = .checkpointUnavailable
        default: self = .none
        }
    }
}

extension Enforcement {
    var wire: Archon__V1__Enforcement {
        switch self {
        case .unspecified: ARCHON__V1__ENFORCEMENT__ENFORCEMENT_UNSPECIFIED
        case .none: ARCHON__V1__ENFORCEMENT__ENFORCEMENT_NONE
        case .cgroupV2: ARCHON__V1__ENFORCEMENT__ENFORCEMENT_CGROUP_V2
        case .cgroupV1: ARCHON__V1__ENFORCEMENT__ENFORCEMENT_CGROUP_V1
        case .rlimit: ARCHON__V1__ENFORCEMENT__ENFORCEMENT_RLIMIT
        case .watchdog: ARCHON__V1__ENFORCEMENT__ENFORCEMENT_WATCHDOG
        }
    }

    /// Unknown values are `.unspecified`.
    init(wire: Archon__V1__Enforcement) {
        switch wire {
        case ARCHON__V1__ENFORCEMENT__ENFORCEMENT_NONE: self = .none
        case ARCHON__V1__ENFORCEMENT__ENFORCEMENT_CGROUP_V2: self = .cgroupV2
        case ARCHON__V1__ENFORCEMENT__ENFORCEMENT_CGROUP_V1: self = .cgroupV1
        case ARCHON__V1__ENFORCEMENT__ENFORCEMENT_RLIMIT: self = .rlimit
        case ARCHON__V1__ENFORCEMENT__ENFORCEMENT_WATCHDOG: self = .watchdog
        default: self = .unspecified
        }
    }
}

extension LRSchedule.Kind {
    var wire: Archon__V1__LRSchedule__Kind {
        switch self {
        case .constant: ARCHON__V1__LRSCHEDULE__KIND__KIND_CONSTANT
        case .exponential: ARCHON__V1__LRSCHEDULE__KIND__KIND_EXPONENTIAL
        case .cosine: ARCHON__V1__LRSCHEDULE__KIND__KIND_COSINE
        case .step: ARCHON__V1__LRSCHEDULE__KIND__KIND_STEP
        }
    }

    /// Unspecified and unknown values are `.constant`, as the schema says of KIND_UNSPECIFIED.
    init(wire: Archon__V1__LRSchedule__Kind) {
        switch wire {
        case ARCHON__V1__LRSCHEDULE__KIND__KIND_EXPONENTIAL: self = .exponential
        case ARCHON__V1__LRSCHEDULE__KIND__KIND_COSINE: self = .cosine
        case ARCHON__V1__LRSCHEDULE__KIND__KIND_STEP: self = .step
        default: self = .constant
        }
    }
}

extension JobAssignment.DesiredState {
    var wire: Archon__V1__JobAssignment__DesiredState {
        switch self {
        case .running: ARCHON__V1__JOB_ASSIGNMENT__DESIRED_STATE__DESIRED_STATE_RUNNING
        case .stopped: ARCHON__V1__JOB_ASSIGNMENT__DESIRED_STATE__DESIRED_STATE_STOPPED
        }
    }

    /// An agent must not guess whether to run or stop a job: unspecified and unknown values are rejected.
    init(wire: Archon__V1__JobAssignment__DesiredState) throws(WireError) {
        switch wire {
        case ARCHON__V1__JOB_ASSIGNMENT__DESIRED_STATE__DESIRED_STATE_RUNNING: self = .running
        case ARCHON__V1__JOB_ASSIGNMENT__DESIRED_STATE__DESIRED_STATE_STOPPED: self = .stopped
        default:
            throw CRead.unrepresentable(
                "JobAssignment.desired_state", UInt32(truncatingIfNeeded: wire.rawValue),
                expected: "DESIRED_STATE_RUNNING (1) or DESIRED_STATE_STOPPED (2)"
            )
        }
    }
}

extension EscalationLevel {
    var wire: Archon__V1__EscalationLevel {
        switch self {
        case .l1: ARCHON__V1__ESCALATION_LEVEL__ESCALATION_LEVEL_L1
        case .l2: ARCHON__V1__ESCALATION_LEVEL__ESCALATION_LEVEL_L2
        case .l3: ARCHON__V1__ESCALATION_LEVEL__ESCALATION_LEVEL_L3
        case .l4: ARCHON__V1__ESCALATION_LEVEL__ESCALATION_LEVEL_L4
        }
    }

    init(wire: Archon__V1__EscalationLevel) throws(WireError) {
        switch wire {
        case ARCHON__V1__ESCALATION_LEVEL__ESCALATION_LEVEL_L1: self = .l1
        case ARCHON__V1__ESCALATION_LEVEL__ESCALATION_LEVEL_L2: self = .l2
        case ARCHON__V1__ESCALATION_LEVEL__ESCALATION_LEVEL_L3: self = .l3
        case ARCHON__V1__ESCALATION_LEVEL__ESCALATION_LEVEL_L4: self = .l4
        default:
            throw CRead.unrepresentable(
                "Incident.level", UInt32(truncatingIfNeeded: wire.rawValue),
                expected: "ESCALATION_LEVEL_L1 (1) to ESCALATION_LEVEL_L4 (4)"
            )
        }
    }
}

extension Severity {
    var wire: Archon__V1__Severity {
        switch self {
        case .info: ARCHON__V1__SEVERITY__SEVERITY_INFO
        case .warning: ARCHON__V1__SEVERITY__SEVERITY_WARNING
        case .high: ARCHON__V1__SEVERITY__SEVERITY_HIGH
        case .critical: ARCHON__V1__SEVERITY__SEVERITY_CRITICAL
        }
    }

    init(wire: Archon__V1__Severity) throws(WireError) {
        switch wire {
        case ARCHON__V1__SEVERITY__SEVERITY_INFO: self = .info
        case ARCHON__V1__SEVERITY__SEVERITY_WARNING: self = .warning
        case ARCHON__V1__SEVERITY__SEVERITY_HIGH: self = .high
        case ARCHON__V1__SEVERITY__SEVERITY_CRITICAL: self = .critical
        default:
            throw CRead.unrepresentable(
                "Incident.severity", UInt32(truncatingIfNeeded: wire.rawValue),
                expected: "SEVERITY_INFO (1) to SEVERITY_CRITICAL (4)"
            )
        }
    }
}

extension IncidentCause {
    var wire: Archon__V1__IncidentCause {
        switch self {
        case .job: ARCHON__V1__INCIDENT_CAUSE__INCIDENT_CAUSE_JOB
        case .badNode: ARCHON__V1__INCIDENT_CAUSE__INCIDENT_CAUSE_BAD_NODE
        case .badDataset: ARCHON__V1__INCIDENT_CAUSE__INCIDENT_CAUSE_BAD_DATASET
        case .systemResource: ARCHON__V1__INCIDENT_CAUSE__INCIDENT_CAUSE_SYSTEM_RESOURCE
        case .multiAgent: ARCHON__V1__INCIDENT_CAUSE__INCIDENT_CAUSE_MULTI_AGENT
        case .security: ARCHON__V1__INCIDENT_CAUSE__INCIDENT_CAUSE_SECURITY
        case .notice: ARCHON__V1__INCIDENT_CAUSE__INCIDENT_CAUSE_NOTICE
        }
    }

    init(wire: Archon__V1__IncidentCause) throws(WireError) {
        switch wire {
        case ARCHON__V1__INCIDENT_CAUSE__INCIDENT_CAUSE_JOB: self = .job
        case ARCHON__V1__INCIDENT_CAUSE__INCIDENT_CAUSE_BAD_NODE: self = .badNode
        case ARCHON__V1__INCIDENT_CAUSE__INCIDENT_CAUSE_BAD_DATASET: self = .badDataset
        case ARCHON__V1__INCIDENT_CAUSE__INCIDENT_CAUSE_SYSTEM_RESOURCE: self = .systemResource
        case ARCHON__V1__INCIDENT_CAUSE__INCIDENT_CAUSE_MULTI_AGENT: self = .multiAgent
        case ARCHON__V1__INCIDENT_CAUSE__INCIDENT_CAUSE_SECURITY: self = .security
        case ARCHON__V1__INCIDENT_CAUSE__INCIDENT_CAUSE_NOTICE: self = .notice
        default:
            throw CRead.unrepresentable(
                "Incident.cause", UInt32(truncatingIfNeeded: wire.rawValue),
                expected: "INCIDENT_CAUSE_JOB (1) to INCIDENT_CAUSE_NOTICE (7)"
            )
        }
    }
}

extension IncidentStatus {
    var wire: Archon__V1__IncidentStatus {
        switch self {
        case .open: ARCHON__V1__INCIDENT_STATUS__INCIDENT_STATUS_OPEN
        case .acknowledged: ARCHON__V1__INCIDENT_STATUS__INCIDENT_STATUS_ACKNOWLEDGED
        case .resolved: ARCHON__V1__INCIDENT_STATUS__INCIDENT_STATUS_RESOLVED
        }
    }

    init(wire: Archon__V1__IncidentStatus) throws(WireError) {
        switch wire {
        case ARCHON__V1__INCIDENT_STATUS__INCIDENT_STATUS_OPEN: self = .open
        case ARCHON__V1__INCIDENT_STATUS__INCIDENT_STATUS_ACKNOWLEDGED: self = .acknowledged
        case ARCHON__V1__INCIDENT_STATUS__INCIDENT_STATUS_RESOLVED: self = .resolved
        default:
            throw CRead.unrepresentable(
                "Incident.status", UInt32(truncatingIfNeeded: wire.rawValue),
                expected: "INCIDENT_STATUS_OPEN (1) to INCIDENT_STATUS_RESOLVED (3)"
            )
        }
    }
}

extension Escalation.Kind {
    var wire: Archon__V1__Escalation__Kind {
        switch self {
        case .opened: ARCHON__V1__ESCALATION__KIND__KIND_OPENED
        case .updated: ARCHON__V1__ESCALATION__KIND__KIND_UPDATED
        case .escalated: ARCHON__V1__ESCALATION__KIND__KIND_ESCALATED
        case .acknowledged: ARCHON__V1__ESCALATION__KIND__KIND_ACKNOWLEDGED
        case .resolved: ARCHON__V1__ESCALATION__KIND__KIND_RESOLVED
        }
    }

    init(wire: Archon__V1__Escalation__Kind) throws(WireError) {
        switch wire {
        case ARCHON__V1__ESCALATION__KIND__KIND_OPENED: self = .opened
        case ARCHON__V1__ESCALATION__KIND__KIND_UPDATED: self = .updated
        case ARCHON__V1__ESCALATION__KIND__KIND_ESCALATED: self = .escalated
        case ARCHON__V1__ESCALATION__KIND__KIND_ACKNOWLEDGED: self = .acknowledged
        case ARCHON__V1__ESCALATION__KIND__KIND_RESOLVED: self = .resolved
        default:
            throw CRead.unrepresentable(
                "Escalation.kind", UInt32(truncatingIfNeeded: wire.rawValue),
                expected: "KIND_OPENED (1) to KIND_RESOLVED (5)"
            )
        }
    }
}
