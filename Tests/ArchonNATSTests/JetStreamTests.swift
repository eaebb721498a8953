import ArchonNATS
import ArchonTestSupport
import Testing

@Suite("JetStream against a real nats-server")
struct JetStreamTests {
    @Test func publishDeduplicatesByMessageID() async throws {
        let server = try NATSServer()
        let js = try await connect(server).jetStream()
        try await js.createOrUpdateStream(StreamConfig(name: "ARCHON_EVENTS", subjects: ["archon.v1.events.>"]))
        // Create-or-update twice is fine.
        try await js.createOrUpdateStream(StreamConfig(name: "ARCHON_EVENTS", subjects: ["archon.v1.events.>"], maxAge: .seconds(3600)))

        let first = try await js.publish("archon.v1.events.n1.j1", [1], messageID: "j1.1.1")
        let again = try await js.publish("archon.v1.events.n1.j1", [1], messageID: "j1.1.1")
        let next = try await js.publish("archon.v1.events.n1.j1", [2], messageID: "j1.1.2")
        #expect(first.stream == "ARCHON_EVENTS")
        #expect(!first.duplicate)
        #expect(again.duplicate)
        #expect(again.sequence == first.sequence)
        #expect(next.sequence == first.sequence + 1)
    }

    @Test func aRestartedConsumerLosesNothingAckedAndSkipsNothingUnacked() async throws {
        let server = try NATSServer()
        let js = try await connect(server).jetStream()
        try await js.createOrUpdateStream(StreamConfig(name: "EV", subjects: ["ev.>"]))
        for i in 1...10 {
            _ = try await js.publish("ev.n1.j1", [UInt8(i)], messageID: "m\(i)")
        }

        do {
            let consumer = try await js.pullConsumer(stream: "EV", durable: "controller", filterSubject: "ev.>", ackWait: .seconds(1))
            let batch = try await consumer.fetch(batch: 5, timeout: .seconds(2))
            #expect(batch.map { $0.payload } == [[1], [2], [3], [4], [5]])
            #expect(batch.first?.metadata?.deliveries == 1)
            #expect(batch.first?.metadata?.pending == 9)
            for message in batch.prefix(3) { try await message.ackSync() }
            // 4 and 5 are never acknowledged: the consumer "crashes" here.
        }

        let restarted = try await js.pullConsumer(stream: "EV", durable: "controller", filterSubject: "ev.>", ackWait: .seconds(1))
        var seen: [UInt8] = []
        var deliveries: [UInt8: UInt64] = [:]
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(10)
        while seen.count < 7, clock.now < deadline {
            for message in try await restarted.fetch(batch: 10, timeout: .milliseconds(500)) {
                seen.append(message.payload[0])
                deliveries[message.payload[0]] = message.metadata?.deliveries
                try await message.ackSync()
            }
        }
        #expect(seen.sorted() == [4, 5, 6, 7, 8, 9, 10], "acked 1-3 never come back; unacked 4-5 do")
        #expect(deliveries[4] == 2)
        #expect(deliveries[6] == 1)
        #expect(try await restarted.fetch(batch: 10, timeout: .milliseconds(300)).isEmpty)
    }

    @Test func nakRedeliversAndTermDoesNot() async throws {
        let server = try NATSServer()
        let js = try await connect(server).jetStream()
        try await js.createOrUpdateStream(StreamConfig(name: "EV", subjects: ["ev.>"]))
        _ = try await js.publish("ev.a", [1])
        _ = try await js.publish("ev.b", [2])
        let consumer = try await js.pullConsumer(stream: "EV", durable: "c", filterSubject: "ev.>", ackWait: .seconds(30))
        let batch = try await consumer.fetch(batch: 2, timeout: .seconds(2))
        #expect(batch.count == 2)
        try batch[0].nak()
        try batch[1].term()
        let redelivered = try await consumer.fetch(batch: 2, timeout: .seconds(2))
        #expect(redelivered.map { $0.payload } == [[1]])
        #expect(redelivered.first?.metadata?.deliveries == 2)
    }
}
