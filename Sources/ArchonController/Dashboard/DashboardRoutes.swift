import ArchonCore
import ArchonModel
import ArchonNATS
import ArchonWire
import Foundation
import HTTPTypes
import Hummingbird
import Synchronization

/// One-time login codes: `archon dev` prints a dashboard URL carrying one, as Jupyter does; the first visit trades it
/// for the session cookie and the address bar loses it. In memory, single use, ten minutes, at most 64 pending.
public final class DashboardLogins: Sendable {
    private struct Pending { var token: String; var expiresMs: Int64 }
    private let pending = Mutex<[String: Pending]>([:])
    public static let lifetimeMs: Int64 = 10 * 60 * 1000

    public init() {}

    /// A code that logs in as `token` (the caller knows the token: it is checked at redemption like any other).
    public func mint(token: String, now: Int64) -> String {
        let code = (0..<4).map { _ in String(UInt64.random(in: 0...UInt64.max), radix: 16) }.joined()
        pending.withLock { codes in
            codes = codes.filter { $0.value.expiresMs > now }
            if codes.count >= 64, let oldest = codes.min(by: { $0.value.expiresMs < $1.value.expiresMs })?.key { codes[oldest] = nil }
            codes[code] = Pending(token: token, expiresMs: now + Self.lifetimeMs)
        }
        return code
    }

    /// The token of `code`, once; nil when unknown, used or expired.
    public func redeem(_ code: String, now: Int64) -> String? {
        pending.withLock { codes in
            guard let entry = codes.removeValue(forKey: code), entry.expiresMs > now else { return nil }
            return entry.token
        }
    }
}

/// The last fleet view built, shared by every open fleet page for a second.
public final class DashboardFleetCache: Sendable {
    private let last = Mutex<(at: ContinuousClock.Instant, snapshot: DashboardPages.FleetSnapshot)?>(nil)

    public init() {}

    func fresh(within age: Duration = .seconds(1)) -> DashboardPages.FleetSnapshot? {
        last.withLock { entry in entry.flatMap { ContinuousClock.now - $0.at < age ? $0.snapshot : nil } }
    }

    func store(_ snapshot: DashboardPages.FleetSnapshot) {
        last.withLock { $0 = (ContinuousClock.now, snapshot) }
    }
}

/// The dashboard's routes under `/ui`: pages, their live streams (server-sent events), login and the two buttons.
/// Authentication is the API's: a bearer token, or the `archon_token` cookie the login form sets (see ``BearerAuth``).
enum Dashboard {
    static let cookieName = "archon_token"
    static let publicPaths: Set<String> = ["/ui/login", "/ui/static/archon.css", "/ui/static/archon.js"]

    static func addRoutes(to router: Router<APIRequestContext>, controller: Controller) {
        router.get("ui/static/archon.css") { _, _ in asset(DashboardAssets.css, "text/css; charset=utf-8") }
        router.get("ui/static/archon.js") { _, _ in asset(DashboardAssets.js, "text/javascript; charset=utf-8") }

        router.get("ui/login") { request, _ in
            if let code = request.uri.queryParameters.get("code") {
                guard let token = controller.dashboardLogins.redeem(code, now: controller.now()),
                      BearerAuth.match(token, in: controller.config.tokens) != nil else {
                    return html(DashboardPages.loginPage(error: "This login link was used already or has expired: log in with a token."), status: .unauthorized)
                }
                return loggedIn(token: token, request: request)
            }
            return html(DashboardPages.loginPage(error: nil))
        }
        router.post("ui/login") { request, _ in
            let form = try await formFields(request)
            guard let token = form["token"], !token.isEmpty, BearerAuth.match(token, in: controller.config.tokens) != nil else {
                return html(DashboardPages.loginPage(error: "Unknown token."), status: .unauthorized)
            }
            return loggedIn(token: token, request: request)
        }
        router.post("ui/logout") { request, _ in
            var response = redirect("/ui/login")
            response.setCookie(cookie(value: "", request: request, maxAge: 0))
            return response
        }

        router.get("ui") { _, context in  // `/ui/` too: the router ignores a trailing slash
            let viewer = try await viewer(context, controller)
            return html(DashboardPages.fleetPage(await fleetSnapshot(controller), viewer: viewer))
        }
        router.get("ui/live") { _, context in
            let viewer = try await viewer(context, controller)
            return stream { send in
                var last: [String: String] = [:]
                while true {
                    let sections = DashboardPages.fleetSections(await fleetSnapshot(controller), viewer: viewer)
                    try await send(changed(sections, since: &last))
                    try await Task.sleep(for: .seconds(1))
                }
            }
        }

        router.get("ui/jobs/:id") { _, context in
            let viewer = try await viewer(context, controller)
            let id = try context.parameters.require("id")
            guard let job = await controller.job(id) else { return notFound("job", id) }
            let curve = await JobCurveReader.curve(of: job, controller: controller)
            return html(DashboardPages.jobPage(JobView(job), curve: curve, logs: await logTail(id, controller), viewer: viewer))
        }
        router.get("ui/live/jobs/:id") { _, context in
            _ = try await viewer(context, controller)
            let id = try context.parameters.require("id")
            guard await controller.job(id) != nil else { return notFound("job", id) }
            return stream { send in
                let reader = JobCurveReader(jobID: id, controller: controller)
                let task = Task { await reader.follow() }
                defer { task.cancel(); reader.stop() }
                var last: [String: String] = [:]
                var logs: [String]?
                var logsAt = ContinuousClock.now - .seconds(60)
                while true {
                    guard let job = await controller.job(id) else { return }
                    reader.update(job)
                    if ContinuousClock.now - logsAt > .seconds(job.status.isTerminal ? 60 : 3) {
                        logsAt = .now
                        logs = await logTail(id, controller) ?? logs
                    }
                    let sections = DashboardPages.jobSections(JobView(job), curve: reader.curve, logs: logs)
                    try await send(changed(sections, since: &last))
                    try await Task.sleep(for: .milliseconds(500))
                }
            }
        }

        router.get("ui/incidents/:id") { _, context in
            let viewer = try await viewer(context, controller)
            let id = try context.parameters.require("id")
            guard let sections = await incidentSections(id, controller) else { return notFound("incident", id) }
            return html(DashboardPages.incidentPage(sections.incident, attached: sections.attached, report: sections.report, viewer: viewer))
        }
        router.get("ui/live/incidents/:id") { _, context in
            let viewer = try await viewer(context, controller)
            let id = try context.parameters.require("id")
            return stream { send in
                var last: [String: String] = [:]
                while let s = await incidentSections(id, controller) {
                    try await send(changed(DashboardPages.incidentSections(s.incident, attached: s.attached, report: s.report, viewer: viewer), since: &last))
                    try await Task.sleep(for: .seconds(1))
                }
            }
        }
        router.post("ui/incidents/:id/ack") { request, context in
            let id = try context.parameters.require("id")
            return try await act(request, context, controller, id) { who in
                try await controller.apply { core, now in try core.incidentAcknowledged(id, by: who, at: now) }
            }
        }
        router.post("ui/incidents/:id/resolve") { request, context in
            let id = try context.parameters.require("id")
            let rootCause = try await formFields(request)["rootCause"] ?? ""
            return try await act(request, context, controller, id) { who in
                try await controller.apply { core, now in try core.incidentResolved(id, by: who, rootCause: rootCause, at: now) }
            }
        }
    }

    // MARK: Building blocks

    static func viewer(_ context: APIRequestContext, _ controller: Controller) async throws -> DashboardViewer {
        try APIServer.require(.trainingRead, context)
        let token = context.token!
        return DashboardViewer(name: token.name, canAct: token.allows(.incidentAck), canReadDatasets: token.allows(.datasetRead),
                               role: await controller.isLeader ? "leader" : "standby (read-only view)")
    }

    /// The fleet as the pages show it, built at most once a second whatever the number of open pages (building it
    /// walks every job inside the controller's actor, where events wait meanwhile).
    static func fleetSnapshot(_ controller: Controller) async -> DashboardPages.FleetSnapshot {
        if let cached = controller.dashboardFleet.fresh() { return cached }
        let snapshot = await buildFleetSnapshot(controller)
        controller.dashboardFleet.store(snapshot)
        return snapshot
    }

    private static func buildFleetSnapshot(_ controller: Controller) async -> DashboardPages.FleetSnapshot {
        let now = controller.now()
        return await controller.read { core in
            let nodes = core.nodes
            return DashboardPages.FleetSnapshot(
                nodes: nodes.map(NodeView.init),
                draining: Set(nodes.map(\.id).filter { core.drainProgress($0).map { !$0.done } ?? false }),
                datasets: core.datasets.map(DatasetView.init),
                incidents: core.incidents.filter { $0.status != .resolved }.map(IncidentView.init),
                jobs: DashboardPages.fleetJobs(core.unorderedJobs).map(JobView.init), jobCount: core.unorderedJobs.count, now: now)
        }
    }

    struct IncidentSections: Sendable { var incident: IncidentView; var attached: [IncidentView]; var report: String? }

    static func incidentSections(_ id: String, _ controller: Controller) async -> IncidentSections? {
        guard let incident = await controller.incident(id) else { return nil }
        let (attached, targets) = await controller.read { core in
            (core.incidents.filter { $0.parentID == id }.map(IncidentView.init), core.policy.escalation.quickFixTargets)
        }
        return IncidentSections(incident: IncidentView(incident), attached: attached,
                                report: PostIncidentReport(incident, targets: targets)?.markdown)
    }

    /// A button's POST: the scope, a same-origin check (the cookie is SameSite=Strict already; a browser's Origin
    /// header naming another site is refused too), the change, then back to the incident's page.
    static func act(_ request: Request, _ context: APIRequestContext, _ controller: Controller, _ id: String,
                    _ change: @Sendable (String) async throws -> Void) async throws -> Response {
        try APIServer.require(.incidentAck, context)
        if let origin = request.headers[.origin], let host = request.head.authority,
           URL(string: origin).flatMap({ url in url.host.map { h in url.port.map { "\(h):\($0)" } ?? h } }) != host {
            return html(message("Refused", "This form was sent from another site (\(origin))."), status: .forbidden)
        }
        do {
            try await change(context.token?.name ?? "dashboard")
        } catch let error as OperatorError {
            return html(message("Not done", error.message, back: "/ui/incidents/\(id)"), status: .conflict)
        } catch let error as Controller.NotLeader {
            return html(message("Not done", error.description, back: "/ui/incidents/\(id)"), status: .serviceUnavailable)
        } catch let error as Controller.StateUnavailable {
            return html(message("Not done", error.description, back: "/ui/incidents/\(id)"), status: .serviceUnavailable)
        }
        return redirect("/ui/incidents/\(id)")
    }

    static func loggedIn(token: String, request: Request) -> Response {
        var response = redirect("/ui/")
        response.setCookie(cookie(value: Data(token.utf8).base64URL, request: request, maxAge: 86_400))
        return response
    }

    /// HttpOnly, SameSite=Strict, Path=/ui; Secure when the page came over TLS (a proxy in front says so with
    /// `X-Forwarded-Proto: https`).
    static func cookie(value: String, request: Request, maxAge: Int) -> Cookie {
        let secure = request.head.scheme == "https" || request.headers[HTTPField.Name("X-Forwarded-Proto")!]?.lowercased() == "https"
        return Cookie(name: cookieName, value: value, maxAge: maxAge, path: "/ui", secure: secure, httpOnly: true, sameSite: .strict)
    }

    /// The token a dashboard request's cookie carries.
    static func cookieToken(_ request: Request) -> String? {
        guard let value = request.cookies[cookieName]?.value, !value.isEmpty, let data = Data(base64URL: value) else { return nil }
        return String(data: data, encoding: .utf8)
    }

    /// A form's fields (`application/x-www-form-urlencoded`, as Hummingbird decodes it); none when it does not decode.
    static func formFields(_ request: Request) async throws -> [String: String] {
        let text = String(buffer: try await request.body.collect(upTo: 64 << 10))
        return (try? URLEncodedFormDecoder().decode([String: String].self, from: text)) ?? [:]
    }

    /// The last 40 lines of a job's output, asked of its agent; nil when it did not answer.
    static func logTail(_ id: String, _ controller: Controller) async -> [String]? {
        (try? await controller.logs(jobID: id, tail: 40)).flatMap { $0.error.isEmpty ? $0.lines : nil }
    }

    /// The sections that differ from what was sent last, as one SSE event; nil when none changed.
    static func changed(_ sections: [String: String], since last: inout [String: String]) -> String? {
        let diff = sections.filter { last[$0.key] != $0.value }
        guard !diff.isEmpty else { return nil }
        last.merge(diff) { _, new in new }
        guard let data = try? JSONSerialization.data(withJSONObject: diff, options: [.sortedKeys, .withoutEscapingSlashes]), let json = String(data: data, encoding: .utf8) else { return nil }
        return "event: sections\ndata: \(json)\n\n"
    }

    /// A server-sent event stream: `body` sends events (nil: nothing changed) until it returns or the client leaves.
    /// After 15 s without an event a comment goes out instead: it keeps proxies from closing the stream, and a
    /// client that left is noticed then (the write fails), which ends `body`.
    static func stream(_ body: @escaping @Sendable (_ send: @Sendable (String?) async throws -> Void) async throws -> Void) -> Response {
        Response(
            status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-store", HTTPField.Name("X-Accel-Buffering")!: "no"],
            body: ResponseBody { writer in
                let (events, continuation) = AsyncStream.makeStream(of: String.self, bufferingPolicy: .bufferingNewest(16))
                let producer = Task {
                    let lastSent = Mutex(ContinuousClock.now)
                    try? await body { event in
                        try Task.checkCancellation()
                        let quiet = lastSent.withLock { ContinuousClock.now - $0 > .seconds(15) }
                        guard let text = event ?? (quiet ? ": keep-alive\n\n" : nil) else { return }
                        lastSent.withLock { $0 = .now }
                        continuation.yield(text)
                    }
                    continuation.finish()
                }
                defer { producer.cancel() }
                try await writer.write(ByteBuffer(string: "retry: 2000\n\n"))
                for await event in events {
                    try await writer.write(ByteBuffer(string: event))
                }
                try await writer.finish(nil)
            })
    }

    static func html(_ text: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store",
                                           HTTPField.Name("Content-Security-Policy")!: "default-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'"],
                 body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    static func asset(_ text: String, _ type: String) -> Response {
        Response(status: .ok, headers: [.contentType: type, .cacheControl: "max-age=300"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    static func redirect(_ location: String) -> Response {
        Response(status: .seeOther, headers: [.location: location])
    }

    static func message(_ title: String, _ text: String, back: String = "/ui/") -> String {
        """
        <!doctype html><html lang="en"><head><meta charset="utf-8"><title>\(HTML.escape(title)) · Archon Fleet</title>
        <link rel="stylesheet" href="/ui/static/archon.css"></head><body><main><h1>\(HTML.escape(title))</h1>
        <p class="error">\(HTML.escape(text))</p><p><a href="\(HTML.escape(back))">Back</a></p></main></body></html>
        """
    }

    static func notFound(_ kind: String, _ id: String) -> Response {
        html(message("Not found", "No \(kind) '\(id)'."), status: .notFound)
    }
}

extension Data {
    /// RFC 4648 §5 without padding: what a cookie value may hold.
    var base64URL: String {
        base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    init?(base64URL text: String) {
        var plain = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        plain += String(repeating: "=", count: (4 - plain.count % 4) % 4)
        self.init(base64Encoded: plain)
    }
}
