import ArchonController
import ArchonModel
import ArgumentParser
import Foundation

struct NodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "node", abstract: "List nodes; cordon, uncordon and drain them.",
        subcommands: [List.self, Cordon.self, Uncordon.self, Drain.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Nodes with capacity, usage and status.")
        @OptionGroup var options: APIOptions

        func run() async throws {
            let data = try await options.client.call("GET", "/v1/nodes")
            if options.json { return printJSON(data) }
            let nodes = try options.client.decode(data, as: [NodeView].self)
            printTable(["ID", "STATUS", "CORDONED", "CPUS", "MEMORY", "RESERVED", "GPUS", "JOBS", "MEMORY LIMITS"], nodes.map { n in
                [n.id, n.status, n.cordoned ? "yes" : "no", "\(n.capacity.cpuCores)", formatBytes(n.capacity.memoryBytes),
                 formatBytes(n.usage.memoryReservedBytes), "\(n.capacity.gpus.count)", "\(n.usage.runningJobs)", n.enforcement.memory.rawValue]
            })
        }
    }

    struct Cordon: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Place no new jobs on a node.")
        @OptionGroup var options: APIOptions
        @Argument var id: String
        @Option(name: .long, help: "Why, for the record.") var reason = ""

        func run() async throws {
            let data = try await options.client.call("POST", "/v1/nodes/\(id)/cordon", body: try JSONEncoder().encode(["reason": reason]))
            if options.json { return printJSON(data) }
            print("\(id) cordoned")
        }
    }

    struct Drain: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Cordon a node and move every job off it, each after saving a checkpoint.",
            discussion: """
                Each job's trainer gets SIGTERM and its stop grace (the job's checkpoint.stopGraceSeconds, else the policy's \
                remediation.stopGrace) to save a checkpoint and exit; it then restarts on another node from that checkpoint. \
                Prints each job's progress until every job has moved (or finished), or --timeout passes (exit status 1).
                """)
        @OptionGroup var options: APIOptions
        @Argument var id: String
        @Option(name: .long, help: "Why, for the record.") var reason = ""
        @Flag(name: .long, help: "Start the drain and return without waiting for the jobs to move.") var noWait = false
        @Option(name: .long, help: "Seconds to wait for every job to move.") var timeout: Double = 900

        func run() async throws {
            let started = try await options.client.call("POST", "/v1/nodes/\(id)/drain", body: try JSONEncoder().encode(["reason": reason]))
            var view = try options.client.decode(started, as: DrainView.self)
            if !options.json { print("\(id) cordoned; draining \(view.jobs.count) job\(view.jobs.count == 1 ? "" : "s")") }
            var shown: [String: String] = [:]
            let deadline = ContinuousClock.now + .milliseconds(Int(timeout * 1000))
            while true {
                if !options.json {
                    for move in view.jobs where shown[move.job] != move.state {
                        shown[move.job] = move.state
                        print("\(move.job): \(move.state) — \(move.detail)")
                    }
                }
                if noWait || view.done || ContinuousClock.now >= deadline { break }
                try await Task.sleep(for: .milliseconds(500))
                view = try options.client.decode(try await options.client.call("GET", "/v1/nodes/\(id)/drain"), as: DrainView.self)
            }
            if options.json {
                printJSON(try JSONEncoder().encode(view))
            } else {
                printTable(["JOB", "STATE", "FROM", "CHECKPOINT SAVED", "EPOCH", "TO", "RESUMED FROM"], view.jobs.map { m in
                    [m.job, m.state, "\(m.fromNode)#\(m.fromAttempt)", m.checkpointSaved ? "yes" : (m.state == "draining" ? "not yet" : "no"),
                     m.checkpointEpoch.map(String.init) ?? "-", m.toAttempt.map { "\(m.toNode)#\($0)" } ?? "-", m.resumeFrom.isEmpty ? "-" : m.resumeFrom]
                })
                print(view.done ? "\(id) drained" : "\(id) not drained yet: \(noWait ? "run archon node drain \(id) again to follow it" : "timed out")")
            }
            if !noWait, !view.done { throw ExitCode(1) }
        }
    }

    struct Uncordon: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Let a node take jobs again.")
        @OptionGroup var options: APIOptions
        @Argument var id: String

        func run() async throws {
            let data = try await options.client.call("POST", "/v1/nodes/\(id)/uncordon")
            if options.json { return printJSON(data) }
            print("\(id) uncordoned")
        }
    }
}

struct DatasetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dataset", abstract: "List and register datasets.", subcommands: [List.self, Add.self, Resume.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Registered datasets.")
        @OptionGroup var options: APIOptions

        func run() async throws {
            let data = try await options.client.call("GET", "/v1/datasets")
            if options.json { return printJSON(data) }
            let datasets = try options.client.decode(data, as: [DatasetView].self)
            printTable(["ID", "STATUS", "RETRIES", "LOCATION"], datasets.map {
                [$0.id, $0.status, $0.retriesPaused ? "paused (\($0.pausedByIncident))" : "on", $0.location]
            })
        }
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Register (or update) a dataset.")
        @OptionGroup var options: APIOptions
        @Argument var id: String
        @Option(name: .long, help: "Path or URL.") var location: String
        @Option(name: .long, help: "ready or unavailable.") var status = "ready"

        func run() async throws {
            let body = try JSONEncoder().encode(["id": id, "location": location, "status": status])
            let data = try await options.client.call("POST", "/v1/datasets", body: body)
            if options.json { return printJSON(data) }
            print("dataset \(id) registered (\(status))")
        }
    }

    struct Resume: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Resume retries of jobs paused on a dataset.")
        @OptionGroup var options: APIOptions
        @Argument var id: String

        func run() async throws {
            let data = try await options.client.call("POST", "/v1/datasets/\(id)/resume")
            if options.json { return printJSON(data) }
            print("retries on \(id) resumed")
        }
    }
}

struct IncidentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "incident", abstract: "List, show, acknowledge, resolve incidents and render their reports.",
        subcommands: [List.self, Show.self, Ack.self, Resolve.self, Report.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Incidents, newest first.")
        @OptionGroup var options: APIOptions

        func run() async throws {
            let data = try await options.client.call("GET", "/v1/incidents")
            if options.json { return printJSON(data) }
            let incidents = try options.client.decode(data, as: [IncidentView].self)
            printTable(["ID", "LEVEL", "SEVERITY", "STATUS", "CAUSE", "OPENED", "SUBJECT"], incidents.map {
                [$0.id, $0.level, $0.severity, $0.status, $0.cause, formatTime($0.openedAt), $0.subject]
            })
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "An incident with the full escalation template.")
        @OptionGroup var options: APIOptions
        @Argument var id: String

        func run() async throws {
            let data = try await options.client.call("GET", "/v1/incidents/\(id)")
            if options.json { return printJSON(data) }
            let i = try options.client.decode(data, as: IncidentView.self)
            print(i.subject)
            print("  incident   \(i.id) (\(i.cause)), \(i.status)")
            print("  level      \(i.level), severity \(i.severity)\(i.respondBy > 0 && i.status == "open" ? ", respond by \(formatTime(i.respondBy))" : "")")
            if !i.pageHeldBy.isEmpty {
                print("  page       held until \(formatTime(i.pageHeldUntil)) (\(i.pageHeldBy == HeldPage.grouping ? "waiting for a fleet incident that may explain it" : "silenced by \(i.pageHeldBy)"))")
            }
            print("  agents     \(i.nodes.isEmpty ? "-" : i.nodes.joined(separator: ", "))")
            print("  jobs       \(i.jobs.isEmpty ? "-" : i.jobs.joined(separator: ", "))")
            if !i.dataset.isEmpty { print("  dataset    \(i.dataset)") }
            print("  failure    \(formatTime(i.failureTime))")
            print("  symptoms   \(i.symptoms.joined(separator: "\n             "))")
            print("  status     \(i.currentStatus)")
            print("  impact     \(i.impact)")
            if !i.stepsTaken.isEmpty {
                print("  steps taken:")
                for s in i.stepsTaken { print("    - attempt \(s.attempt): \(s.action)\(s.configChange.isEmpty ? "" : " (\(s.configChange))") → \(s.outcome.isEmpty ? "pending" : s.outcome)") }
            }
            if !i.logTail.isEmpty {
                print("  log tail:")
                for line in i.logTail.suffix(10) { print("    \(line)") }
            }
        }
    }

    struct Ack: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Acknowledge an incident: it stops climbing.")
        @OptionGroup var options: APIOptions
        @Argument var id: String

        func run() async throws {
            let data = try await options.client.call("POST", "/v1/incidents/\(id)/ack")
            if options.json { return printJSON(data) }
            print("\(id) acknowledged")
        }
    }

    struct Resolve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Resolve an incident.")
        @OptionGroup var options: APIOptions
        @Argument var id: String
        @Option(name: .long, help: "Root cause, for the post-incident record.") var rootCause = ""

        func run() async throws {
            let data = try await options.client.call("POST", "/v1/incidents/\(id)/resolve", body: try JSONEncoder().encode(["rootCause": rootCause]))
            if options.json { return printJSON(data) }
            print("\(id) resolved")
        }
    }

    struct Report: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The post-incident record of a resolved incident, as Markdown.")
        @OptionGroup var options: APIOptions
        @Argument var id: String

        func run() async throws {
            let data = try await options.client.call("GET", "/v1/incidents/\(id)/report")
            if options.json {
                printJSON(try JSONEncoder().encode(["id": id, "markdown": String(decoding: data, as: UTF8.self)]))
            } else {
                print(String(decoding: data, as: UTF8.self))
            }
        }
    }
}
