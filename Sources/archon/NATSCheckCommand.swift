import ArgumentParser

struct NATSCheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nats-check", abstract: "Connect to NATS and check publish/subscribe, JetStream and KV.")
    func run() throws { print("todo") }
}
