import ArchonDev
import ArgumentParser
import Foundation
import Logging

/// `archon bench`: measurements an operator can repeat on their own hardware.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Measure Archon on this machine (starts its own nats-server).", subcommands: [State.self, Ingest.self, Latency.self, Codec.self, Agent.self])

    struct Ingest: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The controller's ingest rate against a bare pull consumer of the same stream, at given fleet sizes.")

        @Option(help: "Tracked jobs, comma-separated; 0 = events of jobs the controller does not know.") var jobs = "200,0,10000"
        @Option(help: "Events in the stream each round.") var events = 300_000
        @Option(help: "Rounds per size (bare consumer and controller alternate).") var rounds = 3
        @Option(help: "Fetch batch, the same for both.") var batch = 256
        @Option(help: "Also write the rows as JSON to this file.") var json: String?

        func run() async throws {
            var logger = Logger(label: "archon.bench")
            logger.logLevel = .error
            var rows: [IngestBenchmark.Row] = []
            for size in numbers(jobs) {
                say(size == 0 ? "measuring events of 200 unknown jobs…" : "measuring \(size) tracked jobs…")
                rows.append(try await IngestBenchmark.run(trackedJobs: size, simulatedJobs: 200, events: events, rounds: rounds,
                                                          batch: batch, logger: logger) { say("  \($0)") })
            }
            say(IngestBenchmark.table(rows))
            if let json { try writeJSON(rows, to: json) }
        }
    }

    struct Codec: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Encoding and decoding one event of each kind (protobuf-c through ArchonWire): ns per message, and its size.")

        @Option(help: "Seconds per kind and round (three rounds, median kept).") var seconds = 0.2
        @Option(help: "Also write the rows as JSON to this file.") var json: String?

        func run() async throws {
            let rows = try CodecBenchmark.run(seconds: seconds)
            say(CodecBenchmark.table(rows))
            if let json { try writeJSON(rows, to: json) }
        }
    }

    struct Agent: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "A node agent's CPU and memory while its trainers write events (a real agent, as a child process).")

        @Option(help: "Trainers running at once.") var trainers = 8
        @Option(help: "Lines per second each trainer writes, comma-separated (one measurement each).") var rates = "10,100"
        @Option(help: "Seconds measured per rate (after the trainers start and 3 s more).") var seconds = 20.0
        @Option(help: "Also write the rows as JSON to this file.") var json: String?

        func run() async throws {
            var logger = Logger(label: "archon.bench")
            logger.logLevel = .error
            let archon = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
            let rows = try await AgentBenchmark.run(trainers: trainers, rates: numbers(rates), seconds: seconds, archon: archon,
                                                    logger: logger) { say("  \($0)") }
            say(AgentBenchmark.table(rows))
            if let json { try writeJSON(rows, to: json) }
        }
    }

    struct Latency: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The controller's decision latency: failure event stored -> remediated assignment in KV, idle and under load.")

        @Option(help: "Running jobs in the stored fleet.") var jobs = 2000
        @Option(help: "Failures measured per load level (each of a job that has not failed yet).") var samples = 300
        @Option(help: "Background events per second, comma-separated; 0 = idle.") var load = "0"
        @Option(help: "Also write the rows as JSON to this file.") var json: String?

        func run() async throws {
            var logger = Logger(label: "archon.bench")
            logger.logLevel = .error
            let rates = numbers(load)
            let rows = try await LatencyBenchmark.run(jobs: jobs, samples: samples, loadRates: rates.isEmpty ? [0] : rates,
                                                      logger: logger) { say("  \($0)") }
            say(LatencyBenchmark.table(rows))
            if let json { try writeJSON(rows, to: json) }
        }
    }

    struct State: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The controller's state: bytes written per batch and rebuild time at given fleet sizes.")

        @Option(help: "Fleet sizes in jobs, comma-separated.") var jobs = "1000,10000,100000"
        @Option(help: "Nodes per job (10 jobs per node by default).") var nodesPerJob = 0.1
        @Option(help: "Also write the rows as JSON to this file.") var json: String?

        func run() async throws {
            var logger = Logger(label: "archon.bench")
            logger.logLevel = .warning
            var rows: [StateBenchmark.Row] = []
            for size in numbers(jobs) {
                let nodes = max(1, Int(Double(size) * nodesPerJob))
                say("measuring \(size) jobs on \(nodes) nodes…")
                rows.append(try await StateBenchmark.run(jobs: size, nodes: nodes, logger: logger))
            }
            say(StateBenchmark.table(rows))
            if let json { try writeJSON(rows, to: json) }
        }
    }
}

private func writeJSON<T: Encodable>(_ value: T, to path: String) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    try encoder.encode(value).write(to: URL(fileURLWithPath: path))
}

/// One line to standard output, unbuffered: progress shows as it comes, also when the output is a file.
private func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

/// The integers of a comma-separated option ("200, 0,10000").
private func numbers(_ list: String) -> [Int] {
    list.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
}
