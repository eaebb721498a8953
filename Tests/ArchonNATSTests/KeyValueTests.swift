import ArchonNATS
import ArchonTestSupport
import Testing

@Suite("JetStream KV against a real nats-server")
struct KeyValueTests {
    @Test func compareAndSetRejectsStaleWriters() async throws {
        let server = try NATSServer()
        let kv = try await connect(server).jetStream().keyValue(KeyValueConfig(bucket: "archon_leader"))

        let r1 = try await kv.create("lease", Array("a".utf8))
        await #expect {
            try await kv.create("lease", Array("b".utf8))
        } throws: { ($0 as? NATSError)?.code == .wrongRevision }

        let r2 = try await kv.update("lease", Array("a2".utf8), expectedRevision: r1)
        #expect(r2 > r1)
        // A writer still holding r1 has been deposed.
        await #expect {
            try await kv.update("lease", Array("b".utf8), expectedRevision: r1)
        } throws: { ($0 as? NATSError)?.code == .wrongRevision }

        let entry = try await kv.get("lease")
        #expect(entry?.value == Array("a2".utf8))
        #expect(entry?.revision == r2)
    }

    @Test func getPutDeleteAndKeys() async throws {
        let server = try NATSServer()
        let kv = try await connect(server).jetStream().keyValue(KeyValueConfig(bucket: "archon_jobs", history: 5))
        #expect(try await kv.get("missing") == nil)
        #expect(try await kv.keys().isEmpty)
        try await kv.put("j1", [1])
        try await kv.put("j2", [2])
        try await kv.put("j1", [3])
        #expect(try await kv.get("j1")?.value == [3])
        #expect(try await kv.keys().sorted() == ["j1", "j2"])
        try await kv.delete("j1")
        #expect(try await kv.get("j1") == nil)
        #expect(try await kv.keys() == ["j2"])
        // A deleted key can be created again.
        try await kv.create("j1", [4])
        #expect(try await kv.get("j1")?.value == [4])
    }

    @Test func watchDeliversCurrentValuesThenChangesUnderAPrefix() async throws {
        let server = try NATSServer()
        let kv = try await connect(server).jetStream().keyValue(KeyValueConfig(bucket: "archon_desired"))
        try await kv.put("n1.j0", [0])
        try await kv.put("n2.j9", [9])

        let watch = try await kv.watch("n1.>")
        var events = watch.makeAsyncIterator()
        #expect(await events.next() == .entry(try #require(await kv.getEntry("n1.j0"))))
        #expect(await events.next() == .initialValuesDone)

        try await kv.put("n2.j8", [8])
        try await kv.put("n1.j1", [1])
        try await kv.delete("n1.j0")

        guard case .entry(let put)? = await events.next() else { Issue.record("expected an entry"); return }
        #expect(put.key == "n1.j1")
        #expect(put.value == [1])
        #expect(put.operation == .put)
        guard case .entry(let deleted)? = await events.next() else { Issue.record("expected an entry"); return }
        #expect(deleted.key == "n1.j0")
        #expect(deleted.operation == .delete)
        watch.stop()
    }
}

extension KeyValue {
    func getEntry(_ key: String) async throws -> KVEntry? { try await get(key) }
}
