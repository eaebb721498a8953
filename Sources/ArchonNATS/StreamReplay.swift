internal import CNATS
import Dispatch
import Glibc
import Synchronization

/// What a ``StreamReplay`` yields.
public enum StreamReplayEvent: Sendable {
    /// A stored message, in stream order.
    case message(NATSMessage)
    /// Everything stored when the replay started has been delivered; what follows is new.
    case caughtUp
}

extension JetStream {
    /// Reads the messages of `stream` on `filter` (wildcards allowed) from the first stored one, then follows new ones:
    /// an ordered consumer (ephemeral, flow-controlled, recreated by nats.c after a gap), so nothing is acknowledged and
    /// the stream is not changed. For readers of history, such as the dashboard's loss curve of one job.
    public func replay(stream: String, filter: String, bufferLimit: Int = 4096) async throws(NATSError) -> StreamReplay {
        let (sub, pending) = try await connection.blocking.run { () throws(NATSError) -> (UncheckedHandle, UInt64) in
            var opts = jsSubOptions()
            try check(jsSubOptions_Init(&opts), "jsSubOptions_Init")
            opts.Ordered = true
            opts.Config.DeliverPolicy = js_DeliverAll
            var jerr = jsErrCode(rawValue: 0)
            var sub: OpaquePointer?
            let name = strdup(stream)
            defer { free(name) }
            opts.Stream = UnsafePointer(name)
            try check(js_SubscribeSync(&sub, self.handle, filter, nil, &opts, &jerr), "replay \(stream) on \(filter)", jsError: jerr)
            // Anything stored on the filter yet? (A new consumer's own pending count can read 0 for a moment.) The
            // last message on the filter answers; its absence means there is no history to wait for.
            var last: OpaquePointer?
            let status = js_GetLastMsg(&last, self.handle, stream, filter, nil, &jerr)
            if last != nil { natsMsg_Destroy(last) }
            let pending: UInt64 = status == NATS_NOT_FOUND || jerr.rawValue == 10037 ? 0 : 1
            return (UncheckedHandle(sub!), pending)
        }
        return StreamReplay(subscription: sub.pointer, jetStream: self, pending: pending, bufferLimit: bufferLimit)
    }
}

/// A replay as an `AsyncSequence` (see ``JetStream/replay(stream:filter:bufferLimit:)``). A dedicated Dispatch thread
/// waits on nats.c's subscription and hands messages over with back-pressure: a slow reader slows the replay (flow
/// control holds the server back), nothing is dropped. ``stop()`` (or releasing it) ends it.
public final class StreamReplay: AsyncSequence, @unchecked Sendable {
    public typealias Element = StreamReplayEvent

    private let subscription: OpaquePointer
    private let stopped = StopFlag()
    private let pump: CreditedPump<StreamReplayEvent>

    init(subscription: OpaquePointer, jetStream: JetStream, pending: UInt64, bufferLimit: Int) {
        self.subscription = subscription
        let stopped = self.stopped
        let handle = UncheckedHandle(subscription)
        pump = CreditedPump(label: "archon.nats.replay", limit: bufferLimit) { send in
            withExtendedLifetime(jetStream) {
                var caughtUp = pending == 0
                if caughtUp { send(.caughtUp) }
                while !stopped.value {
                    var msg: OpaquePointer?
                    let status = natsSubscription_NextMsg(&msg, handle.pointer, 500)
                    if status == NATS_TIMEOUT { continue }
                    guard status == NATS_OK, let msg else { break }  // unsubscribed or connection closed
                    var left: UInt64 = 1
                    var meta: UnsafeMutablePointer<jsMsgMetaData>?
                    if natsMsg_GetMetaData(&meta, msg) == NATS_OK, let meta {
                        left = meta.pointee.NumPending
                        jsMsgMetaData_Destroy(meta)
                    }
                    let message = NATSMessage(msg)
                    natsMsg_Destroy(msg)
                    send(.message(message))
                    if !caughtUp, left == 0 {
                        caughtUp = true
                        send(.caughtUp)
                    }
                }
            }
        }
    }

    /// Ends the replay; the sequence finishes.
    public func stop() {
        stopped.value = true
        natsSubscription_Unsubscribe(subscription)
    }

    deinit {
        stop()
        pump.awaitReaderEnd()  // before the subscription is freed
        natsSubscription_Destroy(subscription)
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: CreditedPump<StreamReplayEvent>.Iterator
        let owner: StreamReplay  // keeps the replay alive while someone iterates

        public mutating func next() async -> StreamReplayEvent? { await base.next() }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: pump.makeIterator(), owner: self)
    }
}

/// A flag two threads share.
final class StopFlag: Sendable {
    private let flag = Mutex(false)
    var value: Bool {
        get { flag.withLock { $0 } }
        set { flag.withLock { $0 = newValue } }
    }
}
