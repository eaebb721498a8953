public import ArchonNATS
import ArchonWire
import Foundation

/// A folder of Archon credentials, as `archon credentials` and `archon dev` write it:
///
///     controller.nk              NKey seed of the controllers (all of them: leader and standbys)
///     admin.nk                   NKey seed of operators' tools (`archon nats-check`, tests)
///     nodes/<node>.nk            NKey seed of each node's agent
///     assignment-signing.key     Ed25519 key the controller signs assignments with
///     assignment-signing.pub     its public key, for every agent
///     nats-auth.conf             nats-server `authorization` block: the public keys and their permissions
///
/// Creating is idempotent: existing keys are kept, missing ones are created, and `nats-auth.conf` is rewritten
/// from every seed present (then reload nats-server: `nats-server --signal reload`).
public struct FleetCredentials: Sendable {
    public let directory: String

    public var controllerSeedFile: String { "\(directory)/controller.nk" }
    public var adminSeedFile: String { "\(directory)/admin.nk" }
    public var signingKeyFile: String { "\(directory)/assignment-signing.key" }
    public var signingPublicKeyFile: String { "\(directory)/assignment-signing.pub" }
    public var authorizationFile: String { "\(directory)/nats-auth.conf" }
    public func nodeSeedFile(_ node: String) -> String { "\(directory)/nodes/\(node).nk" }

    /// Creates what is missing in `directory` for `nodes` (and keeps every node already there).
    @discardableResult
    public static func create(in directory: String, nodes: [String]) throws -> FleetCredentials {
        let credentials = FleetCredentials(directory: directory)
        try credentials.add(nodes: nodes)
        return credentials
    }

    public init(directory: String) {
        self.directory = directory
    }

    /// Adds identities for `nodes` (existing ones are kept) and rewrites `nats-auth.conf`.
    public func add(nodes: [String]) throws {
        let fm = FileManager.default
        try fm.createDirectory(atPath: "\(directory)/nodes", withIntermediateDirectories: true,
                               attributes: [.posixPermissions: 0o700])
        for file in [controllerSeedFile, adminSeedFile] + nodes.map(nodeSeedFile) where !fm.fileExists(atPath: file) {
            try NKeyPair.generate().writeSeed(to: file)
        }
        if !fm.fileExists(atPath: signingKeyFile) {
            try AssignmentSigner.generate(keyFile: signingKeyFile, publicKeyFile: signingPublicKeyFile)
        }
        try writeAuthorization()
    }

    /// Node ids with a seed here.
    public func nodes() -> [String] {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: "\(directory)/nodes")) ?? []
        return files.filter { $0.hasSuffix(".nk") }.map { String($0.dropLast(3)) }.sorted()
    }

    /// The permissions of every identity here.
    public func permissions() throws -> FleetPermissions {
        FleetPermissions(
            trusted: [
                .init(name: "controller", publicKey: try NKeyPair(seedFile: controllerSeedFile).publicKey),
                .init(name: "admin", publicKey: try NKeyPair(seedFile: adminSeedFile).publicKey),
            ],
            nodes: try nodes().map { .init(name: $0, publicKey: try NKeyPair(seedFile: nodeSeedFile($0)).publicKey) })
    }

    private func writeAuthorization() throws {
        try Data(try permissions().configuration().utf8).write(to: URL(fileURLWithPath: authorizationFile), options: .atomic)
    }

    /// How a client of this identity connects: NKey auth, and for a node its own inbox prefix.
    public func natsOptions(servers: [String], name: String, seedFile: String, node: String? = nil) throws -> NATSOptions {
        var options = NATSOptions(servers: servers, name: name, auth: try .nkey(seedFile: seedFile))
        if let node { options.inboxPrefix = FleetPermissions.inboxPrefix(node: node) }
        return options
    }
}
