import ArchonController
import ArchonModel
import Foundation
import Hummingbird
import Logging
import Synchronization
import Testing

/// A local HTTP server standing in for a webhook endpoint, Slack and PagerDuty: it records every body per
/// path. The first request to /webhook is answered 500, to prove the controller retries.
final class SinkReceiver: Sendable {
    final class Bodies: Sendable {
        let byPath = Mutex<[String: [Data]]>([:])
    }
    private let bodies: Bodies
    private let task: Task<Void, Error>
    let port: Int

    var base: String { "http://127.0.0.1:\(port)" }

    init() async throws {
        let bodies = Bodies()
        self.bodies = bodies
        let router = Router()
        for path in ["webhook", "slack", "pd"] {
            router.post(RouterPath(path)) { request, _ -> Response in
                let body = Data(buffer: try await request.body.collect(upTo: 1 << 20))
                let count = bodies.byPath.withLock { all -> Int in
                    all["/\(path)", default: []].append(body)
                    return all["/\(path)"]!.count
                }
                return Response(status: path == "webhook" && count == 1 ? .internalServerError : .ok)
            }
        }
        var logger = Logger(label: "test.sink-receiver")
        logger.logLevel = .warning
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let app = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { continuation.yield($0.localAddress?.port ?? 0) }, logger: logger)
        task = Task { try await app.runService(gracefulShutdownSignals: []) }
        var iterator = ports.makeAsyncIterator()
        port = await iterator.next() ?? 0
    }

    deinit { task.cancel() }

    func stop() async {
        task.cancel()
        _ = try? await task.value
    }

    /// Every body received on `path`, oldest first, as JSON objects.
    func received(_ path: String) -> [[String: Any]] {
        raw(path).compactMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] }
    }

    func raw(_ path: String) -> [Data] { bodies.byPath.withLock { $0[path] ?? [] } }
}

@Suite("Escalation sinks: webhook, Slack, PagerDuty over real HTTP", .serialized)
struct EscalationSinkTests {
    @Test func anIncidentReachesEverySinkInItsFormatAndAFailedWebhookIsRetried() async throws {
        let receiver = try await SinkReceiver()
        let fleet = try await FleetHarness()
        let sinks = [
            SinkConfig(name: "hook", kind: .webhook, url: "\(receiver.base)/webhook"),
            SinkConfig(name: "chat", kind: .slack, url: "\(receiver.base)/slack"),
            SinkConfig(name: "pager", kind: .pagerduty, url: "\(receiver.base)/pd", routingKey: "R0UT1NG"),
        ]
        let controller = try await fleet.startController(sinks: sinks)
        let api = HTTP(base: controller.api, token: adminToken.token)
        let agent = try await fleet.announcedNode("n1", api: api)

        // Retrying cannot find a missing dataset: the job fails at once and an L1 incident opens.
        #expect(try await api.call("POST", "/v1/training/jobs", body: faultSpec("nodata", fault: "missing_dataset")).status == 201)
        try await agent.run("nodata", attempt: 1, epochs: 0, exit: JobExited(
            exitCode: 1, failureClass: .datasetNotFound, detail: "FileNotFoundError: /nonexistent/archon-datasets/digits",
            logTail: ["FileNotFoundError: [Errno 2] No such file or directory: '/nonexistent/archon-datasets/digits'"]))
        let incident = try await waitFor("the job's incident") {
            try await api.call("GET", "/v1/incidents").json([IncidentView].self).first { $0.cause == "job" && $0.jobs == ["nodata"] }
        }
        #expect(incident.level == "L1")
        #expect(incident.subject == "Training Failure Escalation - nodata")

        _ = try await waitFor("the page") { receiver.received("/pd").isEmpty ? nil : true }
        #expect(try await api.call("POST", "/v1/incidents/\(incident.id)/ack").status == 200)
        #expect(try await api.call("POST", "/v1/incidents/\(incident.id)/resolve", body: #"{"rootCause": "dataset digits not published"}"#).status == 200)
        _ = try await waitFor("resolve on every sink", timeout: .seconds(15)) { () -> Bool? in
            let kinds = receiver.received("/webhook").compactMap { $0["kind"] as? String }
            let texts = receiver.received("/slack").compactMap { $0["text"] as? String }
            let actions = receiver.received("/pd").compactMap { $0["event_action"] as? String }
            return kinds.last == "resolved" && actions.last == "resolve" && texts.contains { $0.contains("resolved") } ? true : nil
        }
        await controller.stop()
        await receiver.stop()

        // Webhook: the Escalation as JSON; the first POST got a 500 and the same body came again.
        let hooks = receiver.received("/webhook")
        let raw = receiver.raw("/webhook")
        #expect(raw.count >= 2 && raw[0] == raw[1], "the escalation answered 500 was not sent again")
        let opened = try #require(hooks.first)
        #expect(opened["kind"] as? String == "opened")
        let openedIncident = try #require(opened["incident"] as? [String: Any])
        #expect(openedIncident["id"] as? String == incident.id)
        #expect(openedIncident["level"] as? String == "L1")
        #expect(openedIncident["subject"] as? String == "Training Failure Escalation - nodata")
        let dedupKey = try #require(openedIncident["dedupKey"] as? String)
        #expect(hooks.compactMap { $0["kind"] as? String }.contains("acknowledged"))

        // Slack: a text field carrying the subject.
        let slack = receiver.received("/slack")
        #expect(!slack.isEmpty)
        for message in slack {
            let text = try #require(message["text"] as? String)
            #expect(text.contains("Training Failure Escalation - nodata"), "\(text)")
        }

        // PagerDuty Events v2: trigger, acknowledge, resolve on one dedup key, with our routing key.
        let pages = receiver.received("/pd")
        var actions: [String] = []
        for page in pages {
            #expect(page["routing_key"] as? String == "R0UT1NG")
            #expect(page["dedup_key"] as? String == dedupKey)
            let action = try #require(page["event_action"] as? String)
            if actions.last != action { actions.append(action) }
        }
        #expect(actions == ["trigger", "acknowledge", "resolve"])
        let trigger = try #require(pages.first { $0["event_action"] as? String == "trigger" })
        let payload = try #require(trigger["payload"] as? [String: Any])
        #expect((payload["summary"] as? String)?.contains("Training Failure Escalation - nodata") == true)
        #expect(["critical", "error", "warning", "info"].contains(payload["severity"] as? String ?? ""))
        #expect(payload["source"] as? String == "n1")
        #expect(pages.filter { $0["event_action"] as? String != "trigger" }.allSatisfy { $0["payload"] == nil })
    }

    // MARK: Payloads, without a network

    static func escalation(_ kind: Escalation.Kind, severity: Severity = .high) -> Escalation {
        let incident = Incident(
            id: "INC-7", dedupKey: "job:j1", cause: .job, level: .l2, severity: severity, status: .open,
            subject: "Training Failure Escalation - j1", nodes: ["n3"], jobs: ["j1"], dataset: "digits",
            failureTimeMs: 1_700_000_000_000, openedAtMs: 1_700_000_000_500, symptoms: ["out of memory: OOM kill"],
            stepsTaken: [RemediationStep(timeMs: 1, jobID: "j1", attempt: 2, failureClass: .outOfMemory,
                                         action: "restart with batch size halved", configChange: "batchSize 64 -> 32", outcome: "failed again: out of memory")],
            currentStatus: "failed: ladder exhausted", impact: "job j1 stopped")
        return Escalation(kind: kind, incident: incident, timeMs: 1_700_000_001_000, reason: "ladder exhausted")
    }

    @Test func theWebhookBodyIsTheEscalationAsJSON() throws {
        let body = SinkPayload.body(for: Self.escalation(.opened), sink: SinkConfig(name: "h", kind: .webhook, url: "http://x"))
        #expect(JSONSerialization.isValidJSONObject(body))
        #expect(body["kind"] as? String == "opened")
        #expect(body["reason"] as? String == "ladder exhausted")
        let incident = try #require(body["incident"] as? [String: Any])
        #expect(incident["id"] as? String == "INC-7")
        #expect(incident["level"] as? String == "L2")
        #expect(incident["subject"] as? String == "Training Failure Escalation - j1")
        #expect(incident["dedupKey"] as? String == "job:j1")
        // Round trip: a consumer decodes it back to the same Escalation.
        let data = try JSONSerialization.data(withJSONObject: body)
        #expect(try JSONDecoder().decode(Escalation.self, from: data) == Self.escalation(.opened))
    }

    @Test func theSlackBodyIsOneTextWithTheTemplate() throws {
        let body = SinkPayload.body(for: Self.escalation(.escalated), sink: SinkConfig(name: "s", kind: .slack, url: "http://x"))
        #expect(JSONSerialization.isValidJSONObject(body))
        #expect(Array(body.keys) == ["text"])
        let text = try #require(body["text"] as? String)
        #expect(text.contains("Training Failure Escalation - j1"))
        #expect(text.contains("escalated at L2"))
        #expect(text.contains("batchSize 64 -> 32"))
        #expect(text.contains("INC-7"))
        #expect(text.contains("n3"))
    }

    @Test(arguments: [
        (Escalation.Kind.opened, "trigger"), (.updated, "trigger"), (.escalated, "trigger"),
        (.acknowledged, "acknowledge"), (.resolved, "resolve"),
    ])
    func thePagerDutyEventActionFollowsTheEscalationKind(kind: Escalation.Kind, action: String) throws {
        let sink = SinkConfig(name: "p", kind: .pagerduty, url: "http://x", routingKey: "KEY")
        let body = SinkPayload.body(for: Self.escalation(kind), sink: sink)
        #expect(JSONSerialization.isValidJSONObject(body))
        #expect(body["routing_key"] as? String == "KEY")
        #expect(body["event_action"] as? String == action)
        #expect(body["dedup_key"] as? String == "job:j1")
        if action == "trigger" {
            let payload = try #require(body["payload"] as? [String: Any])
            #expect(payload["summary"] as? String == "Training Failure Escalation - j1 [L2]")
            #expect(payload["source"] as? String == "n3")
            #expect(payload["severity"] as? String == "error")
            #expect(payload["timestamp"] as? String == "2023-11-14T22:13:21Z")
        } else {
            #expect(body["payload"] == nil, "PagerDuty takes no payload on \(action)")
        }
    }

    @Test(arguments: [(Severity.critical, "critical"), (.high, "error"), (.warning, "warning"), (.info, "info")])
    func thePagerDutySeverityIsOneOfItsFour(severity: Severity, expected: String) throws {
        let body = SinkPayload.body(for: Self.escalation(.opened, severity: severity),
                                    sink: SinkConfig(name: "p", kind: .pagerduty, url: "http://x", routingKey: "KEY"))
        let payload = try #require(body["payload"] as? [String: Any])
        #expect(payload["severity"] as? String == expected)
    }
}
