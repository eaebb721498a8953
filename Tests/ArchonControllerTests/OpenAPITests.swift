import ArchonController
import ArchonModel
import Foundation
import Logging
import Testing

/// docs/openapi.yaml, `APIServer.routes` and the router agree: what is documented is served, what is served
/// is documented.
@Suite("OpenAPI document against the routes served", .serialized)
struct OpenAPITests {
    /// (method, path) of every operation in docs/openapi.yaml, e.g. ("GET", "/v1/training/jobs/{id}").
    static func documentedOperations() throws -> Set<String> {
        let text = try String(contentsOfFile: "\(repositoryRoot)/docs/openapi.yaml", encoding: .utf8)
        var operations: Set<String> = []
        var inPaths = false
        var path: String?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line == "paths:" { inPaths = true; continue }
            guard inPaths else { continue }
            if let first = line.first, first != " " { break }  // the next top-level key
            if line.hasPrefix("  /"), line.hasSuffix(":"), !line.hasPrefix("   ") {
                path = String(line.dropFirst(2).dropLast())
            } else if let path, line.hasPrefix("    "), !line.hasPrefix("     "),
                      let method = ["get", "post", "put", "patch", "delete"].first(where: { line == "    \($0):" }) {
                operations.insert("\(method.uppercased()) \(path)")
            }
        }
        return operations
    }

    static var listedRoutes: Set<String> { Set(APIServer.routes.map { "\($0.method) \($0.path)" }) }

    @Test func everyListedRouteIsDocumentedAndEveryDocumentedOperationIsListed() throws {
        let documented = try Self.documentedOperations()
        #expect(documented.count >= 20, "the parser found only \(documented.sorted())")
        #expect(Self.listedRoutes.subtracting(documented).sorted() == [], "served but not in docs/openapi.yaml")
        #expect(documented.subtracting(Self.listedRoutes).sorted() == [], "documented but not in APIServer.routes")
        #expect(APIServer.routes.count == Self.listedRoutes.count, "APIServer.routes lists a route twice")
    }

    @Test func theRouterServesExactlyTheListedRoutes() throws {
        var logger = Logger(label: "test.openapi")
        logger.logLevel = .critical
        let controller = try Controller(config: ControllerConfig(tokens: [adminToken.entry]), logger: logger)
        let router = APIServer.router(controller: controller, registry: metricsRegistry)
        var served = Set(router.routes.map { "\($0.method.rawValue) \($0.path.description)" })
        // The dashboard's pages are listed apart (they are for browsers, not the API contract), all under /ui.
        let dashboard = Set(APIServer.dashboardRoutes.map { "\($0.method) \($0.path)" })
        #expect(dashboard.allSatisfy { $0.contains(" /ui") } && dashboard.isSubset(of: served), "\(dashboard.subtracting(served).sorted())")
        served.subtract(dashboard)
        #expect(served.subtracting(Self.listedRoutes).sorted() == [], "the router serves routes APIServer.routes does not list")
        #expect(Self.listedRoutes.subtracting(served).sorted() == [], "APIServer.routes lists routes the router does not serve")
    }

    /// A 404 that is not our answer about a missing object: the route itself is missing.
    static func routeIsMissing(_ answer: HTTP.Answer, id: String?) -> Bool {
        guard answer.status == 404 else { return false }
        guard let id, let body = try? answer.json(APIErrorBody.self) else { return true }
        return !body.error.contains("'\(id)'")
    }

    @Test func everyListedRouteAnswersOverHTTPWithExistingAndMissingIDs() async throws {
        let fleet = try await FleetHarness()
        let controller = try await fleet.startController()
        let api = HTTP(base: controller.api, token: adminToken.token)
        let agent = try await fleet.announcedNode("n1", api: api)
        #expect(try await api.call("POST", "/v1/training/jobs", body: faultSpec("api-job", fault: "missing_dataset")).status == 201)
        try await agent.run("api-job", attempt: 1, epochs: 0, exit: JobExited(exitCode: 1, failureClass: .datasetNotFound, detail: "FileNotFoundError"))
        let incident = try await waitFor("an incident") { try await api.call("GET", "/v1/incidents").json([IncidentView].self).first }
        let silenceBody = #"{"node": "n1", "durationSeconds": 3600, "reason": "maintenance"}"#
        let silence = try await api.call("POST", "/v1/silences", body: silenceBody).json(SilenceView.self)

        // The classifier itself: a path nobody serves is "route missing", a missing job is not.
        let noRoute = try await api.call("GET", "/v1/no-such-route")
        #expect(Self.routeIsMissing(noRoute, id: nil))
        #expect(try noRoute.json(APIErrorBody.self).error.contains("no route GET /v1/no-such-route"), "\(noRoute.text)")
        #expect(Self.routeIsMissing(try await api.call("GET", "/v1/training/jobs/zz/no-such-verb"), id: "zz"))
        #expect(!Self.routeIsMissing(try await api.call("GET", "/v1/training/jobs/zz"), id: "zz"))

        func existingID(_ path: String) -> String {
            if path.hasPrefix("/v1/training/jobs") { return "api-job" }
            if path.hasPrefix("/v1/nodes") { return "n1" }
            if path.hasPrefix("/v1/datasets") { return "digits" }
            if path.hasPrefix("/v1/silences") { return silence.id }
            return incident.id
        }
        func body(_ method: String, _ path: String) -> String? {
            guard method == "POST" else { return nil }
            switch path {
            case "/v1/training/jobs": return faultSpec("api-job-2", fault: "none")
            case "/v1/training/jobs/validate": return faultSpec("api-job-3", fault: "none")
            case "/v1/datasets": return #"{"id": "digits-v2", "location": "/data/digits-v2"}"#
            case "/v1/silences": return silenceBody
            default: return "{}"
            }
        }
        // Resolve last, so the report exists; everything else in list order.
        let ordered = APIServer.routes.filter { !$0.path.hasSuffix("/resolve") && !$0.path.hasSuffix("/report") }
            + APIServer.routes.filter { $0.path.hasSuffix("/resolve") } + APIServer.routes.filter { $0.path.hasSuffix("/report") }
        for route in ordered {
            let path = route.path.replacingOccurrences(of: "{id}", with: existingID(route.path))
            let answer = try await api.call(route.method, path, body: body(route.method, route.path))
            #expect(!Self.routeIsMissing(answer, id: nil), "\(route.method) \(path) is not served: \(answer.status) \(answer.text)")
            #expect(answer.status < 500 || route.path.hasSuffix("/logs"), "\(route.method) \(path): \(answer.status) \(answer.text)")
            if route.method == "POST", route.path == "/v1/datasets" {
                // The documented required fields are enough: status defaults to ready.
                #expect(answer.status == 201, "\(answer.text)")
                #expect(try answer.json(DatasetView.self).status == "ready")
            }
            if route.path.contains("{id}") {
                let missing = route.path.replacingOccurrences(of: "{id}", with: "nope-404")
                let answer = try await api.call(route.method, missing, body: body(route.method, route.path))
                #expect(answer.status == 404, "\(route.method) \(missing): \(answer.status) \(answer.text)")
                #expect(!Self.routeIsMissing(answer, id: "nope-404"), "\(route.method) \(missing) should name the missing object: \(answer.text)")
            }
        }
        await controller.stop()
    }
}
