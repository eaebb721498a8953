import ArchonNATS
import ArgumentParser
import Foundation

/// How a command reaches NATS: servers, identity and TLS (`archon agent`, `archon nats-check`).
struct NATSClientOptions: ParsableArguments {
    @Option(name: .long, help: "NATS server URL(s), comma-separated (env ARCHON_NATS).")
    var nats = ProcessInfo.processInfo.environment["ARCHON_NATS"] ?? "nats://127.0.0.1:4222"

    @Option(name: .long, help: "File holding this identity's NKey seed, as `archon credentials` writes it (env ARCHON_NATS_NKEY_SEED). Without it, no authentication.")
    var natsNkeySeed: String = ProcessInfo.processInfo.environment["ARCHON_NATS_NKEY_SEED"] ?? ""

    @Option(name: .long, help: "PEM file of the CA that signed the NATS servers' certificates: connect with TLS.")
    var natsTlsCa: String?

    @Option(name: .long, help: "Client certificate (PEM) for NATS servers that verify clients; with --nats-tls-key.")
    var natsTlsCert: String?

    @Option(name: .long, help: "Key of --nats-tls-cert.")
    var natsTlsKey: String?

    func validate() throws {
        if (natsTlsCert == nil) != (natsTlsKey == nil) {
            throw ValidationError("--nats-tls-cert and --nats-tls-key go together")
        }
    }

    func options(name: String) throws -> NATSOptions {
        var options = NATSOptions(url: nats, name: name)
        if !natsNkeySeed.isEmpty { options.auth = try .nkey(seedFile: natsNkeySeed) }
        if natsTlsCa != nil || natsTlsCert != nil {
            options.tls = NATSOptions.TLS(caFile: natsTlsCa, certificateFile: natsTlsCert, keyFile: natsTlsKey)
        }
        return options
    }
}
