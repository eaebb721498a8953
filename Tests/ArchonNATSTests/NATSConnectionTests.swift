import ArchonNATS
import ArchonTestSupport
import Logging
import Testing

let testLogger = Logger(label: "archon.test.nats")

func connect(_ server: NATSServer, name: String = "test") async throws -> NATSConnection {
    try await NATSConnection.connect(
        NATSOptions(servers: [server.url], name: name, reconnectDelay: .milliseconds(50), maxReconnectDelay: .milliseconds(200)),
        logger: testLogger)
}

@Suite("Core NATS against a real nats-server", .timeLimit(.minutes(1)))
struct NATSConnectionTests {
    @Test func publishedMessagesArriveInOrderInBatches() async throws {
        let server = try NATSServer()
        let nc = try await connect(server)
        let sub = try nc.subscribe("archon.test.>")
        try await nc.flush()
        for i in 0..<1000 {
            try nc.publish("archon.test.\(i % 3)", Array("m\(i)".utf8))
        }
        try await nc.flush()
        var received: [String] = []
        var batches = 0
        for await batch in sub {
            batches += 1
            received += batch.map { String(decoding: $0.payload, as: UTF8.self) }
            if received.count >= 1000 { break }
        }
        #expect(received == (0..<1000).map { "m\($0)" })
        #expect(batches < 1000, "messages are delivered in batches, not one element each")
        #expect(sub.dropped == 0)
    }

    @Test func aFullBufferDropsAndCountsInsteadOfLosingSilently() async throws {
        let server = try NATSServer()
        let nc = try await connect(server)
        let sub = try nc.subscribe("archon.flood", bufferLimit: 10)
        try await nc.flush()
        for i in 0..<100 { try nc.publish("archon.flood", [UInt8(i)]) }
        try await nc.flush()
        // Nobody consumed yet: everything beyond the buffer is dropped and counted.
        #expect(await eventually { sub.dropped == 90 })
        var received = 0
        for await batch in sub {
            received += batch.count
            if received >= 10 { break }
        }
        #expect(received == 10)
        #expect(received + sub.dropped == 100)
        // Close while the server and the subscription are alive: a server stopped under a connection still busy
        // with slow-consumer errors has crashed nats.c's teardown here (SIGABRT, about one run in five).
        withExtendedLifetime((server, sub)) { nc.close() }
    }

    @Test func requestReply() async throws {
        let server = try NATSServer()
        let responder = try await connect(server, name: "responder")
        let requester = try await connect(server, name: "requester")
        let sub = try responder.subscribe("archon.v1.logs.n1")
        try await responder.flush()
        let serve = Task {
            for await batch in sub {
                for message in batch {
                    try responder.publish(message.reply!, Array("echo:".utf8) + message.payload)
                }
            }
        }
        defer { serve.cancel() }
        let reply = try await requester.request("archon.v1.logs.n1", Array("tail".utf8), timeout: .seconds(2))
        #expect(String(decoding: reply.payload, as: UTF8.self) == "echo:tail")

        await #expect(throws: NATSError.self) {
            _ = try await requester.request("archon.v1.logs.nobody", [], timeout: .milliseconds(300))
        }
    }

    @Test func reconnectsAfterTheServerRestarts() async throws {
        let server = try NATSServer()
        let nc = try await connect(server)
        var events = nc.events.makeAsyncIterator()
        let sub = try nc.subscribe("archon.after")
        try await nc.flush()

        server.stop()
        #expect(await events.next() == .disconnected)
        try server.start()
        let reconnected = await events.next()
        guard case .reconnected = reconnected else {
            Issue.record("expected a reconnect, got \(String(describing: reconnected))")
            return
        }
        #expect(nc.isConnected)
        // The subscription is restored on the new server.
        try nc.publish("archon.after", Array("hello".utf8))
        try await nc.flush()
        var iterator = sub.makeAsyncIterator()
        let batch = await iterator.next()
        #expect(batch?.first.map { String(decoding: $0.payload, as: UTF8.self) } == "hello")
    }

    @Test func connectingToNothingFailsWithTheLibrarysText() async throws {
        let port = try freeLoopbackPort()
        await #expect {
            _ = try await NATSConnection.connect(
                NATSOptions(servers: ["nats://127.0.0.1:\(port)"], connectTimeout: .milliseconds(200)), logger: testLogger)
        } throws: { error in
            guard let error = error as? NATSError else { return false }
            return error.code == .noServer && error.message.contains("127.0.0.1:\(port)")
        }
    }
}
