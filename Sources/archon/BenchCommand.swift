import ArchonDev
import ArgumentParser
import Foundation
import Logging

/// `archon bench`: measurements an operator can repeat on their own hardware.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Measure Archon on this machine (starts its own nats-server).", subcommands: [State.self])

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
            for size in jobs.split(separator: ",").compactMap({ Int($0.trimmingCharacters(in: .whitespaces)) }) {
                let nodes = max(1, Int(Double(size) * nodesPerJob))
                print("measuring \(size) jobs on \(nodes) nodes…")
                rows.append(try await StateBenchmark.run(jobs: size, nodes: nodes, logger: logger))
            }
            print(StateBenchmark.table(rows))
            if let json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                try encoder.encode(rows).write(to: URL(fileURLWithPath: json))
            }
        }
    }
}
