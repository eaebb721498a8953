public import ArchonCore
import ArchonModel
import Foundation

/// The dashboard's pages, rendered from the API's views (pure: tested without a server). Each page is a set of
/// sections with ids; the live stream sends new HTML for the sections that changed (see archon.js).
public enum DashboardPages {
    /// How many jobs the fleet page lists (running and queued first, then the latest finished).
    static let fleetJobRows = 200

    // MARK: Fleet

    public struct FleetSnapshot: Sendable {
        public var nodes: [NodeView]
        public var draining: Set<String>
        public var datasets: [DatasetView]
        public var incidents: [IncidentView]
        public var jobs: [JobView]
        public var jobCount: Int
        public var now: Int64

        public init(nodes: [NodeView], draining: Set<String>, datasets: [DatasetView], incidents: [IncidentView], jobs: [JobView], jobCount: Int, now: Int64) {
            self.nodes = nodes
            self.draining = draining
            self.datasets = datasets
            self.incidents = incidents
            self.jobs = jobs
            self.jobCount = jobCount
            self.now = now
        }
    }

    public static func fleetSections(_ s: FleetSnapshot, viewer: DashboardViewer) -> [String: String] {
        let open = s.incidents.filter { $0.status != "resolved" }
        var incidents = ""
        for level in EscalationLevel.allCases.reversed() {
            let here = open.filter { $0.level == level.rawValue }
            guard !here.isEmpty else { continue }
            incidents += "<h3>\(level.rawValue) · \(here.count)</h3><ul class=\"incidents\">"
            for i in here {
                incidents += "<li>\(HTML.badge(i.severity, i.severity)) \(HTML.badge(i.status, i.status)) "
                    + "<a href=\"/ui/incidents/\(HTML.escape(i.id))\">\(HTML.escape(i.subject))</a> <span class=\"muted\">\(HTML.escape(i.id)) · opened \(HTML.age(i.openedAt, now: s.now)) ago</span></li>"
            }
            incidents += "</ul>"
        }
        if incidents.isEmpty { incidents = "<p class=\"empty\">No open incident.</p>" }

        let nodeRows = s.nodes.map { n -> [String] in
            var state = [HTML.badge(n.status, n.status)]
            if n.cordoned { state.append(HTML.badge("cordoned", "cordoned")) }
            if s.draining.contains(n.id) { state.append(HTML.badge("draining", "draining")) }
            let gpus = n.capacity.gpus.isEmpty ? "–"
                : "\(n.capacity.gpus.count) × \(HTML.escape(n.capacity.gpus.first?.gpuClass ?? "")) · \(HTML.bytes(n.usage.gpuMemoryUsedBytes)) used, \(Int((n.usage.gpuUtilization * 100).rounded())) %"
            return [
                HTML.escape(n.id), state.joined(separator: " ") + (n.cordonReason.isEmpty ? "" : " <span class=\"muted\">\(HTML.escape(n.cordonReason))</span>"),
                "\(n.capacity.cpuCores) cores · \(HTML.bytes(n.capacity.memoryBytes))",
                "\(HTML.bytes(n.usage.memoryUsedBytes)) (\(HTML.percent(n.usage.memoryUsedBytes, of: n.capacity.memoryBytes))), reserved \(HTML.bytes(n.usage.memoryReservedBytes))",
                gpus,
                n.runningJobs.map { "<a href=\"/ui/jobs/\(HTML.escape($0))\">\(HTML.escape($0))</a>" }.joined(separator: ", "),
                HTML.escape("memory \(n.enforcement.memory.rawValue), cpu \(n.enforcement.cpu.rawValue)"),
                HTML.age(n.lastSeen, now: s.now),
            ]
        }
        let datasets: String
        if viewer.canReadDatasets {
            datasets = HTML.table(["dataset", "status", "retries", "location"], s.datasets.map { d in
                [HTML.escape(d.id), HTML.badge(d.status, d.status),
                 d.retriesPaused ? HTML.badge("paused", "paused") + (d.pausedByIncident.isEmpty ? "" : " by <a href=\"/ui/incidents/\(HTML.escape(d.pausedByIncident))\">\(HTML.escape(d.pausedByIncident))</a>") : "–",
                 HTML.escape(d.location)]
            }, empty: "No dataset registered.")
        } else {
            datasets = "<p class=\"empty\">This token lacks the scope dataset:read.</p>"
        }
        let jobRows = s.jobs.map { j in
            [jobLink(j.id), HTML.escape(j.name), HTML.badge(j.status, j.status), HTML.escape(j.node), "\(j.attempt)",
             j.lastMetrics.map { "epoch \($0.epoch)/\($0.totalEpochs) · loss \(LossChart.number($0.loss))" } ?? "–",
             j.incident.isEmpty ? "" : "<a href=\"/ui/incidents/\(HTML.escape(j.incident))\">\(HTML.escape(j.incident))</a>"]
        }
        let more = s.jobCount > s.jobs.count ? "<p class=\"muted\">\(s.jobs.count) of \(s.jobCount) jobs shown: running and queued first, then the latest.</p>" : ""
        return [
            "summary": "<p>\(s.nodes.count) nodes (\(s.nodes.filter { $0.status == "online" }.count) online) · \(s.jobCount) jobs · \(open.count) open incidents</p>",
            "incidents": incidents,
            "nodes": HTML.table(["node", "state", "capacity", "memory used", "GPU", "running jobs", "enforcement", "last heartbeat"], nodeRows, empty: "No node has reported."),
            "datasets": datasets,
            "jobs": HTML.table(["job", "name", "status", "node", "attempt", "progress", "incident"], jobRows, empty: "No job yet.") + more,
        ]
    }

    public static func fleetPage(_ s: FleetSnapshot, viewer: DashboardViewer) -> String {
        let sections = fleetSections(s, viewer: viewer)
        let body = """
            <h1>Fleet</h1>
            <section id="summary">\(sections["summary"]!)</section>
            <h2>Open incidents</h2><section id="incidents">\(sections["incidents"]!)</section>
            <h2>Nodes</h2><section id="nodes">\(sections["nodes"]!)</section>
            <h2>Datasets</h2><section id="datasets">\(sections["datasets"]!)</section>
            <h2>Jobs</h2><section id="jobs">\(sections["jobs"]!)</section>
            """
        return HTML.page(title: "Fleet", viewer: viewer, live: "/ui/live", body: body)
    }

    /// The jobs the fleet page lists: not finished first (newest first), then the latest finished ones.
    /// One pass over the jobs, keeping the newest `fleetJobRows` of each group; only those are sorted.
    public static func fleetJobs(_ jobs: some Sequence<JobRecord>) -> [JobRecord] {
        var active: [JobRecord] = []
        var done: [JobRecord] = []
        func keep(_ job: JobRecord, in list: inout [JobRecord]) {
            list.append(job)
            if list.count >= 2 * fleetJobRows {  // trim now and then, never holding more than twice the rows
                list.sort { $0.submittedAtMs > $1.submittedAtMs }
                list.removeLast(list.count - fleetJobRows)
            }
        }
        for job in jobs {
            if job.status.isTerminal { keep(job, in: &done) } else { keep(job, in: &active) }
        }
        active.sort { $0.submittedAtMs > $1.submittedAtMs }
        done.sort { $0.submittedAtMs > $1.submittedAtMs }
        return Array((active + done).prefix(fleetJobRows))
    }

    // MARK: Job

    public static func jobSections(_ job: JobView, curve: LossCurve, logs: [String]?) -> [String: String] {
        let c = job.config
        var summary = "<p>\(HTML.badge(job.status, job.status)) \(HTML.escape(job.statusDetail))</p><dl>"
        summary += "<dt>name</dt><dd>\(HTML.escape(job.name))</dd><dt>team</dt><dd>\(HTML.escape(job.team))</dd>"
        summary += "<dt>node</dt><dd>\(HTML.escape(job.node.isEmpty ? "–" : job.node))</dd><dt>attempt</dt><dd>\(job.attempt)</dd>"
        summary += "<dt>config</dt><dd>batch \(c.batchSize) × accumulation \(c.gradientAccumulationSteps) · LR \(LossChart.number(c.learningRate)) · \(c.epochs) epochs</dd>"
        if let m = job.lastMetrics { summary += "<dt>last epoch</dt><dd>\(m.epoch)/\(m.totalEpochs), loss \(LossChart.number(m.loss))</dd>" }
        if !job.incident.isEmpty { summary += "<dt>incident</dt><dd><a href=\"/ui/incidents/\(HTML.escape(job.incident))\">\(HTML.escape(job.incident))</a></dd>" }
        summary += "<dt>submitted</dt><dd>\(HTML.time(job.submittedAt))</dd></dl>"

        let attempts = job.history.map { a in
            [
                "\(a.attempt)", HTML.escape(a.node), a.failureClass == "none" ? "–" : HTML.badge(a.failureClass, "failure"),
                HTML.escape(a.action), HTML.escape(a.configChange.isEmpty ? "–" : LossCurve.readable(a.configChange)),
                HTML.escape(a.resumeFrom.isEmpty ? "–" : (a.resumeFrom as NSString).lastPathComponent),
                HTML.time(a.startedAt), HTML.escape(a.outcome),
            ]
        }
        let legend = """
            <p class="legend"><span class="key train"></span>training loss <span class="key validation"></span>validation loss \
            <span class="key step"></span>step loss · colour by attempt · dashed line: a restart and the decision behind it</p>
            """
        let logText: String
        if let logs {
            logText = logs.isEmpty ? "<p class=\"empty\">No output.</p>" : "<pre class=\"logs\">\(HTML.escape(logs.joined(separator: "\n")))</pre>"
        } else {
            logText = "<p class=\"empty\">The agent of this job did not answer for its log.</p>"
        }
        return [
            "job-summary": summary,
            "chart": LossChart.svg(curve) + legend,
            "attempts": HTML.table(["attempt", "node", "failure", "action", "config change", "resumed from", "started", "outcome"], attempts, empty: "Not placed yet."),
            "logs": logText,
        ]
    }

    public static func jobPage(_ job: JobView, curve: LossCurve, logs: [String]?, viewer: DashboardViewer) -> String {
        let s = jobSections(job, curve: curve, logs: logs)
        let body = """
            <p class="crumbs"><a href="/ui/">Fleet</a> / job</p>
            <h1>\(HTML.escape(job.id))</h1>
            <section id="job-summary">\(s["job-summary"]!)</section>
            <h2>Loss across attempts</h2><section id="chart">\(s["chart"]!)</section>
            <h2>Attempts</h2><section id="attempts">\(s["attempts"]!)</section>
            <h2>Log tail</h2><section id="logs">\(s["logs"]!)</section>
            """
        return HTML.page(title: "Job \(job.id)", viewer: viewer, live: "/ui/live/jobs/\(job.id)", body: body)
    }

    // MARK: Incident

    public static func incidentSections(_ i: IncidentView, attached: [IncidentView], report: String?, viewer: DashboardViewer) -> [String: String] {
        var summary = "<p>\(HTML.badge(i.level, "level")) \(HTML.badge(i.severity, i.severity)) \(HTML.badge(i.status, i.status)) "
        summary += "<span class=\"muted\">\(HTML.escape(i.cause))</span></p>"
        if i.pageHeldUntil != 0 { summary += "<p class=\"muted\">Page held by \(HTML.escape(i.pageHeldBy)) until \(HTML.time(i.pageHeldUntil)).</p>" }
        if !i.parent.isEmpty { summary += "<p>Attached to <a href=\"/ui/incidents/\(HTML.escape(i.parent))\">\(HTML.escape(i.parent))</a>: its pages are inhibited.</p>" }
        if viewer.canAct, i.status != "resolved" {
            summary += "<div class=\"actions\">"
            if i.status == "open" {
                summary += "<form method=\"post\" action=\"/ui/incidents/\(HTML.escape(i.id))/ack\"><button id=\"ack\">Acknowledge</button></form>"
            }
            summary += "<form method=\"post\" action=\"/ui/incidents/\(HTML.escape(i.id))/resolve\"><input name=\"rootCause\" placeholder=\"root cause\" aria-label=\"root cause\"> <button id=\"resolve\">Resolve</button></form>"
            summary += "</div>"
        }

        // The runbook's escalation template, filled in.
        var t = "Subject: \(i.subject)\n\nSeverity: \(i.severity)\nAffected Agent: \(i.nodes.isEmpty ? "–" : i.nodes.joined(separator: ", "))\n"
        t += "Training Job: \(i.jobs.isEmpty ? "–" : i.jobs.joined(separator: ", "))\nTime of Failure: \(HTML.time(i.failureTime))\n\nSymptoms:\n"
        t += i.symptoms.map { "- \($0)" }.joined(separator: "\n") + "\n\nSteps Taken:\n"
        t += i.stepsTaken.enumerated().map { n, s in
            "\(n + 1). attempt \(s.attempt) of \(s.jobID): \(s.action)\(s.configChange.isEmpty ? "" : " (\(s.configChange))")\(s.outcome.isEmpty ? "" : " → \(s.outcome)")"
        }.joined(separator: "\n")
        t += "\n\nCurrent Status:\n\(i.currentStatus)\n\nImpact:\n\(i.impact)\n\nLogs:\n" + i.logTail.joined(separator: "\n")

        // The level over time: what opened, climbed, was acknowledged or resolved it, from the timeline.
        let steps = i.timeline.filter { e in
            ["opened at ", "escalated to ", "acknowledged by ", "acknowledgement by ", "resolved by ", "held page sent"].contains { e.text.hasPrefix($0) }
        }
        let levels = steps.isEmpty ? "<p class=\"empty\">No page yet.</p>"
            : "<ol class=\"levels\">" + steps.map { e in
                let cls = e.text.hasPrefix("acknowledged") ? "ack" : e.text.hasPrefix("resolved") ? "resolved" : "page"
                return "<li class=\"\(cls)\"><time>\(HTML.time(e.timeMs))</time> \(HTML.escape(e.text))</li>"
            }.joined() + "</ol>"
        let timeline = "<ol class=\"timeline\">" + i.timeline.map { "<li><time>\(HTML.time($0.timeMs))</time> \(HTML.escape($0.text))</li>" }.joined() + "</ol>"
        var evidence = "<ul>" + i.symptoms.map { "<li>\(HTML.escape($0))</li>" }.joined() + "</ul>"
        evidence += "<p>Jobs: " + (i.jobs.isEmpty ? "–" : i.jobs.prefix(100).map(jobLink).joined(separator: ", ")) + (i.jobs.count > 100 ? " … (\(i.jobs.count))" : "") + "</p>"
        evidence += "<p>Nodes: \(HTML.escape(i.nodes.isEmpty ? "–" : i.nodes.joined(separator: ", ")))\(i.dataset.isEmpty ? "" : " · dataset \(HTML.escape(i.dataset))")</p>"
        let attachedHTML = attached.isEmpty ? "<p class=\"empty\">None.</p>"
            : "<ul>" + attached.map { "<li><a href=\"/ui/incidents/\(HTML.escape($0.id))\">\(HTML.escape($0.id))</a> \(HTML.escape($0.subject)) \(HTML.badge($0.status, $0.status))</li>" }.joined() + "</ul>"
        let reportHTML = report.map { "<pre class=\"report\">\(HTML.escape($0))</pre>" } ?? "<p class=\"empty\">Written when the incident is resolved.</p>"
        return [
            "incident-summary": summary,
            "template": "<pre class=\"template\">\(HTML.escape(t))</pre>",
            "levels": levels,
            "evidence": evidence,
            "attached": attachedHTML,
            "timeline": timeline,
            "report": reportHTML,
        ]
    }

    public static func incidentPage(_ i: IncidentView, attached: [IncidentView], report: String?, viewer: DashboardViewer) -> String {
        let s = incidentSections(i, attached: attached, report: report, viewer: viewer)
        let body = """
            <p class="crumbs"><a href="/ui/">Fleet</a> / incident</p>
            <h1>\(HTML.escape(i.id)) · \(HTML.escape(i.subject))</h1>
            <section id="incident-summary">\(s["incident-summary"]!)</section>
            <h2>Escalation</h2><section id="template">\(s["template"]!)</section>
            <h2>Level over time</h2><section id="levels">\(s["levels"]!)</section>
            <h2>Evidence</h2><section id="evidence">\(s["evidence"]!)</section>
            <h2>Attached incidents</h2><section id="attached">\(s["attached"]!)</section>
            <h2>Timeline</h2><section id="timeline">\(s["timeline"]!)</section>
            <h2>Post-incident report</h2><section id="report">\(s["report"]!)</section>
            """
        return HTML.page(title: "Incident \(i.id)", viewer: viewer, live: "/ui/live/incidents/\(i.id)", body: body)
    }

    // MARK: Login

    public static func loginPage(error: String?) -> String {
        """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
        <title>Log in · Archon Fleet</title><link rel="stylesheet" href="/ui/static/archon.css"></head>
        <body class="login"><main><h1>Archon Fleet</h1>
        \(error.map { "<p class=\"error\" id=\"login-error\">\(HTML.escape($0))</p>" } ?? "")
        <form method="post" action="/ui/login"><label for="token">API token</label>
        <input id="token" name="token" type="password" autocomplete="current-password" autofocus required>
        <button id="login">Log in</button></form>
        <p class="muted">The token is kept in a cookie only this site's requests carry (HttpOnly, SameSite=Strict).</p>
        </main></body></html>
        """
    }

    private static func jobLink(_ id: String) -> String {
        "<a href=\"/ui/jobs/\(HTML.escape(id))\">\(HTML.escape(id))</a>"
    }
}
