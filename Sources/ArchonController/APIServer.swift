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

/// 401 without a known bearer token; public paths (health, readiness, metrics) need none.
struct BearerAuth: RouterMiddleware {
    typealias Context = APIRequestContext
    let tokens: [APIToken]
    static let publicPaths: Set<String> = ["/healthz", "/readyz", "/metrics"]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if Self.publicPaths.contains(request.uri.path) { return try await next(request, context) }
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer ") else {
            return APIServer.error(.unauthorized, "missing bearer token: send 'Authorization: Bearer <token>'")
        }
        // Hash what was presented and compare it with every configured hash, every byte of each: how long this
        // takes says nothing about which token, or how much of one, was guessed.
        let presented = APIToken.sha256(of: String(header.dropFirst("Bearer ".count)))
        var found: APIToken?
        for token in tokens {
            let match = token.matches(digest: presented)
            if match, found == nil { found = token }
        }
        guard let token = found else {
            return APIServer.error(.unauthorized, "unknown bearer token")
        }
        var context = context
        context.token = token
        return try await next(request, context)
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
        router.get("metrics") { _, _ in
            var buffer: [UInt8] = []
            registry.emit(into: &buffer)
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"], body: .init(byteBuffer: ByteBuffer(bytes: buffer)))
        }

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
            let actions = try await controller.apply { core, now in core.jobSubmitted(spec, at: now) }
            for case .rejectJob(_, let problems, _) in actions {
                return json(APIErrorBody(error: "job '\(spec.id)' is not valid: \(problems.count) problem(s)", details: problems.map(\.description)),
                            status: .unprocessableContent)
            }
            guard let job = await controller.read({ $0.job(spec.id) }) else {
                return error(.internalServerError, "job '\(spec.id)' was accepted but is not in the state")
            }
            return json(JobView(job), status: .created)
        }
        jobs.post("validate") { request, context in
            try require(.trainingRead, context)
            let spec = try await jobSpec(request)
            return json(ValidationView(problems: await controller.read { $0.validate(spec) }))
        }
        jobs.get(":id") { _, context in
            try require(.trainingRead, context)
            let id = try context.parameters.require("id")
            guard let job = await controller.job(id) else { return notFound("job", id) }
            return json(JobView(job))
        }
        jobs.get(":id/logs") { request, context in
            try require(.trainingRead, context)
            let id = try context.parameters.require("id")
            let tail = request.uri.queryParameters.get("tail", as: Int.self) ?? 100
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
            let note = (try? await request.decode(as: [String: String].self, context: context))?["reason"] ?? ""
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
            let note = (try? await request.decode(as: [String: String].self, context: context))?["reason"] ?? ""
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
            let dataset: Dataset
            do {
                dataset = try JSONDecoder().decode(Dataset.self, from: Data(buffer: try await request.body.collect(upTo: 1 << 20)))
            } catch {
                return APIServer.error(.unprocessableContent, "a dataset is {\"id\": …, \"location\": …, \"status\": \"ready\"|\"unavailable\" (default ready), \"allowedTeams\": […] (default all)}: \(error)")
            }
            guard dataset.id.range(of: "^[A-Za-z0-9_.-]{1,128}$", options: .regularExpression) != nil else {
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
            let rootCause = (try? await request.decode(as: [String: String].self, context: context))?["rootCause"] ?? ""
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
            let body = try await request.decode(as: SilenceRequest.self, context: context)
            let id = "SIL-" + String(UInt32.random(in: 0x1000_0000...UInt32.max), radix: 16)
            let who = context.token?.name ?? "api"
            var cause: IncidentCause?
            if let text = body.cause, !text.isEmpty {
                guard let parsed = IncidentCause(rawValue: text) else {
                    return error(.unprocessableContent, "cause must be one of \(IncidentCause.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                cause = parsed
            }
            var duration: Int64?
            if let text = body.duration {
                guard let parsed = PolicyDuration(parsing: text), parsed.milliseconds > 0 else { return error(.unprocessableContent, "duration '\(text)' is not a duration like 90m or 2h") }
                duration = parsed.milliseconds
            }
            guard (body.endsAt == nil) != (duration == nil) else { return error(.unprocessableContent, "give exactly one of endsAt and duration") }
            try await controller.apply { [cause, duration] core, now in
                let start = body.startsAt ?? now
                let end = body.endsAt ?? (start > Int64.max - (duration ?? 0) ? Int64.max : start + (duration ?? 0))
                let silence = Silence(
                    id: id, node: body.node ?? "", job: body.job ?? "", dataset: body.dataset ?? "", cause: cause, startsAtMs: start,
                    endsAtMs: end, reason: body.reason, createdBy: who, createdAtMs: now)
                return try core.silenceAdded(silence, at: now)
            }
            guard let silence = await controller.read({ $0.silences(at: .min).first { $0.id == id } }) else { return notFound("silence", id) }
            return json(SilenceView(silence), status: .created)
        }
        silences.post(":id/expire") { _, context in
            try require(.incidentAck, context)
            let id = try context.parameters.require("id")
            try await controller.apply { core, now in try core.silenceExpired(id, at: now) }
            guard let silence = await controller.read({ $0.silence(id) }) else { return notFound("silence", id) }
            return json(SilenceView(silence))
        }
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

    // MARK: Helpers

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

    /// A job spec from the body: JSON, or YAML (the subset in docs/policy.md).
    static func jobSpec(_ request: Request) async throws -> JobSpec {
        let text = String(buffer: try await request.body.collect(upTo: 4 << 20))
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
            case .incidentResolved: .conflict
            case .invalidSilence: .unprocessableContent
            default: .notFound
            }
            return APIServer.error(status, error.message)
        } catch let error as Controller.NotLeader {
            return APIServer.error(.serviceUnavailable, error.description)
        } catch let error as Controller.StateUnavailable {
            return APIServer.error(.serviceUnavailable, error.description)
        } catch let error as HTTPError where error.status == .notFound && error.body == nil {
            // The router's own 404: no such route (ours always name the missing object).
            return APIServer.error(.notFound, "no route \(request.method) \(request.uri.path); the API's routes are in docs/openapi.yaml")
        } catch let error as HTTPError {
            return APIServer.error(error.status, error.body ?? "\(error.status)")
        }
    }
}
