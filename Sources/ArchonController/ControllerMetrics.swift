import ArchonCore
import ArchonModel
import Metrics

/// The controller's metrics (swift-metrics; the executable bootstraps Prometheus).
public struct ControllerMetrics: Sendable {
    public init() {}

    let eventsConsumed = Counter(label: "archon_events_consumed_total")
    let decodeErrors = Counter(label: "archon_event_decode_errors_total")
    let spoofedEvents = Counter(label: "archon_events_rejected_total", dimensions: [("reason", "node_mismatch")])
    let consumerLag = Gauge(label: "archon_consumer_lag_messages")
    /// 1 on the replica that leads, 0 on a standby: the fleet has a leader when the sum over replicas is 1.
    let leader = Gauge(label: "archon_controller_leader")
    let decisionLatency = Timer(label: "archon_decision_latency_seconds", preferredDisplayUnit: .seconds)
    let sinkFailures = Counter(label: "archon_sink_failures_total")
    /// Events whose numbers were clamped or dropped at the boundary (NaN, ±Inf, out of range).
    let sanitizedEvents = Counter(label: "archon_events_sanitized_total")
    /// Messages delivered `maxDeliveries` times without being applied: terminated.
    let deliveryLimitReached = Counter(label: "archon_events_rejected_total", dimensions: [("reason", "delivery_limit")])
    let stateBatches = Counter(label: "archon_state_batches_total")
    let stateBytesPerBatch = Recorder(label: "archon_state_batch_bytes")
    let stateWriteFailures = Counter(label: "archon_state_write_failures_total")
    let stateFlushes = Counter(label: "archon_state_flushes_total")
    let stateLoadErrors = Counter(label: "archon_state_load_errors_total")
    let stateLoadSeconds = Gauge(label: "archon_state_load_seconds")
    /// 1 while the state cannot be written (the controller consumes nothing and answers writes with 503).
    let stateUnavailable = Gauge(label: "archon_state_unavailable")
    let reconcileRepairs = Counter(label: "archon_reconcile_repairs_total")
    let actionFailures = Counter(label: "archon_action_failures_total")

    /// Events not believed (and not applied) for `reason` (`job_not_assigned`, …).
    func rejectedEvent(reason: String) {
        Counter(label: "archon_events_rejected_total", dimensions: [("reason", reason)]).increment()
    }

    /// Security alerts agents reported (`assignment_rejected`, `permission_violation`).
    func securityAlert(kind: String) {
        Counter(label: "archon_security_alerts_total", dimensions: [("kind", kind)]).increment()
    }

    func action(_ kind: String) {
        Counter(label: "archon_actions_total", dimensions: [("kind", kind)]).increment()
    }

    /// The runbook's success metrics: per failure class, how job failure series end (`fixed` / `failed` / `stopped`:
    /// the auto-fix success rate is fixed over all), how long fixing took, and whether within the runbook's quick-fix
    /// target; per incident cause, time to detect and to resolve.
    func runbook(_ measure: RunbookMeasure) {
        switch measure {
        case .failureSeriesEnded(let symptom, let outcome, let timeToFixMs, let targetMs):
            let failureClass = ("failure_class", symptom.rawValue)
            Counter(label: "archon_runbook_fix_outcomes_total", dimensions: [failureClass, ("outcome", outcome.rawValue)]).increment()
            guard outcome == .fixed else { return }
            Timer(label: "archon_runbook_time_to_fix_seconds", dimensions: [failureClass], preferredDisplayUnit: .seconds).recordMilliseconds(timeToFixMs)
            if let targetMs {
                Counter(label: "archon_runbook_fixes_within_target_total", dimensions: [failureClass, ("within", timeToFixMs <= targetMs ? "true" : "false")])
                    .increment()
            }
        case .incidentResolved(let cause, let detectMs, let resolveMs, let automatic):
            let dimensions = [("cause", cause.rawValue)]
            Timer(label: "archon_incident_time_to_detect_seconds", dimensions: dimensions, preferredDisplayUnit: .seconds).recordMilliseconds(detectMs)
            Timer(label: "archon_incident_time_to_resolve_seconds", dimensions: dimensions, preferredDisplayUnit: .seconds).recordMilliseconds(resolveMs)
            Counter(label: "archon_incidents_resolved_total", dimensions: dimensions + [("by", automatic ? "archon" : "operator")]).increment()
        }
    }

    /// Open incidents per level, from counts the caller keeps (never a walk over every incident).
    func openIncidents(_ counts: [EscalationLevel: Int]) {
        for level in EscalationLevel.allCases {
            Gauge(label: "archon_incidents_open", dimensions: [("level", level.rawValue)]).record(counts[level] ?? 0)
        }
    }
}
