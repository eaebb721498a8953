import ArchonNATS
import ArchonTestSupport
import Foundation
import Testing

/// The identities `archon credentials` creates, against a real nats-server running with them: a node's
/// credential does what an agent needs and nothing else.
@Suite("NATS identities and permissions against a real nats-server")
struct FleetPermissionTests {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("archon-creds-\(UUID().uuidString)").path
    let credentials: FleetCredentials
    let server: NATSServer

    init() throws {
        credentials = try FleetCredentials.create(in: directory, nodes: ["n1", "n2"])
        server = try NATSServer(authorizationFile: credentials.authorizationFile)
    }

    func connect(_ seedFile: String, node: String? = nil) async throws -> NATSConnection {
        var options = try credentials.natsOptions(servers: [server.url], name: "test-\(node ?? "trusted")", seedFile: seedFile, node: node)
        options.connectTimeout = .seconds(2)
        return try await connectRetryingRefusals(options, logger: testLogger)  // the 1-in-256 NKey flake, retried
    }

    /// The controller's identity sets up what agents use.
    func prepareFleet() async throws -> (desired: KeyValue, leader: KeyValue) {
        let js = try await connect(credentials.controllerSeedFile).jetStream()
        try await Fleet.ensureStreams(js)
        let desired = try await js.keyValue(KeyValueConfig(bucket: Fleet.desiredBucket))
        let leader = try await js.keyValue(KeyValueConfig(bucket: Fleet.leaderBucket))
        _ = try await js.keyValue(KeyValueConfig(bucket: Fleet.stateBucket))
        try await desired.put("n1.j1", [1])
        try await desired.put("n2.j2", [2])
        try await leader.put("lease", Array("controller-a".utf8))
        return (desired, leader)
    }

    @Test func aClientWithoutACredentialCannotConnect() async throws {
        await #expect(throws: NATSError.self) {
            _ = try await NATSConnection.connect(NATSOptions(servers: [server.url], connectTimeout: .seconds(1)), logger: testLogger)
        }
        // Nor one with a key the server does not list.
        let stranger = "\(directory)/stranger.nk"
        try NKeyPair.generate().writeSeed(to: stranger)
        await #expect(throws: NATSError.self) { _ = try await connect(stranger) }
    }

    @Test func aSeedFileRoundTripsAndNamesItsPublicKey() throws {
        let pair = NKeyPair.generate()
        #expect(pair.seed.hasPrefix("SU") && pair.seed.count == 58)
        #expect(pair.publicKey.hasPrefix("U") && pair.publicKey.count == 56)
        #expect(NKeyPair(seed: pair.seed)?.publicKey == pair.publicKey)
        var corrupt = Array(pair.seed)
        corrupt[10] = corrupt[10] == "A" ? "B" : "A"
        #expect(NKeyPair(seed: String(corrupt)) == nil)
        let config = try String(contentsOfFile: credentials.authorizationFile, encoding: .utf8)
        #expect(config.contains(try NKeyPair(seedFile: credentials.nodeSeedFile("n1")).publicKey))
        let seed = try String(contentsOfFile: credentials.nodeSeedFile("n1"), encoding: .utf8)
        #expect(!config.contains(seed.trimmingCharacters(in: .whitespacesAndNewlines)), "no seed in the server's configuration")
    }

    @Test func aNodePublishesItsOwnEventsOnly() async throws {
        _ = try await prepareFleet()
        let js = try await connect(credentials.nodeSeedFile("n1"), node: "n1").jetStream(timeout: .seconds(1))
        let ack = try await js.publish(Fleet.eventsSubject(node: "n1", job: "j1"), [1])
        #expect(ack.sequence > 0)
        await #expect(throws: NATSError.self) { _ = try await js.publish(Fleet.eventsSubject(node: "n2", job: "j2"), [2]) }
        await #expect(throws: NATSError.self) { _ = try await js.publish("archon.v1.escalations.L4", [3]) }
    }

    @Test func aNodeWatchesItsOwnDesiredKeysAndWritesNoKey() async throws {
        let (desired, _) = try await prepareFleet()
        let js = try await connect(credentials.nodeSeedFile("n1"), node: "n1").jetStream(timeout: .seconds(1))
        let kv = try await js.keyValue(KeyValueConfig(bucket: Fleet.desiredBucket))
        var own = try await kv.watch("n1.>").makeAsyncIterator()
        #expect(await own.next() == .entry(try #require(await desired.getEntry("n1.j1"))))
        #expect(await own.next() == .initialValuesDone)

        // (A watch over another node's keys is not refused with nats.c 3.4: docs/security.md.)
        await #expect(throws: NATSError.self) { _ = try await kv.put("n1.j9", [9]) }
        await #expect(throws: NATSError.self) { _ = try await kv.get("n2.j2") }
        for bucket in [Fleet.stateBucket, Fleet.leaderBucket] {
            // Binding may be refused already; if it is not, writing is.
            if let other = try? await js.keyValue(KeyValueConfig(bucket: bucket)) {
                await #expect(throws: NATSError.self) { _ = try await other.put("lease", [6]) }
            }
        }
        #expect(try await desired.get("n1.j9") == nil)
    }

    @Test func aNodeAdministersNoStream() async throws {
        _ = try await prepareFleet()
        let js = try await connect(credentials.nodeSeedFile("n1"), node: "n1").jetStream(timeout: .seconds(1))
        await #expect(throws: NATSError.self) {
            try await js.createOrUpdateStream(StreamConfig(name: "EVIL", subjects: ["evil.>"]))
        }
        await #expect(throws: NATSError.self) { try await js.purge(Fleet.eventsStream, below: 1_000) }
        await #expect(throws: NATSError.self) { _ = try await js.keyValue(KeyValueConfig(bucket: "evil")) }
    }

    @Test func aNodeAddedLaterConnectsAfterAReload() async throws {
        await #expect(throws: NATSError.self) { _ = try await connect(credentials.nodeSeedFile("n3"), node: "n3") }
        try credentials.add(nodes: ["n3"])
        try server.reload()
        let connection = try await connect(credentials.nodeSeedFile("n3"), node: "n3")
        connection.close()
        #expect(credentials.nodes() == ["n1", "n2", "n3"])
    }
}
