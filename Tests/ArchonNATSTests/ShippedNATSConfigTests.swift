import ArchonNATS
import ArchonTestSupport
import Foundation
import Testing

/// The nats-server configurations we ship (deploy/nats), run as shipped: only the machine-specific parts (port,
/// store, certificate folder, route hosts) are replaced, and the test fails if they cannot be found, so it follows
/// the files rather than a copy of them.
@Suite("The shipped nats-server configuration refuses what it must")
struct ShippedNATSConfigTests {
    static let deploy = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("deploy/nats").path
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("archon-shipped-\(UUID().uuidString)").path
    let credentials: FleetCredentials
    var tlsDirectory: String { "\(directory)/tls" }

    init() throws {
        credentials = try FleetCredentials.create(in: "\(directory)/credentials", nodes: ["n1", "n2"])
        try LoopbackCertificates.make(in: "\(directory)/tls")
    }

    /// deploy/nats/nats-server.conf on a loopback port, with nats-auth.conf from `archon credentials` beside it.
    func startShippedServer() throws -> NATSServer {
        let shipped = try String(contentsOfFile: "\(Self.deploy)/nats-server.conf", encoding: .utf8)
        let store = URL(fileURLWithPath: "\(directory)/server")
        try FileManager.default.createDirectory(at: store, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: credentials.authorizationFile, toPath: store.appendingPathComponent("nats-auth.conf").path)
        let tls = tlsDirectory
        let configuration = { @Sendable (port: Int, storeDirectory: String) -> String in
            (try? NATSCluster.replacing(shipped, [
                ("listen: 0.0.0.0:4222", "listen: 127.0.0.1:\(port)"),
                ("http: 127.0.0.1:8222", ""),
                ("/etc/nats/tls/", "\(tls)/"),
                ("/var/lib/nats/jetstream", storeDirectory),
            ])) ?? "invalid: the shipped configuration changed shape"
        }
        return try NATSServer(storeDirectory: store, configuration: configuration)
    }

    func connect(_ server: NATSServer, seedFile: String?, node: String? = nil, tls: Bool = true) async throws -> NATSConnection {
        var options = NATSOptions(servers: [server.url], name: "shipped-test", connectTimeout: .seconds(2))
        if let seedFile { options = try credentials.natsOptions(servers: [server.url], name: "shipped-test", seedFile: seedFile, node: node) }
        if tls { options.tls = NATSOptions.TLS(caFile: "\(tlsDirectory)/ca.pem") }
        // Retried: nats.c 3.4 sends an empty signature for 1 nonce in 256 (docs/security.md), refused as a wrong key.
        return try await connectRetryingRefusals(options, logger: testLogger)
    }

    @Test func itRequiresTLSAndACredentialAndKeepsNodesInTheirLane() async throws {
        let server = try startShippedServer()
        defer { server.stop() }

        // Plain TCP is refused even with a valid key; TLS without a key is refused too.
        await #expect(throws: NATSError.self) { _ = try await connect(server, seedFile: credentials.adminSeedFile, tls: false) }
        await #expect(throws: NATSError.self) { _ = try await connect(server, seedFile: nil) }

        // The controller's identity, over TLS, sets up the fleet.
        let controller = try await connect(server, seedFile: credentials.controllerSeedFile).jetStream()
        try await Fleet.ensureStreams(controller)
        let desired = try await controller.keyValue(KeyValueConfig(bucket: Fleet.desiredBucket))
        try await desired.put("n2.j2", [2])

        // A node: its own events only; no key written; no stream created.
        let node = try await connect(server, seedFile: credentials.nodeSeedFile("n1"), node: "n1").jetStream(timeout: .seconds(1))
        #expect(try await node.publish(Fleet.eventsSubject(node: "n1", job: "j1"), [1]).sequence > 0)
        await #expect(throws: NATSError.self) { _ = try await node.publish(Fleet.eventsSubject(node: "n2", job: "j2"), [2]) }
        await #expect(throws: NATSError.self) { try await node.createOrUpdateStream(StreamConfig(name: "EVIL", subjects: ["evil.>"])) }
        let nodeDesired = try await node.keyValue(KeyValueConfig(bucket: Fleet.desiredBucket))
        await #expect(throws: NATSError.self) { _ = try await nodeDesired.put("n2.j2", [9]) }
        #expect(try await desired.get("n2.j2")?.value == [2])
    }

    /// The cluster files (their hosts and folders replaced) are configurations nats-server accepts, with the
    /// certificates and identities they name.
    @Test(arguments: ["nats-1", "nats-2", "nats-3"])
    func theClusterConfigurationsAreValid(server name: String) throws {
        let shipped = try String(contentsOfFile: "\(Self.deploy)/cluster/\(name).conf", encoding: .utf8)
        let folder = "\(directory)/\(name)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: credentials.authorizationFile, toPath: "\(folder)/nats-auth.conf")
        let text = try NATSCluster.replacing(shipped, [
            ("/etc/nats/tls/", "\(tlsDirectory)/"),
            ("/var/lib/nats/jetstream", "\(folder)/store"),
            (".internal:6222", ":6222"),
        ])
        try text.write(toFile: "\(folder)/server.conf", atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = try natsServerExecutable()
        process.arguments = ["-c", "\(folder)/server.conf", "-t"]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let said = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(said)")
    }
}
