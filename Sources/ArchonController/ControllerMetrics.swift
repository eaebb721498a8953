import ArchonModel
import Metrics

/// The controller's metrics (swift-metrics; the executable bootstraps Prometheus).
struct ControllerMetrics: Sendable {
    let eventsConsumed = Counter(label: "archon_events_consumed_total")
    let decodeErrors = Counter(label: "archon_event_decode_errors_total")
    let spoofedEvents = Counter(label: "archon_events_rejected_total", dimensions: [("reason", "node_mismatch")])
    let consumerLag = Gauge(label: "archon_consumer_lag_messages")
    let decisionLatency = Timer(label: "archon_decision_latency_seconds", preferredDisplayUnit: .seconds)
    let sinkFailures = Counter(label: "archon_sink_failures_total")

    func action(_ kind: String) {
        Counter(label: "archon_actions_total", dimensions: [("kind", kind)]).increment()
    }

    func incidents(_ incidents: [Incident]) {
        for level in EscalationLevel.allCases {
            let open = incidents.filter { $0.level == level && $0.status != .resolved }.count
            Gauge(label: "archon_incidents_open", dimensions: [("level", level.rawValue)]).record(open)
        }
    }
}
