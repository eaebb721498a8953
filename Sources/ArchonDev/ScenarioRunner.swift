import ArchonController
import ArchonModel
import Foundation

/// How one scenario ended.
public struct ScenarioResult: Sendable {
    public let number: Int
    public let title: String
    /// What did not end as expected; empty when it did.
    public let problems: [String]
    /// Attempts that failed.
    public let failures: Int
    /// Jobs that completed after at least one failure: fixed without a person.
    public let automaticFixes: Int
    /// Incidents that paged someone (cause and level), notices excluded.
    public let escalations: [String]
    /// Informational notices (poor performance, resource pressure): paged once at their level, never climbing.
    public let notices: Int
    /// First failure → first reaction (a new attempt or an incident), as seen through the API.
    public let timeToDetectMs: Int64?
    /// First failure → every job completed; nil when not every job completed.
    public let timeToRecoverMs: Int64?

    public var passed: Bool { problems.isEmpty }
}

/// Runs scenarios against a dev fleet through its HTTP API, narrating what happens as it happens.
public final class ScenarioRunner: @unchecked Sendable {
    let fleet: DevFleet
    let directory: String
    let narrate: Bool

    public init(fleet: DevFleet, directory: String, narrate: Bool = true) {
        self.fleet = fleet
        self.directory = directory
        self.narrate = narrate
    }

    func say(_ line: String) {
        if narrate { print(line) }
    }

    public func run(_ scenario: Scenario) async -> ScenarioResult {
        let client = fleet.client
        let context = ScenarioContext(fleet: fleet, directory: directory)
        let startMs = UnixTime.nowMillis()
        say("\n▶ \(scenario.number). \(scenario.title): \(scenario.setup)")
        var observation = Observation(jobs: [:], incidents: [], nodes: [])
        var problems: [String] = []
        var firstFailureMs: Int64?
        var firstReactionMs: Int64?
        var recoveredMs: Int64?
        do {
            try await scenario.prepare(context)
            for spec in scenario.jobs {
                let job = try await client.submit(try ScenarioCatalog.jsonText(spec))
                say("    submitted \(spec.id): batch \(spec.config.batchSize), lr \(spec.config.learningRate), memory \(spec.config.resources.memoryBytes >> 20) MiB → \(job.node.isEmpty ? job.status : "placed on \(job.node)")")
            }
            var seenAttempts: [String: Int] = [:]
            var seenEnded: Set<String> = []
            var seenIncidents: [String: String] = [:]
            var reported: Set<String> = []
            let deadline = ContinuousClock.now + scenario.timeout
            while true {
                let jobs = try await client.jobs()
                let ids = Set(scenario.jobs.map(\.id))
                observation = Observation(
                    jobs: Dictionary(uniqueKeysWithValues: jobs.filter { ids.contains($0.id) }.map { ($0.id, $0) }),
                    incidents: try await client.incidents().filter { $0.openedAt >= startMs },
                    nodes: try await client.nodes())
                let now = UnixTime.nowMillis()
                for id in scenario.jobs.map(\.id) {
                    guard let job = observation.jobs[id] else { continue }
                    for attempt in job.history {
                        let key = "\(id)#\(attempt.attempt)"
                        if attempt.attempt > (seenAttempts[id] ?? 0) {
                            seenAttempts[id] = attempt.attempt
                            if attempt.attempt > 1 {
                                firstReactionMs = firstReactionMs ?? now
                                say("    → decision: \(attempt.action)\(attempt.configChange.isEmpty ? "" : " [\(attempt.configChange)]")\(attempt.resumeFrom.isEmpty ? "" : ", resuming from \(URL(fileURLWithPath: attempt.resumeFrom).lastPathComponent)")")
                            }
                        }
                        if attempt.endedAt > 0, attempt.failureClass != "none", !seenEnded.contains(key) {
                            seenEnded.insert(key)
                            firstFailureMs = min(firstFailureMs ?? attempt.endedAt, attempt.endedAt)
                            say("    ✗ \(id) attempt \(attempt.attempt) on \(attempt.node): \(attempt.failureClass) — \(attempt.outcome)")
                        }
                    }
                    if ["completed", "failed", "paused", "stopped"].contains(job.status), !reported.contains("\(id):\(job.status)") {
                        reported.insert("\(id):\(job.status)")
                        let metrics = job.lastMetrics.map { String(format: " (epoch %d, loss %.4f)", $0.epoch, $0.loss) } ?? ""
                        say("    \(job.status == "completed" ? "✓" : "■") \(id) \(job.status) on attempt \(job.attempt)\(metrics)\(job.statusDetail.isEmpty || job.status == "completed" ? "" : ": \(job.statusDetail)")")
                    }
                }
                for incident in observation.incidents where incident.parent.isEmpty {
                    if seenIncidents[incident.id] == nil {
                        firstReactionMs = firstReactionMs ?? now
                        say("    ⚑ incident \(incident.id) at \(incident.level), \(incident.severity): \(incident.subject)")
                        if let symptom = incident.symptoms.first { say("      evidence: \(symptom)") }
                        if !incident.currentStatus.isEmpty { say("      status: \(incident.currentStatus)") }
                    } else if seenIncidents[incident.id] != incident.level {
                        say("    ⇧ incident \(incident.id) not acknowledged in time: climbed to \(incident.level)")
                    }
                    seenIncidents[incident.id] = incident.level
                }
                try await scenario.during(context, observation)
                if recoveredMs == nil, !observation.jobs.isEmpty, observation.jobs.values.allSatisfy({ $0.status == "completed" }),
                   observation.jobs.count == scenario.jobs.count {
                    recoveredMs = now
                }
                if scenario.settled(observation) { break }
                if ContinuousClock.now >= deadline {
                    problems.append("did not settle within \(scenario.timeout)")
                    break
                }
                try await Task.sleep(for: .milliseconds(250))
            }
            problems += scenario.verify(observation)
        } catch {
            problems.append("\(error)")
        }
        say(problems.isEmpty ? "  ✔ as expected" : "  ✘ not as expected:\n" + problems.map { "      - \($0)" }.joined(separator: "\n"))
        let failures = observation.jobs.values.reduce(0) { $0 + $1.history.filter { $0.failureClass != "none" && $0.endedAt > 0 }.count }
        let fixes = observation.jobs.values.filter { $0.status == "completed" && $0.history.contains { $0.failureClass != "none" } }.count
        return ScenarioResult(
            number: scenario.number, title: scenario.title, problems: problems, failures: failures, automaticFixes: fixes,
            escalations: observation.pages.filter { $0.cause != "notice" }.map { "\($0.cause) \($0.level)" },
            notices: observation.pages.filter { $0.cause == "notice" }.count,
            timeToDetectMs: firstFailureMs.flatMap { f in firstReactionMs.map { max(0, $0 - f) } },
            timeToRecoverMs: firstFailureMs.flatMap { f in recoveredMs.map { max(0, $0 - f) } })
    }

    /// The closing table.
    public static func summary(_ results: [ScenarioResult]) -> String {
        // Observed by polling the API every 250 ms: a reaction seen in the same poll as the failure is "< 0.3 s".
        func seconds(_ ms: Int64?) -> String {
            guard let ms else { return "-" }
            return ms < 300 ? "< 0.3 s" : String(format: "%.1f s", Double(ms) / 1000)
        }
        let header = ["SCENARIO", "FAILURES", "AUTO-FIXED", "ESCALATIONS", "NOTICES", "DETECT", "RECOVER", "RESULT"]
        let rows = results.map { r in
            ["\(r.number). \(r.title)", "\(r.failures)", "\(r.automaticFixes)", r.escalations.isEmpty ? "none" : r.escalations.joined(separator: ", "),
             "\(r.notices)", seconds(r.timeToDetectMs), seconds(r.timeToRecoverMs), r.passed ? "✔ as expected" : "✘ \(r.problems.count) problem(s)"]
        }
        let widths = header.indices.map { i in ([header[i]] + rows.map { $0[i] }).map(\.count).max() ?? 0 }
        let line = { (cells: [String]) in cells.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  ") }
        return ([line(header)] + rows.map(line)).joined(separator: "\n")
    }
}
