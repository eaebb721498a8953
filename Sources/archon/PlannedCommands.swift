import ArgumentParser

/// Subcommands from DESIGN.md that later work fills in; until then they say so and exit non-zero.
protocol PlannedCommand: ParsableCommand {}

extension PlannedCommand {
    func run() throws {
        print("archon \(Self.configuration.commandName ?? ""): not implemented yet in this build")
        throw ExitCode(2)
    }
}

struct ControllerCommand: PlannedCommand {
    static let configuration = CommandConfiguration(
        commandName: "controller", abstract: "Run the controller: consume fleet events, remediate, escalate, serve the HTTP API.")
}

struct DevCommand: PlannedCommand {
    static let configuration = CommandConfiguration(
        commandName: "dev", abstract: "Run a whole fleet on this machine: nats-server, a controller and N agents.")
}

struct JobCommand: PlannedCommand {
    static let configuration = CommandConfiguration(
        commandName: "job", abstract: "Submit, list, show, watch, stop and validate training jobs.")
}

struct NodeCommand: PlannedCommand {
    static let configuration = CommandConfiguration(
        commandName: "node", abstract: "List nodes; cordon and uncordon them.")
}

struct DatasetCommand: PlannedCommand {
    static let configuration = CommandConfiguration(
        commandName: "dataset", abstract: "List and register datasets.")
}

struct IncidentCommand: PlannedCommand {
    static let configuration = CommandConfiguration(
        commandName: "incident", abstract: "List, show, acknowledge, resolve incidents and render their reports.")
}
