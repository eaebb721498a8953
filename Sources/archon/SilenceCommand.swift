import ArchonController
import ArchonCore
import ArchonModel
import ArgumentParser
import Foundation

/// Silences and maintenance windows: matching incidents are recorded but page nobody until the silence ends.
struct SilenceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "silence", abstract: "Silence the pages of matching incidents for a while (a maintenance window).",
        subcommands: [Add.self, List.self, Expire.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Silence incidents naming a node, job or dataset, or of a cause; at least one matcher, all must match.",
            discussion: "Example: archon silence add --node n3 --for 2h --reason 'GPU swap, ticket OPS-118'")
        @OptionGroup var options: APIOptions
        @Option(name: .long, help: "Incidents listing this node among their agents.") var node: String?
        @Option(name: .long, help: "Incidents listing this job.") var job: String?
        @Option(name: .long, help: "Incidents on this dataset.") var dataset: String?
        @Option(name: .long, help: "Incidents of this cause (job, bad_node, bad_dataset, system_resource, multi_agent, security, notice).") var cause: String?
        @Option(name: .customLong("for"), help: "How long, from its start: 90m, 2h, 1d (at most 30 days).") var duration: String
        @Option(name: .long, help: "Start in this long (a scheduled maintenance window), e.g. 1h; default now.") var startsIn: String?
        @Option(name: .long, help: "Why, and who is on it: shown on every incident it holds.") var reason: String

        func run() async throws {
            // The policy file's durations: 90m, 2h, 1h30m, 1d.
            guard let length = PolicyDuration(parsing: duration), length.milliseconds >= 1000 else {
                throw ValidationError("--for '\(duration)' is not a duration of a second or more like 90m or 2h")
            }
            var startsAt: Int64?
            if let startsIn {
                guard let delay = PolicyDuration(parsing: startsIn) else { throw ValidationError("--starts-in '\(startsIn)' is not a duration like 30m or 2h") }
                startsAt = Int64(Date().timeIntervalSince1970 * 1000) + delay.milliseconds
            }
            let request = SilenceRequest(node: node, job: job, dataset: dataset, cause: cause, startsAt: startsAt,
                                         durationSeconds: length.milliseconds / 1000, reason: reason)
            let data = try await options.client.call("POST", "/v1/silences", body: try JSONEncoder().encode(request))
            if options.json { return printJSON(data) }
            let s = try options.client.decode(data, as: SilenceView.self)
            print("\(s.id) silences \(describe(s)) from \(formatTime(s.startsAt)) until \(formatTime(s.endsAt))")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Silences in force or scheduled.")
        @OptionGroup var options: APIOptions

        func run() async throws {
            let data = try await options.client.call("GET", "/v1/silences")
            if options.json { return printJSON(data) }
            let silences = try options.client.decode(data, as: [SilenceView].self)
            printTable(["ID", "MATCHES", "STARTS", "ENDS", "BY", "REASON"], silences.map {
                [$0.id, describe($0), formatTime($0.startsAt), formatTime($0.endsAt), $0.createdBy, $0.reason]
            })
        }
    }

    struct Expire: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "End a silence now: the pages it held go out.")
        @OptionGroup var options: APIOptions
        @Argument var id: String

        func run() async throws {
            let data = try await options.client.call("POST", "/v1/silences/\(id)/expire")
            if options.json { return printJSON(data) }
            print("\(id) expired")
        }
    }
}

/// "node=n3 cause=bad_node".
private func describe(_ s: SilenceView) -> String {
    Silence.matchers(node: s.node, job: s.job, dataset: s.dataset, cause: s.cause)
}
