@testable import ArchonNATS
import ArchonTestSupport
import Testing

/// nats.c before 3.8.3 writes past its message array in `natsSubscription_Fetch` when more than half of the batch is
/// already waiting in the client and more deliveries arrive while it fetches; found as heap corruption under load
/// (`free(): invalid pointer` in `natsMsgList_Destroy`). ``PullConsumer/fetchSize(batch:waiting:)`` sizes the fetch so that
/// it cannot happen.
@Suite("Pull fetch with deliveries already waiting, against a real nats-server")
struct PullFetchOverflowTests {
    @Test func theFetchSizeAlwaysExceedsTwiceWhatWaits() {
        #expect(PullConsumer.fetchSize(batch: 256, waiting: 0) == 256)
        #expect(PullConsumer.fetchSize(batch: 5, waiting: 0) == 5)
        for waiting in [1, 63, 64, 127, 128, 200, 255, 256, 1000, 100_000] {
            // Even with 64 more arriving between the count and the fetch, the taken part stays under half.
            #expect(PullConsumer.fetchSize(batch: 256, waiting: waiting) > 2 * (waiting + 64))
        }
    }

    @Test func aFetchStartingWithMostOfItsBatchWaitingTakesEveryMessageOnce() async throws {
        let server = try NATSServer()
        let connection = try await connect(server)
        let js = try connection.jetStream()
        try await js.createOrUpdateStream(StreamConfig(name: "EV", subjects: ["ev.>"]))
        for i in 0..<600 { try connection.publish("ev.\(i % 7)", [UInt8(i % 256)]) }
        try await connection.flush()
        while try await js.streamBounds("EV").last < 600 { try await Task.sleep(for: .milliseconds(20)) }
        let consumer = try await js.pullConsumer(stream: "EV", durable: "c", filterSubject: "ev.>", ackWait: .seconds(30))

        // 200 deliveries no fetch asked for (as after a fetch that gave up), waiting in the client…
        try connection.publish("$JS.API.CONSUMER.MSG.NEXT.EV.c", Array(#"{"batch":200}"#.utf8), reply: consumer.inbox)
        let deadline = ContinuousClock.now + .seconds(10)
        while consumer.waitingInClient < 200, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        #expect(consumer.waitingInClient == 200)
        // …and 100 more arriving while the next fetch runs: nats.c 3.4.1 would store them past its array.
        let stray = Task {
            try await Task.sleep(for: .milliseconds(50))
            try connection.publish("$JS.API.CONSUMER.MSG.NEXT.EV.c", Array(#"{"batch":100}"#.utf8), reply: consumer.inbox)
        }
        var seen = Set<UInt64>()
        let first = try await consumer.fetch(batch: 256, timeout: .seconds(1))
        #expect(first.count == 256, "a fetch returns the batch asked for; what came beyond it waits for the next")
        try await stray.value
        var batch = first
        while !batch.isEmpty {
            for message in batch {
                let sequence = try #require(message.metadata?.streamSequence)
                #expect(seen.insert(sequence).inserted, "stream sequence \(sequence) delivered twice")
                try message.ack()
            }
            if seen.count == 600 { break }
            batch = try await consumer.fetch(batch: 256, timeout: .seconds(1))
        }
        #expect(seen.count == 600)
    }
}
