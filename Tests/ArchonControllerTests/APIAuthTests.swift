import ArchonController
import ArchonModel
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Testing

@Suite("API authentication and scopes over real HTTP", .serialized)
struct APIAuthTests {
    /// One call of each route family, the token that lacks its scope, and the scope it needs.
    struct Guarded: Sendable, CustomTestStringConvertible {
        let method: String
        let path: String
        let body: String?
        /// A known token without the scope.
        let lacking: String
        let scope: String
        /// The answer with a token that has it.
        let allowedStatus: Int

        var testDescription: String { "\(method) \(path)" }
    }

    static let datasetBody = #"{"id": "digits-v2", "location": "/data/digits-v2", "status": "ready"}"#

    static let guarded: [Guarded] = [
        Guarded(method: "GET", path: "/v1/training/jobs", body: nil, lacking: "", scope: "training:read", allowedStatus: 200),
        Guarded(method: "POST", path: "/v1/training/jobs", body: faultSpec("auth-job", fault: "none"), lacking: readerToken.token,
                scope: "training:start", allowedStatus: 201),
        Guarded(method: "POST", path: "/v1/training/jobs/auth-seed/stop", body: nil, lacking: readerToken.token,
                scope: "training:start", allowedStatus: 200),
        Guarded(method: "GET", path: "/v1/nodes", body: nil, lacking: "", scope: "training:read", allowedStatus: 200),
        Guarded(method: "POST", path: "/v1/nodes/n1/cordon", body: #"{"reason": "disk check"}"#, lacking: operatorToken.token,
                scope: "admin", allowedStatus: 200),
        Guarded(method: "POST", path: "/v1/nodes/n1/uncordon", body: nil, lacking: operatorToken.token, scope: "admin", allowedStatus: 200),
        Guarded(method: "GET", path: "/v1/datasets", body: nil, lacking: operatorToken.token, scope: "dataset:read", allowedStatus: 200),
        Guarded(method: "POST", path: "/v1/datasets", body: datasetBody, lacking: readerToken.token, scope: "admin", allowedStatus: 201),
        Guarded(method: "GET", path: "/v1/incidents", body: nil, lacking: "", scope: "training:read", allowedStatus: 200),
        Guarded(method: "POST", path: "/v1/incidents/{incident}/ack", body: nil, lacking: readerToken.token,
                scope: "incident:ack", allowedStatus: 200),
        Guarded(method: "POST", path: "/v1/incidents/{incident}/resolve", body: nil, lacking: readerToken.token,
                scope: "incident:ack", allowedStatus: 200),
    ]

    static func expectActionableError(_ answer: HTTP.Answer, _ status: Int, mentioning words: [String], _ what: String) {
        #expect(answer.status == status, "\(what): \(answer.status) \(answer.text)")
        guard let body = try? answer.json(APIErrorBody.self) else {
            Issue.record("\(what): the error is not JSON with an \"error\" field: \(answer.text)")
            return
        }
        for word in words {
            #expect(body.error.contains(word), "\(what): '\(body.error)' should mention '\(word)'")
        }
    }

    @Test func everyRouteFamilyAnswers401403AndThenServesTheRightScope() async throws {
        let fleet = try await FleetHarness()
        let controller = try await fleet.startController()
        let admin = HTTP(base: controller.api, token: adminToken.token)
        let agent = try await fleet.announcedNode("n1", api: admin)
        // A job to stop and an incident to acknowledge and resolve.
        #expect(try await admin.call("POST", "/v1/training/jobs", body: faultSpec("auth-seed", fault: "none")).status == 201)
        #expect(try await admin.call("POST", "/v1/training/jobs", body: faultSpec("auth-nodata", fault: "missing_dataset")).status == 201)
        try await agent.run("auth-nodata", attempt: 1, epochs: 0, exit: JobExited(exitCode: 1, failureClass: .datasetNotFound, detail: "FileNotFoundError"))
        let incident = try await waitFor("an incident") { try await admin.call("GET", "/v1/incidents").json([IncidentView].self).first }

        for route in Self.guarded {
            let path = route.path.replacingOccurrences(of: "{incident}", with: incident.id)
            let what = "\(route.method) \(path)"
            // No token, a malformed header, an unknown token: 401, saying how to authenticate.
            Self.expectActionableError(try await HTTP(base: controller.api, token: nil).call(route.method, path, body: route.body),
                                       401, mentioning: ["Authorization: Bearer"], "\(what) without a token")
            var request = URLRequest(url: URL(string: controller.api + path)!)
            request.httpMethod = route.method
            request.setValue("Basic YWRtaW46c2VjcmV0", forHTTPHeaderField: "Authorization")
            let (data, response) = try await URLSession.shared.data(for: request)
            Self.expectActionableError(HTTP.Answer(status: (response as! HTTPURLResponse).statusCode, body: data),
                                       401, mentioning: ["Bearer"], "\(what) with Basic auth")
            Self.expectActionableError(try await HTTP(base: controller.api, token: "not-a-token").call(route.method, path, body: route.body),
                                       401, mentioning: ["unknown"], "\(what) with an unknown token")
            // A known token without the scope: 403 naming the token and the scope it lacks.
            if !route.lacking.isEmpty {
                let name = [readerToken, operatorToken].first { $0.token == route.lacking }!.name
                Self.expectActionableError(try await HTTP(base: controller.api, token: route.lacking).call(route.method, path, body: route.body),
                                           403, mentioning: [name, route.scope], "\(what) as \(name)")
            }
            // The narrowest token that has the scope (admin for admin routes) succeeds.
            let token = [readerToken, operatorToken, adminToken].first { $0.allows(Scope(rawValue: route.scope)!) }!
            let allowed = try await HTTP(base: controller.api, token: token.token).call(route.method, path, body: route.body)
            #expect(allowed.status == route.allowedStatus, "\(what) as \(token.name): \(allowed.status) \(allowed.text)")
        }

        // The reader reads single objects too.
        #expect(try await HTTP(base: controller.api, token: readerToken.token).call("GET", "/v1/datasets/digits").status == 200)
        #expect(try await HTTP(base: controller.api, token: readerToken.token).call("GET", "/v1/training/jobs/auth-seed").status == 200)
        await controller.stop()
    }

    @Test func healthReadinessAndMetricsNeedNoToken() async throws {
        let fleet = try await FleetHarness()
        let controller = try await fleet.startController()
        let anonymous = HTTP(base: controller.api, token: nil)
        let health = try await anonymous.call("GET", "/healthz")
        #expect(health.status == 200)
        #expect(try health.json([String: String].self)["status"] == "ok")
        let ready = try await waitFor("readyz as leader") { () -> ReadinessView? in
            let answer = try await anonymous.call("GET", "/readyz")
            let body = try answer.json(ReadinessView.self)
            return answer.status == 200 && body.role == "leader" ? body : nil
        }
        #expect(ready.nats == "connected")
        #expect(ready.roleSince > 0)

        // Consume one event so the counter has moved, then read it without a token.
        try await SyntheticAgent(nodeID: "n1", js: fleet.js).publishStatus()
        _ = try await waitFor("node n1") {
            try await HTTP(base: controller.api, token: adminToken.token).call("GET", "/v1/nodes").json([NodeView].self).first { $0.id == "n1" }
        }
        let metrics = try await anonymous.call("GET", "/metrics")
        #expect(metrics.status == 200)
        let line = metrics.text.split(separator: "\n").first { $0.hasPrefix("archon_events_consumed_total ") }
        let value = line.flatMap { Double($0.split(separator: " ").last ?? "") }
        #expect((value ?? 0) >= 1, "archon_events_consumed_total missing or zero in:\n\(metrics.text.prefix(2000))")
        await controller.stop()
    }
}
