import ArgumentParser

/// The one binary: daemons (`controller`, `agent`, `dev`) and the operator CLI.
@main
struct Archon: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "archon",
        abstract: "Archon Fleet: runs the training-failure runbook automatically across a fleet of GPU nodes.",
        version: ArchonVersion.current,
        subcommands: [
            ControllerCommand.self, AgentCommand.self, DevCommand.self,
            JobCommand.self, NodeCommand.self, DatasetCommand.self, IncidentCommand.self, SilenceCommand.self,
            NATSCheckCommand.self, CredentialsCommand.self, TokenCommand.self, BenchCommand.self, SimCommand.self, ChaosCommand.self,
        ]
    )
}

enum ArchonVersion {
    static let current = "0.1.0"
}
