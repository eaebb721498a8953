import ArchonDev
import ArgumentParser
import Foundation

/// `archon credentials`: the fleet's NATS identities, permissions and assignment signing key.
struct CredentialsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "credentials",
        abstract: "Create the fleet's NATS identities (NKeys), their permissions and the assignment signing key.",
        discussion: """
            Idempotent: existing keys are kept, missing ones are created, and nats-auth.conf (the nats-server \
            authorization block: public keys and permissions only) is rewritten from every node seed present. \
            Add a node with --node and reload nats-server (nats-server --signal reload). See docs/security.md.
            """)

    @Option(name: .long, help: "Folder of the credentials (created with mode 0700).")
    var dir: String

    @Option(name: .long, parsing: .singleValue, help: "A node id to create an identity for (repeatable).")
    var node: [String] = []

    func validate() throws {
        for id in node where id.range(of: "^[A-Za-z0-9_-]{1,64}$", options: .regularExpression) == nil {
            throw ValidationError("--node must be 1-64 of A-Z a-z 0-9 _ - (it is part of NATS subjects), got '\(id)'")
        }
    }

    func run() throws {
        let credentials = try FleetCredentials.create(in: dir, nodes: node)
        print("""
            controller:      \(credentials.controllerSeedFile)  (natsNKeySeedFile in the controller config)
            signing key:     \(credentials.signingKeyFile)  (assignmentSigningKeyFile; controllers only)
            public key:      \(credentials.signingPublicKeyFile)  (archon agent --assignment-public-key)
            admin:           \(credentials.adminSeedFile)  (ARCHON_NATS_NKEY_SEED for operators' tools)
            nodes:           \(credentials.nodes().map { "\($0) → \(credentials.nodeSeedFile($0))" }.joined(separator: ", "))
            nats-server:     \(credentials.authorizationFile)  (include it from nats-server.conf, then reload)
            """)
    }
}
