import ArchonCore
import ArchonModel
import Foundation
public import Hummingbird
public import Logging
import Metrics
public import Prometheus

/// The request context of the API: who is calling (the bearer token's entry), set by the auth middleware.
public struct APIRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public var token: APIToken?

    public init(source: Source) {
        coreContext = .init(source: source)
        token = nil
    }
}

/// 401 without a known bearer token; public paths (health, readiness, metrics, the dashboard's login page and
/// assets) need none. Dashboard pages (`/ui/…`) also take the token from the cookie the login form sets, and send a
/// browser without one to the login page.
struct BearerAuth: RouterMiddleware {
    typealias Context = APIRequestContext
    let tokens: [APIToken]
    static let publicPaths: Set<String> = ["/healthz", "/readyz", "/metrics"]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        if Self.publicPaths.contains(path) || Dashboard.publicPaths.contains(path) { return try await next(request, context) }
        let dashboard = path == "/ui" || path.hasPrefix("/ui/")
        let presented: String
        if let header = request.headers[.authorization], header.hasPrefix("Bearer ") {
            presented = String(header.dropFirst("Bearer ".count))
        } else if dashboard, let token = Dashboard.cookieToken(request) {
            presented = token
        } else if dashboard {
            return request.method == .get ? Dashboard.redirect("/ui/login") : APIServer.error(.unauthorized, "log in first: /ui/login")
        } else {
            return APIServer.error(.unauthorized, "missing bearer token: send 'Authorization: Bearer <token>'")
        }
        guard let token = Self.match(presented, in: tokens) else {
            return dashboard && request.method == .get ? Dashboard.redirect("/ui/login") : APIServer.error(.unauthorized, "unknown bearer token")
        }
        var context = context
        context.token = token
        return try await next(request, context)
    }

    /// The configured token `presented` is. Hashes what was presented and compares it with every configured hash,
    /// every byte of each: how long this takes says nothing about which token, or how much of one, was guessed.
    static func match(_ presented: String, in tokens: [APIToken]) -> APIToken? {
        let digest = APIToken.sha256(of: presented)
        var found: APIToken?
        for token in tokens {
            let match = token.matches(digest: digest)
            if match, found == nil { found = token }
        }
        return found
    }
}

/// The HTTP API (see docs/openapi.yaml), shaped after the runbook's calls.
public enum APIServer {
    /// Every route, for the OpenAPI check: method and path as in docs/openapi.yaml.
    public static let routes: [(method: String, path: String)] = [
        ("POST", "/v1/training/jobs"), ("POST", "/v1/training/jobs/validate"), ("GET", "/v1/training/jobs"),
        ("GET", "/v1/training/jobs/{id}"), ("GET", "/v1/training/jobs/{id}/logs"), ("POST", "/v1/training/jobs/{id}/stop"),
        ("GET", "/v1/nodes"), ("POST", "/v1/nodes/{id}/cordon"), ("POST", "/v1/nodes/{id}/uncordon"),
        ("POST", "/v1/nodes/{id}/drain"), ("GET", "/v1/nodes/{id}/drain"),
        ("GET", "/v1/datasets"), ("GET", "/v1/datasets/{id}"), ("POST", "/v1/datasets"), ("POST", "/v1/datasets/{id}/resume"),
        ("GET", "/v1/incidents"), ("GET", "/v1/incidents/{id}"), ("POST", "/v1/incidents/{id}/ack"),
        ("POST", "/v1/incidents/{id}/resolve"), ("GET", "/v1/incidents/{id}/report"),
        ("GET", "/v1/silences"), ("POST", "/v1/silences"), ("POST", "/v1/silences/{id}/expire"),
        ("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics"),
    ]

    /// The dashboard's routes (HTML and server-sent events for browsers, docs/dashboard.md): not part of the API
    /// contract, all under `/ui`.
    public static let dashboardRoutes: [(method: String, path: String)] = [
        ("GET", "/ui"), ("GET", "/ui/login"), ("POST", "/ui/login"), ("POST", "/ui/logout"), ("GET", "/ui/live"),
        ("GET", "/ui/jobs/{id}"), ("GET", "/ui/live/jobs/{id}"), ("GET", "/ui/incidents/{id}"), ("GET", "/ui/live/incidents/{id}"),
        ("POST", "/ui/incidents/{id}/ack"), ("POST", "/ui/incidents/{id}/resolve"),
        ("GET", "/ui/static/archon.css"), ("GET", "/ui/static/archon.js"),
    ]

    public static func router(controller: Controller, registry: PrometheusCollectorRegistry) -> Router<APIRequestContext> {
        let router = Router(context: APIRequestContext.self)
        router.add(middleware: APIErrorMiddleware())
        router.add(middleware: BearerAuth(tokens: controller.config.tokens))

        router.get("healthz") { _, _ in json(["status": "ok"]) }
        router.get("readyz") { _, _ in
            let leader = await controller.isLeader
            let connected = await controller.natsConnected
            let problem = await controller.stateProblem
            let body = ReadinessView(role: leader ? "leader" : "standby", nats: connected ? "connected" : "disconnected",
                                     roleSince: await controller.roleSinceMs, state: problem.map { "unavailable: \($0)" } ?? "ok",
                                     assignments: controller.assignmentsSigned
                                         ? "signed" : "unsigned: no assignmentSigningKeyFile configured; agents holding a public key refuse them")
            return json(body, status: connected && problem == nil ? .ok : .serviceUnavailable)
        }
        router.get("metrics") { _, _ in metrics(registry) }

        let jobs = router.group("v1/training/jobs")
        jobs.get { _, context in
            try require(.trainingRead, context)
            return json(await controller.read { $0.jobs.map(JobView.init) })
        }
        jobs.post { request, context in
            try require(.trainingStart, context)
            let spec = try await jobSpec(request)
            if await controller.read({ $0.job(spec.id) }) != nil {
                return error(.conflict, "job '\(spec.id)' exists; choose another id or stop it first")
            }
            if spec.id == "validate" { return error(.conflict, "the id 'validate' is taken: /v1/training/jobs/validate is the validation route") }
            let actions = try await controller.apply { core, now in core.jobSubmitted(spec, at: now) }
            for case .rejectJob(_, let problems, _) in actions {
                let fleet = problems.allSatisfy { isFleetRefusal($0, in: spec) }
                return json(APIErrorBody(error: "job '\(spec.id)' is not \(fleet ? "accepted by this fleet" : "valid"): \(problems.count) problem(s)",
                                         details: problems.map(\.description)),
                            status: fleet ? .conflict : .unprocessableContent)
            }
            guard let job = await controller.read({ $0.job(spec.id) }) else {
                return error(.internalServerError, "job '\(spec.id)' was accepted but is not in the state")
            }
            return json(JobView(job), status: .created)
        }
        jobs.post("validate") { request, context in
            try require(.trainingRead, context)
            let spec = try await jobSpec(request)
            let problems = await controller.read { $0.validate(spec) }
            // A malformed spec is refused like a malformed request; a well-formed one gets the fleet's verdict.
            let malformed = problems.filter { !isFleetRefusal($0, in: spec) }
            guard malformed.isEmpty else {
                return json(InvalidSpecBody(error: "job '\(spec.id)' is not valid: \(malformed.count) problem(s)", problems: problems),
                            status: .unprocessableContent)
            }
            return json(ValidationView(problems: problems))
        }
        jobs.get(":id") { _, context in
            try require(.trainingRead, context)
            let id = try context.parameters.require("id")
            // `validate` is no job id (submission refuses it): GET is a method that path does not have.
            if id == "validate" { return methodNotAllowed("GET", "/v1/training/jobs/validate") }
            guard let job = await controller.job(id) else { return notFound("job", id) }
            return json(JobView(job))
        }
        jobs.get(":id/logs") { request, context in
            try require(.trainingRead, context)
            let id = try context.parameters.require("id")
            let tailText = request.uri.queryParameters.get("tail") ?? "100"
            guard let tail = Int(tailText), (1...10_000).contains(tail) else {
                return error(.unprocessableContent, "tail must be a whole number of lines from 1 to 10000, got '\(tailText.prefix(40))'")
            }
            guard await controller.job(id) != nil else { return notFound("job", id) }
            do {
                let reply = try await controller.logs(jobID: id, tail: tail)
                if !reply.error.isEmpty { return error(.notFound, reply.error) }
                return json(["lines": reply.lines])
            } catch {
                return APIServer.error(.badGateway, "the agent of job '\(id)' did not answer: \(error)")
            }
        }
        jobs.post(":id/stop") { _, context in
            try require(.trainingStart, context)
            let id = try context.parameters.require("id")
            let who = context.token?.name ?? "api"
            try await controller.apply { core, now in try core.jobStopRequested(id, by: who, at: now) }
            guard let job = await controller.read({ $0.job(id) }) else { return notFound("job", id) }
            return json(JobView(job))
        }

        let nodes = router.group("v1/nodes")
        nodes.get { _, context in
            try require(.trainingRead, context)
            return json(await controller.read { $0.nodes.map(NodeView.init) })
        }
        nodes.post(":id/cordon") { request, context in
            try require(.admin, context)
            let id = try context.parameters.require("id")
            let who = context.token?.name ?? "api"
            let note = try await body(ReasonBody.self, request).reason ?? ""
            try await controller.apply { core, now in try core.nodeCordoned(id, by: who, reason: note, at: now) }
            guard let node = await controller.read({ $0.node(id) }) else { return notFound("node", id) }
            return json(NodeView(node))
        }
        nodes.post(":id/uncordon") { _, context in
            try require(.admin, context)
            let id = try context.parameters.require("id")
            let who = context.token?.name ?? "api"
            try await controller.apply { core, now in try core.nodeUncordoned(id, by: who, at: now) }
            guard let node = await controller.read({ $0.node(id) }) else { return notFound("node", id) }
            return json(NodeView(node))
        }

        nodes.post(":id/drain") { request, context in
            try require(.admin, context)
            let id = try context.parameters.require("id")
            let who = context.token?.name ?? "api"
            let note = try await body(ReasonBody.self, request).reason ?? ""
            try await controller.apply { core, now in try core.nodeDrainRequested(id, by: who, reason: note, at: now) }
            guard let progress = await controller.read({ $0.drainProgress(id) }) else { return notFound("node", id) }
            return json(DrainView(progress), status: .accepted)
        }
        nodes.get(":id/drain") { _, context in
            try require(.trainingRead, context)
            let id = try context.parameters.require("id")
            guard await controller.read({ $0.node(id) }) != nil else { return notFound("node", id) }
            guard let progress = await controller.read({ $0.drainProgress(id) }) else {
                return error(.notFound, "node '\(id)' was never drained; drain it with POST /v1/nodes/\(id)/drain")
            }
            return json(DrainView(progress))
        }

        let datasets = router.group("v1/datasets")
        datasets.get { _, context in
            try require(.datasetRead, context)
            return json(await controller.read { $0.datasets.map(DatasetView.init) })
        }
        datasets.get(":id") { _, context in
            try require(.datasetRead, context)
            let id = try context.parameters.require("id")
            guard let dataset = await controller.read({ $0.dataset(id) }) else { return notFound("dataset", id) }
            return json(DatasetView(dataset))
        }
        datasets.post { request, context in
            try require(.admin, context)
            let dataset = try await body(Dataset.self, request)
            guard (1...128).contains(dataset.id.utf8.count), dataset.id.utf8.allSatisfy(isDatasetIDByte) else {
                return APIServer.error(.unprocessableContent, "dataset id must be 1-128 of A-Z a-z 0-9 _ . -")
            }
            try await controller.apply { core, now in core.datasetRegistered(dataset, at: now) }
            guard let record = await controller.read({ $0.dataset(dataset.id) }) else { return notFound("dataset", dataset.id) }
            return json(DatasetView(record), status: .created)
        }
        datasets.post(":id/resume") { _, context in
            try require(.admin, context)
            let id = try context.parameters.require("id")
            let who = context.token?.name ?? "api"
            try await controller.apply { core, now in try core.datasetResumed(id, by: who, at: now) }
            guard let record = await controller.read({ $0.dataset(id) }) else { return notFound("dataset", id) }
            return json(DatasetView(record))
        }

        let incidents = router.group("v1/incidents")
        incidents.get { _, context in
            try require(.trainingRead, context)
            return json(await controller.read { $0.incidents.reversed().map(IncidentView.init) })
        }
        incidents.get(":id") { _, context in
            try require(.trainingRead, context)
            let id = try context.parameters.require("id")
            guard let incident = await controller.incident(id) else { return notFound("incident", id) }
            return json(IncidentView(incident))
        }
        incidents.post(":id/ack") { _, context in
            try require(.incidentAck, context)
            let id = try context.parameters.require("id")
            let who = context.token?.name ?? "api"
            try await controller.apply { core, now in try core.incidentAcknowledged(id, by: who, at: now) }
            guard let incident = await controller.read({ $0.incident(id) }) else { return notFound("incident", id) }
            return json(IncidentView(incident))
        }
        incidents.post(":id/resolve") { request, context in
            try require(.incidentAck, context)
            let id = try context.parameters.require("id")
            let who = context.token?.name ?? "api"
            let rootCause = try await body(RootCauseBody.self, request).rootCause ?? ""
            try await controller.apply { core, now in try core.incidentResolved(id, by: who, rootCause: rootCause, at: now) }
            guard let incident = await controller.read({ $0.incident(id) }) else { return notFound("incident", id) }
            return json(IncidentView(incident))
        }
        incidents.get(":id/report") { _, context in
            try require(.trainingRead, context)
            let id = try context.parameters.require("id")
            guard let incident = await controller.incident(id) else { return notFound("incident", id) }
            let targets = await controller.read { $0.policy.escalation.quickFixTargets }
            guard let report = PostIncidentReport(incident, targets: targets) else {
                return error(.conflict, "incident '\(id)' is not resolved yet; its post-incident record exists once it is")
            }
            return Response(status: .ok, headers: [.contentType: "text/markdown; charset=utf-8"],
                            body: .init(byteBuffer: ByteBuffer(string: report.markdown)))
        }

        let silences = router.group("v1/silences")
        silences.get { _, context in
            try require(.trainingRead, context)
            let now = controller.now()
            return json(await controller.read { core in core.silences(at: now).map(SilenceView.init) })
        }
        silences.post { request, context in
            try require(.incidentAck, context)
            let body = try await body(SilenceRequest.self, request)
            let id = "SIL-" + String(UInt32.random(in: 0x1000_0000...UInt32.max), radix: 16)
            let who = context.token?.name ?? "api"
            var cause: IncidentCause?
            if let text = body.cause {
                guard let parsed = IncidentCause(rawValue: text) else {
                    return error(.unprocessableContent, "cause must be one of \(IncidentCause.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                cause = parsed
            }
            if [body.node, body.job, body.dataset].contains("") { return error(.unprocessableContent, "a matcher given must not be empty") }
            guard (body.endsAt == nil) != (body.durationSeconds == nil) else {
                return error(.unprocessableContent, "give exactly one of endsAt and durationSeconds")
            }
            if let seconds = body.durationSeconds, !(1...SilenceRequest.maxDurationSeconds).contains(seconds) {
                return error(.unprocessableContent, "durationSeconds must be 1...\(SilenceRequest.maxDurationSeconds) (30 days)")
            }
            guard (body.startsAt ?? 0) >= 0, (body.endsAt ?? 0) >= 0 else { return error(.unprocessableContent, "startsAt and endsAt are Unix milliseconds, not negative") }
            try await controller.apply { [cause] core, now in
                let start = body.startsAt ?? now
                let duration = (body.durationSeconds ?? 0) * 1000
                let end = body.endsAt ?? (start > Int64.max - duration ? Int64.max : start + duration)
                let silence = Silence(
                    id: id, node: body.node ?? "", job: body.job ?? "", dataset: body.dataset ?? "", cause: cause, startsAtMs: start,
                    endsAtMs: end, reason: body.reason, createdBy: who, createdAtMs: now)
                return try core.silenceAdded(silence, at: now)
            }
            guard let silence = await controller.read({ $0.silence(id) }) else { return notFound("silence", id) }
            return json(SilenceView(silence), status: .created)
        }
        silences.post(":id/expire") { _, context in
            try require(.incidentAck, context)
            let id = try context.parameters.require("id")
            try await controller.apply { core, now in try core.silenceExpired(id, at: now) }
            guard let silence = await controller.read({ $0.silence(id) }) else { return notFound("silence", id) }
            return json(SilenceView(silence))
        }
        Dashboard.addRoutes(to: router, controller: controller)
        return router
    }

    /// The application serving the API; `onRunning` learns the bound port (for port 0).
    public static func application(
        controller: Controller, registry: PrometheusCollectorRegistry, logger: Logger,
        onRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        Application(
            router: router(controller: controller, registry: registry),
            configuration: .init(address: .hostname(controller.config.httpHost, port: controller.config.httpPort), serverName: "archon-controller"),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? 0) },
            logger: logger)
    }

    /// `GET /metrics` and `GET /healthz` alone, no token: what `archon agent --metrics-port` serves for Prometheus.
    public static func metricsApplication(
        registry: PrometheusCollectorRegistry, host: String, port: Int, logger: Logger,
        onRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        let router = Router()
        router.get("healthz") { _, _ in json(["status": "ok"]) }
        router.get("metrics") { _, _ in metrics(registry) }
        return Application(
            router: router, configuration: .init(address: .hostname(host, port: port), serverName: "archon-agent"),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? 0) }, logger: logger)
    }

    // MARK: Helpers

    /// `GET /metrics`: the registry in Prometheus' text format.
    static func metrics(_ registry: PrometheusCollectorRegistry) -> Response {
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"], body: .init(byteBuffer: ByteBuffer(bytes: buffer)))
    }

    static func require(_ scope: Scope, _ context: APIRequestContext) throws {
        guard let token = context.token else { throw HTTPError(.unauthorized, message: "missing bearer token") }
        guard token.allows(scope) else {
            throw HTTPError(.forbidden, message: "token '\(token.name)' lacks the scope '\(scope.rawValue)' this call needs")
        }
    }

    static func json<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) -> Response {
        let data = (try? JSONEncoder.archon.encode(value)) ?? Data("{}".utf8)
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func error(_ status: HTTPResponse.Status, _ message: String) -> Response {
        json(APIErrorBody(error: message), status: status)
    }

    static func notFound(_ kind: String, _ id: String) -> Response {
        error(.notFound, "\(kind) '\(id)' not found")
    }

    /// A spec problem the fleet's state or policy causes — an unknown or unreadable dataset, no node big enough, a
    /// command or variable the execution policy refuses: the spec is well-formed and the fleet refuses it (409). Any
    /// other problem makes the spec malformed (422), which docs/openapi.yaml's JobSpec schema expresses.
    static func isFleetRefusal(_ problem: SpecProblem, in spec: JobSpec) -> Bool {
        switch problem.field {
        case "team", "config.dataset", "config.resources": true
        case "command": !spec.command.isEmpty  // the execution policy judges the program; none at all is malformed
        default: problem.field.hasPrefix("env.")
        }
    }

    /// The methods ``routes`` serve on `path`, sorted; empty for an unknown path. `{id}` stands for one segment, and a
    /// literal path (`/v1/training/jobs/validate`) is not also `{id}`.
    static func methods(servingPath path: String) -> [String] {
        let segments = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        func matches(_ route: (method: String, path: String), literally: Bool) -> Bool {
            let template = route.path.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
            return template.count == segments.count
                && zip(template, segments).allSatisfy { t, s in t == "{id}" && !literally ? !s.isEmpty : t == s }
        }
        let literal = routes.filter { matches($0, literally: true) }
        return Set((literal.isEmpty ? routes.filter { matches($0, literally: false) } : literal).map(\.method)).sorted()
    }

    /// 405 with the `Allow` header of the methods `path` has.
    static func methodNotAllowed(_ method: String, _ path: String) -> Response {
        let allowed = methods(servingPath: path).joined(separator: ", ")
        var response = error(.methodNotAllowed, "\(method) is not allowed on \(path); allowed: \(allowed)")
        response.headers[.allow] = allowed
        return response
    }

    /// `[A-Za-z0-9_.-]`: what a dataset id is made of.
    static func isDatasetIDByte(_ b: UInt8) -> Bool {
        (0x30...0x39).contains(b) || (0x41...0x5A).contains(b) || (0x61...0x7A).contains(b) || b == 0x5F || b == 0x2D || b == 0x2E
    }

    /// The body of `POST /v1/nodes/{id}/cordon` and `/drain`.
    struct ReasonBody: Decodable { var reason: String? }
    /// The body of `POST /v1/incidents/{id}/resolve`.
    struct RootCauseBody: Decodable { var rootCause: String? }

    /// A JSON object body (an empty body is `{}`) with no field `T` does not decode, as `T`; anything else is 422
    /// saying what was wrong. Bodies over 1 MiB are 413.
    static func body<T: Decodable>(_ type: T.Type, _ request: Request) async throws -> T {
        var data = Data(buffer: try await request.body.collect(upTo: 1 << 20))
        if data.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) { data = Data("{}".utf8) }
        guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw HTTPError(.unprocessableContent, message: "the body must be a JSON object")
        }
        let nulls = JobSpecFile.nullFields(object)
        guard nulls.isEmpty else { throw HTTPError(.unprocessableContent, message: "\(nulls.joined(separator: ", ")) must not be null (leave a field out instead)") }
        do {
            let value = try JSONDecoder().decode(T.self, from: data)
            let fields = Set(Mirror(reflecting: value).children.compactMap(\.label))  // the stored properties are the JSON keys
            let unknown = Set(object.keys).subtracting(fields).sorted()
            guard unknown.isEmpty else {
                throw HTTPError(.unprocessableContent, message: "unknown field\(unknown.count == 1 ? "" : "s") \(unknown.joined(separator: ", ")); known: \(fields.sorted().joined(separator: ", "))")
            }
            return value
        } catch let error as HTTPError {
            throw error
        } catch {
            throw HTTPError(.unprocessableContent, message: "the body does not fit the schema in docs/openapi.yaml: \(error)")
        }
    }

    /// A job spec from the body: JSON, or YAML (read by Yams).
    static func jobSpec(_ request: Request) async throws -> JobSpec {
        let text = String(buffer: try await request.body.collect(upTo: 4 << 20))
        guard !text.allSatisfy(\.isWhitespace) else { throw HTTPError(.unprocessableContent, message: "a job spec (YAML or JSON) is required") }
        do {
            return try JobSpecFile.parse(text)
        } catch {
            throw HTTPError(.unprocessableContent, message: "\(error)")
        }
    }
}

/// Errors from the core and the controller, as HTTP answers with a JSON body.
struct APIErrorMiddleware: RouterMiddleware {
    typealias Context = APIRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as OperatorError {
            let status: HTTPResponse.Status = switch error.code {
            case .incidentResolved, .silenceRefused: .conflict
            case .invalidSilence: .unprocessableContent
            default: .notFound
            }
            return APIServer.error(status, error.message)
        } catch let error as Controller.NotLeader {
            return APIServer.error(.serviceUnavailable, error.description)
        } catch let error as Controller.StateUnavailable {
            return APIServer.error(.serviceUnavailable, error.description)
        } catch let error as HTTPError where error.status == .notFound && error.body == nil {
            // The router's own 404: no such route (ours always name the missing object). A known path asked with
            // another method is 405, with the methods it has.
            if !APIServer.methods(servingPath: request.uri.path).isEmpty {
                return APIServer.methodNotAllowed("\(request.method)", request.uri.path)
            }
            return APIServer.error(.notFound, "no route \(request.method) \(request.uri.path); the API's routes are in docs/openapi.yaml")
        } catch let error as HTTPError {
            return APIServer.error(error.status, error.body ?? "\(error.status)")
        }
    }
}
