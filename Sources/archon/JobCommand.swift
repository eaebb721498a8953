import ArchonController
import ArgumentParser
import Foundation

struct JobCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "job", abstract: "Submit, list, show, watch, stop and validate training jobs.",
        subcommands: [Submit.self, List.self, Show.self, Logs.self, Watch.self, Stop.self, Validate.self])

    struct Submit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Submit a job spec (YAML or JSON; - reads stdin).")
        @OptionGroup var options: APIOptions
        @Argument(help: "The job spec file.") var spec: String

        func run() async throws {
            let data = try await options.client.call("POST", "/v1/training/jobs", body: Data(try readFile(spec).utf8), contentType: "application/yaml")
            if options.json { return printJSON(data) }
            let job = try options.client.decode(data, as: JobView.self)
            print("submitted \(job.id): \(job.status)\(job.node.isEmpty ? "" : " on \(job.node)")")
        }
    }

    struct Validate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Check a job spec against the fleet without submitting it.")
        @OptionGroup var options: APIOptions
        @Argument(help: "The job spec file.") var spec: String

        func run() async throws {
            let data: Data
            do {
                data = try await options.client.call("POST", "/v1/training/jobs/validate", body: Data(try readFile(spec).utf8),
                                                     contentType: "application/yaml")
            } catch let failure as ControllerClient.Failure where failure.status == 422 && (try? options.client.decode(failure.body, as: ValidationView.self)) != nil {
                data = failure.body  // a malformed spec: the same verdict, with every problem
            }
            let verdict = try options.client.decode(data, as: ValidationView.self)
            if options.json { printJSON(data) } else if verdict.valid {
                print("valid")
            } else {
                print("\(verdict.problems.count) problem(s):")
                for p in verdict.problems { print("  - \(p.field): \(p.message)") }
            }
            if !verdict.valid { throw ExitCode(1) }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List jobs.")
        @OptionGroup var options: APIOptions

        func run() async throws {
            let data = try await options.client.call("GET", "/v1/training/jobs")
            if options.json { return printJSON(data) }
            let jobs = try options.client.decode(data, as: [JobView].self)
            printTable(["ID", "STATUS", "NODE", "ATTEMPT", "EPOCH", "LOSS", "BATCH", "LR"], jobs.map { job in
                [job.id, job.status, job.node.isEmpty ? "-" : job.node, "\(job.attempt)",
                 job.lastMetrics.map { "\($0.epoch)/\(job.config.epochs)" } ?? "-",
                 job.lastMetrics.map { String(format: "%.4f", $0.loss) } ?? "-",
                 "\(job.config.batchSize)x\(job.config.gradientAccumulationSteps)", "\(job.config.learningRate)"]
            })
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a job: config, attempts, remediation history.")
        @OptionGroup var options: APIOptions
        @Argument var id: String

        func run() async throws {
            let data = try await options.client.call("GET", "/v1/training/jobs/\(id)")
            if options.json { return printJSON(data) }
            let job = try options.client.decode(data, as: JobView.self)
            print("Job \(job.id)  \(job.name)")
            print("  status     \(job.status)\(job.statusDetail.isEmpty ? "" : " — \(job.statusDetail)")")
            print("  node       \(job.node.isEmpty ? "-" : job.node)   attempt \(job.attempt)")
            let c = job.config
            print("  config     batch \(c.batchSize) × accumulation \(c.gradientAccumulationSteps), lr \(c.learningRate) (\(c.lrSchedule.kind.rawValue)), epochs \(c.epochs)")
            print("             clipping \(c.gradientClipping.enabled ? "max-norm \(c.gradientClipping.maxNorm)" : "off"), mixed precision \(c.mixedPrecision ? "on" : "off"), memory \(formatBytes(c.resources.memoryBytes)), dataset \(c.dataset.isEmpty ? "-" : c.dataset)")
            if let m = job.lastMetrics {
                print("  progress   epoch \(m.epoch)/\(c.epochs), loss \(String(format: "%.4f", m.loss))\(m.validation.map { String(format: ", val loss %.4f, acc %.3f", $0.loss, $0.accuracy) } ?? "")")
            }
            if !job.incident.isEmpty { print("  incident   \(job.incident)") }
            print("\nAttempts:")
            printTable(["#", "NODE", "ACTION", "CONFIG CHANGE", "ENDED", "OUTCOME"], job.history.map {
                ["\($0.attempt)", $0.node, $0.action, $0.configChange.isEmpty ? "-" : $0.configChange,
                 $0.failureClass == "none" ? ($0.endedAt > 0 ? "ok" : "-") : $0.failureClass, $0.outcome.isEmpty ? "-" : $0.outcome]
            })
        }
    }

    struct Logs: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The last lines of a job's output, from its node.")
        @OptionGroup var options: APIOptions
        @Argument var id: String
        @Option(name: .long, help: "Lines.") var tail = 100

        func run() async throws {
            let data = try await options.client.call("GET", "/v1/training/jobs/\(id)/logs?tail=\(tail)")
            if options.json { return printJSON(data) }
            struct Lines: Decodable { let lines: [String] }
            for line in try options.client.decode(data, as: Lines.self).lines { print(line) }
        }
    }

    struct Stop: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop a job; nothing restarts it.")
        @OptionGroup var options: APIOptions
        @Argument var id: String

        func run() async throws {
            let data = try await options.client.call("POST", "/v1/training/jobs/\(id)/stop")
            if options.json { return printJSON(data) }
            print("\(id): \(try options.client.decode(data, as: JobView.self).status)")
        }
    }

    struct Watch: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Follow a job's epochs and loss live until it ends.")
        @OptionGroup var options: APIOptions
        @Argument var id: String
        @Option(name: .long, help: "Seconds between polls.") var interval = 1.0

        func run() async throws {
            var lastLine = ""
            var seenAttempts = 0
            while true {
                let job = try await options.client.get("/v1/training/jobs/\(id)", as: JobView.self)
                if options.json {
                    // One compact object per line (JSON Lines), numbers as numbers: a stream scripts can read line by line.
                    let update = WatchUpdate(id: job.id, status: job.status, attempt: job.attempt, epoch: job.lastMetrics?.epoch ?? 0,
                                             loss: job.lastMetrics?.loss)
                    print(String(decoding: try JSONEncoder.jsonLines.encode(update), as: UTF8.self))
                } else {
                    for attempt in job.history.dropFirst(seenAttempts) where attempt.attempt > 1 {
                        print("\n↻ attempt \(attempt.attempt) on \(attempt.node): \(attempt.action)\(attempt.configChange.isEmpty ? "" : " (\(attempt.configChange))")")
                    }
                    seenAttempts = job.history.count
                    let line = Self.progressLine(job)
                    if line != lastLine {
                        print(line)
                        lastLine = line
                    }
                }
                if ["completed", "failed", "stopped"].contains(job.status) {
                    if !options.json { print("\(job.id) \(job.status)\(job.statusDetail.isEmpty ? "" : ": \(job.statusDetail)")") }
                    if job.status != "completed" { throw ExitCode(1) }
                    return
                }
                try await Task.sleep(for: .milliseconds(Int(interval * 1000)))
            }
        }

        /// One line of `job watch --json`.
        struct WatchUpdate: Encodable {
            let id: String
            let status: String
            let attempt: Int
            let epoch: Int
            /// Absent before the first epoch; a diverging loss (NaN) is written as the string "NaN".
            let loss: Double?
        }

        static func progressLine(_ job: JobView) -> String {
            let total = max(job.config.epochs, 1)
            let epoch = job.lastMetrics?.epoch ?? 0
            let width = 30
            let filled = min(width, width * epoch / total)
            let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
            let loss = job.lastMetrics.map { String(format: "loss %.4f", $0.loss) } ?? "loss -"
            return "[\(bar)] epoch \(epoch)/\(total)  \(loss)  attempt \(job.attempt)  \(job.status)"
        }
    }
}

extension JSONEncoder {
    /// Compact, keys sorted, NaN as a string: for one-object-per-line output.
    static var jsonLines: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        return encoder
    }
}
