internal import CNATS
import Logging

/// Holds what nats.c's callback thread needs; released by the subscription's on-complete callback,
/// since messages can still be in flight after Unsubscribe.
final class SubscriptionSink: Sendable {
    let buffer: BatchBuffer<NATSMessage>
    let subject: String
    let logger: Logger

    init(buffer: BatchBuffer<NATSMessage>, subject: String, logger: Logger) {
        self.buffer = buffer
        self.subject = subject
        self.logger = logger
    }
}

private func onMessage(_ nc: OpaquePointer?, _ sub: OpaquePointer?, _ msg: OpaquePointer?, _ closure: UnsafeMutableRawPointer?) {
    guard let msg else { return }
    let sink = Unmanaged<SubscriptionSink>.fromOpaque(closure!).takeUnretainedValue()
    let message = NATSMessage(msg)
    natsMsg_Destroy(msg)
    if !sink.buffer.push(message) {
        let dropped = sink.buffer.dropped
        // Log the first drop and then every 1000th, so a flood of drops does not flood the log.
        if dropped == 1 || dropped % 1000 == 0 {
            sink.logger.error("nats.subscription.dropped", metadata: ["nats.subject": "\(sink.subject)", "nats.dropped": "\(dropped)"])
        }
    }
}

private func onComplete(_ closure: UnsafeMutableRawPointer?) {
    let unmanaged = Unmanaged<SubscriptionSink>.fromOpaque(closure!)
    unmanaged.takeUnretainedValue().buffer.finish()
    unmanaged.release()
}

/// A core-NATS subscription, consumed as an `AsyncSequence` of message batches.
///
/// Messages pass through a bounded buffer; when the consumer falls behind, new messages are dropped,
/// counted in ``dropped`` and logged — never lost silently. nats.c's own pending limits are set
/// above ours so that drops happen (and are counted) in one place.
public final class NATSSubscription: AsyncSequence, @unchecked Sendable {
    public typealias Element = [NATSMessage]

    private let handle: OpaquePointer
    private let sink: SubscriptionSink
    public let subject: String

    init(connection: NATSConnection, subject: String, queue: String?, bufferLimit: Int) throws(NATSError) {
        let sink = SubscriptionSink(buffer: BatchBuffer(limit: bufferLimit, maxBatch: 256), subject: subject, logger: connection.logger)
        let closure = Unmanaged.passRetained(sink).toOpaque()
        var sub: OpaquePointer?
        let status: natsStatus
        if let queue {
            status = natsConnection_QueueSubscribe(&sub, connection.handle, subject, queue, onMessage, closure)
        } else {
            status = natsConnection_Subscribe(&sub, connection.handle, subject, onMessage, closure)
        }
        guard status == NATS_OK, let sub else {
            let error = NATSError(status, "subscribe(\(subject))")
            Unmanaged<SubscriptionSink>.fromOpaque(closure).release()
            throw error
        }
        natsSubscription_SetPendingLimits(sub, Int32(clamping: bufferLimit * 2), 512 * 1024 * 1024)
        natsSubscription_SetOnCompleteCB(sub, onComplete, closure)
        self.handle = sub
        self.sink = sink
        self.subject = subject
    }

    deinit {
        natsSubscription_Unsubscribe(handle)
        natsSubscription_Destroy(handle)
    }

    /// Stops delivery; the sequence ends after the buffered messages.
    public func unsubscribe() {
        natsSubscription_Unsubscribe(handle)
    }

    /// Messages dropped because the consumer fell behind (ours plus nats.c's).
    public var dropped: Int {
        var libraryDropped: Int64 = 0
        natsSubscription_GetDropped(handle, &libraryDropped)
        return sink.buffer.dropped + Int(libraryDropped)
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let buffer: BatchBuffer<NATSMessage>
        // Keeps the subscription alive while someone iterates.
        let owner: NATSSubscription

        public mutating func next() async -> [NATSMessage]? {
            await buffer.next()
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(buffer: sink.buffer, owner: self)
    }
}
