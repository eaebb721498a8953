import ArchonController
import ArchonCore
import ArchonModel
import ArchonNATS
import ArchonWire
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Synchronization
import Testing

/// The dashboard over real HTTP, against a real controller on a real nats-server: login and cookies, each page, the
/// live stream, what a read-only token sees, and a standby's view. The browser test (tests/browser) drives the same
/// pages in Chromium.
@Suite("Dashboard pages, login and live stream over real HTTP", .serialized)
struct DashboardTests {
    @Test func pagesNeedALoginAndTheCookieOrOneTimeLinkProvidesIt() async throws {
        let fleet = try await FleetHarness()
        let running = try await fleet.startController()
        let admin = HTTP(base: running.api, token: adminToken.token)
        _ = try await fleet.announcedNode("n1", api: admin)
        let browser = Browser(base: running.api)

        // Without a token: pages send to the login form, live streams too; assets and the form itself are public.
        var answer = try await browser.get("/ui/")
        #expect(answer.status == 303 && answer.header("Location") == "/ui/login")
        #expect(try await browser.get("/ui/live").header("Location") == "/ui/login")
        #expect(try await browser.get("/ui/login").text.contains(#"<form method="post" action="/ui/login">"#))
        #expect(try await browser.get("/ui/static/archon.js").status == 200)
        #expect(try await browser.post("/ui/incidents/x/ack", form: [:]).status == 401)

        // A wrong token: the form again, saying so; no cookie.
        answer = try await browser.post("/ui/login", form: ["token": "guess"])
        #expect(answer.status == 401 && answer.text.contains("Unknown token") && answer.header("Set-Cookie") == nil)

        // The right one: a cookie only this site's requests carry, then the fleet page.
        answer = try await browser.post("/ui/login", form: ["token": adminToken.token])
        #expect(answer.status == 303 && answer.header("Location") == "/ui/")
        let cookie = try #require(answer.header("Set-Cookie"))
        for attribute in ["archon_token=", "HttpOnly", "SameSite=Strict", "Path=/ui"] {
            #expect(cookie.contains(attribute), "\(cookie) lacks \(attribute)")
        }
        #expect(!cookie.contains("Secure"), "plain HTTP: a Secure cookie would never come back")
        #expect(!cookie.contains(adminToken.token), "the cookie carries the token encoded, not as typed")
        let behindTLS = try await browser.post("/ui/login", form: ["token": adminToken.token], headers: ["X-Forwarded-Proto": "https"])
        #expect(behindTLS.header("Set-Cookie")?.contains("Secure") == true)

        let loggedIn = browser.with(cookie: cookie)
        let page = try await loggedIn.get("/ui/")
        #expect(page.status == 200 && page.text.contains("<td>n1</td>") && page.text.contains(#"data-live="/ui/live""#))
        #expect(page.text.contains(">admin<") && page.text.contains("Log out"))
        // The fleet page's live stream starts with every section.
        let fleetStream = try loggedIn.stream("/ui/live")
        defer { fleetStream.cancel() }
        let sections = try await fleetStream.waitFor("the fleet's sections") { $0.contains("event: sections") && $0.contains(#""nodes":"#) }
        #expect(sections.hasPrefix("retry: 2000") && sections.contains("<td>n1</td>") && sections.contains(#""incidents":"#))
        // The cookie is for the dashboard only: the API still wants a bearer token (no CSRF on /v1).
        #expect(try await loggedIn.get("/v1/nodes").status == 401)

        // A one-time link, as `archon dev` prints: traded once for the cookie, then refused.
        let code = running.controller.dashboardLogins.mint(token: adminToken.token, now: running.controller.now())
        answer = try await browser.get("/ui/login?code=\(code)")
        #expect(answer.status == 303 && answer.header("Location") == "/ui/" && answer.header("Set-Cookie")?.contains("archon_token=") == true)
        answer = try await browser.get("/ui/login?code=\(code)")
        #expect(answer.status == 401 && answer.text.contains("used already"))
        // A code for a token the controller does not know logs nobody in.
        let stranger = running.controller.dashboardLogins.mint(token: "not-configured", now: running.controller.now())
        #expect(try await browser.get("/ui/login?code=\(stranger)").status == 401)

        // Logging out clears the cookie.
        answer = try await loggedIn.post("/ui/logout", form: [:])
        #expect(answer.status == 303 && answer.header("Set-Cookie")?.contains("Max-Age=0") == true)
        await running.stop()
    }

    @Test func jobPageDrawsEveryAttemptWithTheRestartAndGrowsLive() async throws {
        let fleet = try await FleetHarness()
        let running = try await fleet.startController()
        let admin = HTTP(base: running.api, token: adminToken.token)
        let n1 = try await fleet.announcedNode("n1", api: admin)
        let n2 = try await fleet.announcedNode("n2", api: admin)
        #expect(try await admin.call("POST", "/v1/training/jobs", body: faultSpec("dash-oom", fault: "memory", epochs: 6, batch: 64)).status == 201)
        let placed = try await waitFor("placement") { try await admin.call("GET", "/v1/training/jobs/dash-oom").json(JobView.self).history.first }
        let first = placed.node == "n1" ? n1 : n2
        // Attempt 1: two epochs, then the kernel's OOM kill.
        try await first.run("dash-oom", attempt: 1, epochs: 2,
                            exit: JobExited(exitCode: 0, signal: 9, oomKilled: true, failureClass: .outOfMemory, detail: "OOM-killed", epochsCompleted: 2))
        // Another node claims an absurd loss for the job, on its own subject: not believed, not drawn.
        let liar = first === n1 ? n2 : n1
        try await liar.emit("dash-oom", attempt: 1, .epoch(EpochMetrics(epoch: 9, totalEpochs: 6, loss: 1e9)))
        let second = try await waitFor("attempt 2") { try await admin.call("GET", "/v1/training/jobs/dash-oom").json(JobView.self).history.dropFirst().first }
        #expect(second.configChange.contains("batchSize 64 -> 32"))
        let agent2 = second.node == "n1" ? n1 : n2
        try await agent2.emit("dash-oom", attempt: 2, .accepted(JobAccepted(fencingEpoch: 1)))
        try await agent2.emit("dash-oom", attempt: 2, .started(JobStarted(pid: 77)))
        try await agent2.emit("dash-oom", attempt: 2, .epoch(EpochMetrics(epoch: 3, totalEpochs: 6, loss: 0.8, validation: Validation(loss: 0.9, accuracy: 0.7))))

        let browser = try await Browser(base: running.api).loggedIn(as: readerToken)
        let page = try await waitFor("both attempts drawn") { () -> String? in
            let text = try await browser.get("/ui/jobs/dash-oom").text
            return text.contains(#"data-attempt="2" data-kind="train" data-epoch="3""#) ? text : nil
        }
        #expect(page.contains(#"data-attempt="1" data-kind="train" data-epoch="1""#) && page.contains(#"data-attempt="1" data-kind="train" data-epoch="2""#))
        #expect(page.contains(#"data-attempt="2" data-kind="validation" data-epoch="3""#))
        #expect(!page.contains(#"data-epoch="9""#), "the other node's claim is drawn")
        #expect(page.contains("OOM: batch 64 → 32, accumulation ×2"), "no restart marker named after the decision")
        #expect(page.contains(#"<td>batch 64 → 32, accumulation ×2</td>"#))
        #expect(page.contains(#"data-live="/ui/live/jobs/dash-oom""#))

        // Live: the open stream sends the chart again when a new epoch arrives, without being asked.
        let stream = try browser.stream("/ui/live/jobs/dash-oom")
        defer { stream.cancel() }
        let initial = try await stream.waitFor("the first sections") { $0.contains("event: sections") && $0.contains(#"data-epoch=\"3\""#) }
        #expect(initial.contains(#""chart":"#) && initial.contains(#""attempts":"#))
        try await agent2.emit("dash-oom", attempt: 2, .epoch(EpochMetrics(epoch: 4, totalEpochs: 6, loss: 0.6)))
        _ = try await stream.waitFor("epoch 4 pushed") { $0.contains(#"data-attempt=\"2\" data-kind=\"train\" data-epoch=\"4\""#) }

        // A standby draws the same job from the same stream (its read model), and says it is one.
        let standby = try await fleet.startController(id: "c2")
        let standbyBrowser = try await Browser(base: standby.api).loggedIn(as: readerToken)
        let standbyPage = try await waitFor("the standby's job page") { () -> String? in
            let text = try await standbyBrowser.get("/ui/jobs/dash-oom").text
            return text.contains(#"data-epoch="4""#) ? text : nil
        }
        #expect(standbyPage.contains("standby") && standbyPage.contains("OOM: batch 64 → 32"))
        await standby.stop()
        await running.stop()
    }

    @Test func incidentPageShowsTheTemplateAndOnlyActingTokensGetButtons() async throws {
        let fleet = try await FleetHarness()
        let running = try await fleet.startController()
        let admin = HTTP(base: running.api, token: adminToken.token)
        let agent = try await fleet.announcedNode("n1", api: admin)
        #expect(try await admin.call("POST", "/v1/training/jobs", body: faultSpec("dash-nodata", fault: "missing_dataset")).status == 201)
        try await agent.run("dash-nodata", attempt: 1, epochs: 0, exit: JobExited(exitCode: 1, failureClass: .datasetNotFound, detail: "FileNotFoundError: /data/x"))
        let incident = try await waitFor("an incident") { try await admin.call("GET", "/v1/incidents").json([IncidentView].self).first }

        let reader = try await Browser(base: running.api).loggedIn(as: readerToken)
        let fleetPage = try await reader.get("/ui/").text
        #expect(fleetPage.contains(#"<a href="/ui/incidents/\#(incident.id)">"#), "the fleet page lists the open incident")
        let readOnly = try await reader.get("/ui/incidents/\(incident.id)").text
        #expect(readOnly.contains("Subject: Training Failure Escalation - dash-nodata"))
        for field in ["Severity: ", "Affected Agent: n1", "Training Job: dash-nodata", "Time of Failure: ", "Symptoms:", "Steps Taken:", "Current Status:", "Impact:", "Logs:"] {
            #expect(readOnly.contains(field), "the escalation template lacks \(field)")
        }
        #expect(readOnly.contains("opened at L1"), "the level over time starts with the opening page")
        #expect(!readOnly.contains(#"id="ack""#) && !readOnly.contains(#"id="resolve""#) && readOnly.contains("read-only"))
        #expect(try await reader.post("/ui/incidents/\(incident.id)/ack", form: [:]).status == 403)

        let incidentStream = try reader.stream("/ui/live/incidents/\(incident.id)")
        defer { incidentStream.cancel() }
        _ = try await incidentStream.waitFor("the incident's sections") { $0.contains(#""template":"#) }
        let oncall = try await Browser(base: running.api).loggedIn(as: operatorToken)
        let actionable = try await oncall.get("/ui/incidents/\(incident.id)").text
        #expect(actionable.contains(#"id="ack""#) && actionable.contains(#"id="resolve""#))
        // A form posted from another site is refused even with the cookie.
        #expect(try await oncall.post("/ui/incidents/\(incident.id)/ack", form: [:], headers: ["Origin": "http://evil.example"]).status == 403)
        var answer = try await oncall.post("/ui/incidents/\(incident.id)/ack", form: [:], headers: ["Origin": running.api])
        #expect(answer.status == 303 && answer.header("Location") == "/ui/incidents/\(incident.id)")
        let acked = try await admin.call("GET", "/v1/incidents/\(incident.id)").json(IncidentView.self)
        #expect(acked.status == "acknowledged" && acked.acknowledgedBy == "oncall")
        // The reader's open page hears of it without asking.
        _ = try await incidentStream.waitFor("the acknowledgement pushed") { $0.contains("acknowledged by oncall") }
        answer = try await oncall.post("/ui/incidents/\(incident.id)/resolve", form: ["rootCause": "dataset moved & not re-registered"])
        #expect(answer.status == 303)
        let resolved = try await oncall.get("/ui/incidents/\(incident.id)").text
        #expect(resolved.contains("acknowledged by oncall") && resolved.contains("dataset moved &amp; not re-registered"))
        #expect(resolved.contains(#"<pre class="report">"#) && !resolved.contains(#"id="resolve""#))

        // A standby shows the incident but cannot change it: the button answers that it is not the leader.
        let standby = try await fleet.startController(id: "c2")
        let standbyOncall = try await Browser(base: standby.api).loggedIn(as: operatorToken)
        let standbyPage = try await waitFor("the standby's incident page") { () -> String? in
            let text = try await standbyOncall.get("/ui/incidents/\(incident.id)").text
            return text.contains("Training Failure Escalation - dash-nodata") ? text : nil
        }
        #expect(standbyPage.contains("standby"))
        await standby.stop()
        await running.stop()
    }
}

/// A client that behaves like a browser where it matters here: follows no redirect, keeps no cookie jar of its own
/// (the test passes the cookie), reads server-sent events as they arrive.
struct Browser: Sendable {
    let base: String
    var cookie: String?

    init(base: String, cookie: String? = nil) {
        self.base = base
        self.cookie = cookie
    }

    func with(cookie setCookie: String) -> Browser {
        Browser(base: base, cookie: String(setCookie.prefix { $0 != ";" }))
    }

    func loggedIn(as token: TestToken) async throws -> Browser {
        let answer = try await post("/ui/login", form: ["token": token.token])
        return with(cookie: try #require(answer.header("Set-Cookie")))
    }

    struct Answer {
        let status: Int
        let headers: [AnyHashable: Any]
        let body: Data
        var text: String { String(decoding: body, as: UTF8.self) }
        func header(_ name: String) -> String? {
            headers.first { ($0.key as? String)?.lowercased() == name.lowercased() }?.value as? String
        }
    }

    func get(_ path: String) async throws -> Answer { try await send("GET", path, body: nil, headers: [:]) }

    func post(_ path: String, form: [String: String], headers: [String: String] = [:]) async throws -> Answer {
        let body = form.map { "\($0.key)=\($0.value.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")" }.joined(separator: "&")
        return try await send("POST", path, body: Data(body.utf8), headers: headers.merging(["Content-Type": "application/x-www-form-urlencoded"]) { a, _ in a })
    }

    private func request(_ method: String, _ path: String, body: Data?, headers: [String: String]) -> URLRequest {
        var request = URLRequest(url: URL(string: base + path)!)
        request.httpMethod = method
        request.httpBody = body
        request.httpShouldHandleCookies = false
        if let cookie { request.setValue(cookie, forHTTPHeaderField: "Cookie") }
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        return request
    }

    private func send(_ method: String, _ path: String, body: Data?, headers: [String: String]) async throws -> Answer {
        let session = URLSession(configuration: .ephemeral, delegate: NoRedirects(), delegateQueue: nil)
        defer { session.finishTasksAndInvalidate() }
        let (data, response) = try await session.data(for: request(method, path, body: body, headers: headers))
        let http = response as! HTTPURLResponse
        return Answer(status: http.statusCode, headers: http.allHeaderFields, body: data)
    }

    /// An open event stream; what arrived so far is `received`.
    func stream(_ path: String) throws -> EventStream {
        EventStream(request: request("GET", path, body: nil, headers: ["Accept": "text/event-stream"]))
    }
}

final class NoRedirects: NSObject, URLSessionTaskDelegate, Sendable {
    func urlSession(_ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
                    newRequest request: URLRequest, completionHandler: @escaping (URLRequest?) -> Void) {
        completionHandler(nil)
    }
}

final class EventStream: NSObject, URLSessionDataDelegate, Sendable {
    private let received = Mutex(Data())
    private let session = Mutex<URLSession?>(nil)

    init(request: URLRequest) {
        super.init()
        let session = URLSession(configuration: .ephemeral, delegate: self, delegateQueue: nil)
        self.session.withLock { $0 = session }
        session.dataTask(with: request).resume()
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        received.withLock { $0.append(data) }
    }

    var text: String { received.withLock { String(decoding: $0, as: UTF8.self) } }

    /// Waits until what arrived satisfies `done`; returns it.
    func waitFor(_ what: String, timeout: Duration = .seconds(20), _ done: @escaping (String) -> Bool) async throws -> String {
        try await ArchonControllerTests.waitFor(what, timeout: timeout) { () -> String? in
            let text = self.text
            return done(text) ? text : nil
        }
    }

    func cancel() {
        session.withLock { $0?.invalidateAndCancel() }
    }
}
