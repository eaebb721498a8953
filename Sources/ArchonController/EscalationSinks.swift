public import ArchonModel
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
public import Logging
import Synchronization

/// Where escalations go besides NATS: configured in the controller's config file.
public struct SinkConfig: Codable, Sendable, Hashable {
    public enum Kind: String, Codable, Sendable {
        /// POST the `Escalation` as JSON.
        case webhook
        /// A Slack incoming webhook (`{"text": …}`).
        case slack
        /// PagerDuty Events API v2: trigger / acknowledge / resolve by the incident's dedup key.
        case pagerduty
    }

    public var name: String
    public var kind: Kind
    public var url: String
    /// PagerDuty integration (routing) key.
    public var routingKey: String?
    /// Only escalations at this level or above (default: all).
    public var minLevel: EscalationLevel?
    /// Extra HTTP headers, e.g. an Authorization for a private webhook.
    public var headers: [String: String]?

    public init(name: String, kind: Kind, url: String, routingKey: String? = nil, minLevel: EscalationLevel? = nil,
                headers: [String: String]? = nil) {
        self.name = name
        self.kind = kind
        self.url = url
        self.routingKey = routingKey
        self.minLevel = minLevel
        self.headers = headers
    }
}

/// The request bodies of each sink format (pure: tested without a network).
public enum SinkPayload {
    public static func body(for escalation: Escalation, sink: SinkConfig) -> [String: Any] {
        let incident = escalation.incident
        switch sink.kind {
        case .webhook:
            let data = (try? JSONEncoder.archon.encode(escalation)) ?? Data()
            return (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
        case .slack:
            var lines = ["*\(incident.subject)* — \(escalation.kind.rawValue) at \(incident.level.rawValue), severity \(incident.severity.rawValue)"]
            if !escalation.reason.isEmpty { lines.append(escalation.reason) }
            if !incident.symptoms.isEmpty { lines.append("Symptoms: " + incident.symptoms.joined(separator: "; ")) }
            if !incident.stepsTaken.isEmpty {
                lines.append("Steps taken:\n" + incident.stepsTaken.map { "• attempt \($0.attempt): \($0.action) \($0.configChange) → \($0.outcome)" }.joined(separator: "\n"))
            }
            if !incident.currentStatus.isEmpty { lines.append("Status: \(incident.currentStatus)") }
            lines.append("Incident \(incident.id) · jobs \(incident.jobs.joined(separator: ", ")) · nodes \(incident.nodes.joined(separator: ", "))")
            return ["text": lines.joined(separator: "\n")]
        case .pagerduty:
            let action: String
            switch escalation.kind {
            case .opened, .updated, .escalated: action = "trigger"
            case .acknowledged: action = "acknowledge"
            case .resolved: action = "resolve"
            }
            var body: [String: Any] = [
                "routing_key": sink.routingKey ?? "",
                "event_action": action,
                "dedup_key": incident.dedupKey,
            ]
            if action == "trigger" {
                let severity: String
                switch incident.severity {
                case .critical: severity = "critical"
                case .high: severity = "error"
                case .warning: severity = "warning"
                case .info: severity = "info"
                }
                body["payload"] = [
                    "summary": "\(incident.subject) [\(incident.level.rawValue)]",
                    "source": incident.nodes.first ?? "archon-controller",
                    "severity": severity,
                    "timestamp": ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(escalation.timeMs) / 1000)),
                    "component": incident.jobs.first ?? incident.dataset,
                    "group": incident.cause.rawValue,
                    "class": incident.symptoms.first ?? incident.cause.rawValue,
                    "custom_details": [
                        "incident": incident.id,
                        "level": incident.level.rawValue,
                        "jobs": incident.jobs,
                        "nodes": incident.nodes,
                        "symptoms": incident.symptoms,
                        "steps_taken": incident.stepsTaken.map { "attempt \($0.attempt): \($0.action) \($0.configChange) → \($0.outcome)" },
                        "current_status": incident.currentStatus,
                        "impact": incident.impact,
                        "reason": escalation.reason,
                    ] as [String: Any],
                ] as [String: Any]
            }
            return body
        }
    }
}

/// Delivers escalations to the configured sinks, each with its own queue, retrying with backoff.
/// A failing sink is counted and logged; it never blocks the controller or the other sinks.
public final class EscalationSinks: Sendable {
    public struct Status: Sendable, Equatable {
        public var delivered = 0
        public var failedAttempts = 0
        /// Escalations given up on after every retry.
        public var dropped = 0
        public var lastError: String?
    }

    private let sinks: [SinkConfig]
    private let logger: Logger
    private let maxAttempts: Int
    private let initialBackoff: Duration
    private let queues: [AsyncStream<Escalation>.Continuation]
    private let streams: Mutex<[AsyncStream<Escalation>]>
    private let statuses: Mutex<[String: Status]>

    public init(_ sinks: [SinkConfig], logger: Logger, maxAttempts: Int = 5, initialBackoff: Duration = .milliseconds(500)) {
        self.sinks = sinks
        self.logger = logger
        self.maxAttempts = maxAttempts
        self.initialBackoff = initialBackoff
        var queues: [AsyncStream<Escalation>.Continuation] = []
        var streams: [AsyncStream<Escalation>] = []
        for _ in sinks {
            let (stream, continuation) = AsyncStream.makeStream(of: Escalation.self, bufferingPolicy: .bufferingNewest(1000))
            queues.append(continuation)
            streams.append(stream)
        }
        self.queues = queues
        self.streams = Mutex(streams)
        self.statuses = Mutex(Dictionary(uniqueKeysWithValues: sinks.map { ($0.name, Status()) }))
    }

    /// Queues an escalation for every sink whose level filter lets it through. Never waits.
    public func deliver(_ escalation: Escalation) {
        for (sink, queue) in zip(sinks, queues) {
            if let min = sink.minLevel, escalation.incident.level < min { continue }
            queue.yield(escalation)
        }
    }

    public var status: [String: Status] { statuses.withLock { $0 } }

    /// Runs the delivery loops until cancelled.
    public func run() async {
        let streams = self.streams.withLock { $0 }
        await withTaskGroup(of: Void.self) { group in
            for (sink, stream) in zip(sinks, streams) {
                group.addTask {
                    for await escalation in stream { await self.send(escalation, to: sink) }
                }
            }
        }
    }

    public func finish() {
        for queue in queues { queue.finish() }
    }

    private func send(_ escalation: Escalation, to sink: SinkConfig) async {
        var backoff = initialBackoff
        for attempt in 1...maxAttempts {
            do {
                try await post(SinkPayload.body(for: escalation, sink: sink), to: sink)
                statuses.withLock { $0[sink.name, default: Status()].delivered += 1 }
                return
            } catch {
                // A webhook URL is often its own credential (Slack's are): the sink's name stands for it.
                let text = "\(error)".replacingOccurrences(of: sink.url, with: "<url of sink \(sink.name)>")
                statuses.withLock {
                    $0[sink.name, default: Status()].failedAttempts += 1
                    $0[sink.name, default: Status()].lastError = text
                }
                logger.warning("controller.sink.failed", metadata: [
                    "sink.name": "\(sink.name)", "sink.attempt": "\(attempt)", "incident.id": "\(escalation.incident.id)",
                    "error": "\(text)",
                ])
                if attempt < maxAttempts {
                    try? await Task.sleep(for: backoff)
                    backoff = min(backoff * 2, .seconds(60))
                }
            }
        }
        statuses.withLock { $0[sink.name, default: Status()].dropped += 1 }
        logger.error("controller.sink.gave_up", metadata: ["sink.name": "\(sink.name)", "incident.id": "\(escalation.incident.id)"])
    }

    struct HTTPFailure: Error, CustomStringConvertible {
        let description: String
    }

    private func post(_ body: [String: Any], to sink: SinkConfig) async throws {
        guard let url = URL(string: sink.url) else { throw HTTPFailure(description: "the sink's url is not a URL") }
        var request = URLRequest(url: url, timeoutInterval: 10)
        request.httpMethod = "POST"
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        for (k, v) in sink.headers ?? [:] { request.setValue(v, forHTTPHeaderField: k) }
        request.httpBody = try JSONSerialization.data(withJSONObject: body, options: [.sortedKeys])
        // Outside the sink worker's task tree: cancelling an in-flight URLSession request (at shutdown) deadlocks
        // swift-corelibs-foundation (its cancel handler waits on the session queue, which waits on the task's status
        // lock); seen as a controller that never stops. The request's own timeout bounds the wait instead.
        let (_, response) = try await Task.detached { try await URLSession.shared.data(for: request) }.value
        guard let http = response as? HTTPURLResponse, (200..<300).contains(http.statusCode) else {
            throw HTTPFailure(description: "HTTP \((response as? HTTPURLResponse)?.statusCode ?? 0) from the sink")
        }
    }
}

extension JSONEncoder {
    /// Stable field order, for files and API answers.
    static var archon: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        // A diverging loss is NaN: JSON has no NaN, so it is written as a string.
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        return encoder
    }
}
