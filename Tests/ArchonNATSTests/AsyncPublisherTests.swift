import ArchonNATS
import ArchonTestSupport
import Testing

/// Batch publishing (the agent's outbox) against a real nats-server: order, de-duplication, refusals.
@Suite("JetStream batch publish against a real nats-server")
struct AsyncPublisherTests {
    @Test func aBatchIsStoredInOrderAndARepublishIsDeduplicated() async throws {
        let server = try NATSServer()
        let connection = try await connect(server)
        let js = try connection.jetStream()
        try await js.createOrUpdateStream(StreamConfig(name: "EV", subjects: ["ev.>"], duplicateWindow: .seconds(60)))
        let publisher = try AsyncPublisher(connection: connection)
        let batch = (0..<500).map { (subject: "ev.\($0 % 5)", payload: [UInt8($0 % 256)], messageID: "m\($0)") }
        #expect(await publisher.publish(batch, timeout: .seconds(10)) == 500)
        #expect(try await js.streamBounds("EV") == (first: 1, last: 500))
        for sequence in [1, 2, 250, 500] as [UInt64] {
            #expect(try await js.message("EV", sequence: sequence)?.payload == [UInt8((sequence - 1) % 256)])
        }
        // Sent again (an agent that crashed before forgetting them): acknowledged, not stored twice.
        #expect(await publisher.publish(Array(batch.suffix(100)), timeout: .seconds(10)) == 100)
        #expect(try await js.streamBounds("EV").last == 500)
    }

    @Test func aRefusedMessageEndsTheAcknowledgedPart() async throws {
        let server = try NATSServer()
        let connection = try await connect(server)
        let js = try connection.jetStream()
        try await js.createOrUpdateStream(StreamConfig(name: "EV", subjects: ["ev.>"]))
        let publisher = try AsyncPublisher(connection: connection)
        // The third has no stream: nothing stores it, so it and what follows are to be sent again.
        let batch = [("ev.a", [UInt8(1)], "a1"), ("ev.a", [2], "a2"), ("nowhere.x", [3], "x1"), ("ev.a", [4], "a3")]
            .map { (subject: $0.0, payload: $0.1, messageID: $0.2) }
        #expect(await publisher.publish(batch, timeout: .seconds(5)) == 2)
    }
}
