import ArchonNATS
import ArchonTestSupport
import Testing

/// ``JetStream/replay(stream:filter:bufferLimit:)`` against a real nats-server: history in order, the caught-up mark,
/// what arrives later, and a replay dropped half-read.
@Suite("Stream replay (ordered consumer) against a real nats-server")
struct StreamReplayTests {
    @Test func historyThenCaughtUpThenNewMessagesOfTheFilterOnly() async throws {
        let server = try NATSServer()
        let connection = try await connect(server)
        let js = try connection.jetStream()
        try await js.createOrUpdateStream(StreamConfig(name: "EV", subjects: ["ev.>"]))
        for i in 0..<30 { _ = try await js.publish("ev.n\(i % 3).\(i % 2 == 0 ? "a" : "b")", [UInt8(i)]) }
        let replay = try await js.replay(stream: "EV", filter: "ev.*.a", bufferLimit: 4)
        var seen: [UInt8] = []
        var caughtUpAfter: Int?
        for await event in replay {
            switch event {
            case .message(let m):
                #expect(m.subject.hasSuffix(".a"))
                seen.append(m.payload[0])
                if caughtUpAfter != nil, seen.count == 16 { replay.stop() }
            case .caughtUp:
                caughtUpAfter = seen.count
                _ = try await js.publish("ev.n9.a", [100])
                _ = try await js.publish("ev.n9.b", [101])
            }
        }
        #expect(caughtUpAfter == 15)
        #expect(seen == Array(stride(from: 0, to: 30, by: 2).map(UInt8.init)) + [100])
    }

    @Test func anEmptyFilterIsCaughtUpAtOnce() async throws {
        let server = try NATSServer()
        let connection = try await connect(server)
        let js = try connection.jetStream()
        try await js.createOrUpdateStream(StreamConfig(name: "EV", subjects: ["ev.>"]))
        let replay = try await js.replay(stream: "EV", filter: "ev.*.nothing")
        var iterator = replay.makeAsyncIterator()
        guard case .caughtUp = await iterator.next() else { Issue.record("no caught-up mark first"); return }
        replay.stop()
    }

    /// Stopped with messages taken but unread, then released: libdispatch traps if a semaphore is freed below its
    /// initial value, which is how the dashboard's first version crashed (a page read until caught up, then stopped).
    @Test func aReplayDroppedHalfReadIsReleasedCleanly() async throws {
        let server = try NATSServer()
        let connection = try await connect(server)
        let js = try connection.jetStream()
        try await js.createOrUpdateStream(StreamConfig(name: "EV", subjects: ["ev.>"]))
        for i in 0..<50 { _ = try await js.publish("ev.x", [UInt8(i)]) }
        for _ in 0..<5 {
            var replay: StreamReplay? = try await js.replay(stream: "EV", filter: "ev.x", bufferLimit: 8)
            var iterator = replay!.makeAsyncIterator()
            _ = await iterator.next()
            try await Task.sleep(for: .milliseconds(100))  // the reader thread takes every credit meanwhile
            replay!.stop()
            replay = nil
            _ = iterator
        }
    }
}
