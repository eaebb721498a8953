internal import CNATS
import Synchronization

/// What nats.c's acknowledgement callback writes: the message ids the server refused.
final class PublishFailures: Sendable {
    let ids = Mutex<Set<String>>([])
}

private func onPublishAck(_ js: OpaquePointer?, _ msg: OpaquePointer?, _ pa: UnsafeMutablePointer<jsPubAck>?,
                          _ pae: UnsafeMutablePointer<jsPubAckErr>?, _ closure: UnsafeMutableRawPointer?) {
    defer { natsMsg_Destroy(msg) }
    guard pae != nil, let msg, let closure else { return }
    let failures = Unmanaged<PublishFailures>.fromOpaque(closure).takeUnretainedValue()
    var value: UnsafePointer<CChar>?
    if natsMsgHeader_Get(msg, "Nats-Msg-Id", &value) == NATS_OK, let value {
        let id = String(cString: value)
        failures.ids.withLock { _ = $0.insert(id) }
    }
}

/// JetStream publishes in batches: every message of a batch goes out at once, in order, on one connection (no round
/// trip each), then the batch waits for the acknowledgements together. For the agent's outbox, whose events must be
/// stored in order and at least once (message ids de-duplicate a republish).
public final class AsyncPublisher: @unchecked Sendable {
    private let handle: OpaquePointer
    private let connection: NATSConnection
    private let failures = PublishFailures()
    private let failuresPointer: UnsafeMutableRawPointer

    public init(connection: NATSConnection, maxPending: Int = 4096) throws(NATSError) {
        var opts = jsOptions()
        try check(jsOptions_Init(&opts), "jsOptions_Init")
        failuresPointer = Unmanaged.passRetained(failures).toOpaque()
        opts.PublishAsync.MaxPending = Int64(maxPending)
        opts.PublishAsync.AckHandler = onPublishAck
        opts.PublishAsync.AckHandlerClosure = failuresPointer
        var js: OpaquePointer?
        let status = natsConnection_JetStream(&js, connection.handle, &opts)
        guard status == NATS_OK, let js else {
            Unmanaged<PublishFailures>.fromOpaque(failuresPointer).release()
            throw NATSError(status, "natsConnection_JetStream")
        }
        self.handle = js
        self.connection = connection
    }

    deinit {
        jsCtx_Destroy(handle)
        Unmanaged<PublishFailures>.fromOpaque(failuresPointer).release()
    }

    /// Publishes `messages` in order and waits up to `timeout` for their acknowledgements. Returns how many leading
    /// messages are known stored; the rest (refused, unanswered, or never sent) are to be sent again, in order.
    public func publish(_ messages: [(subject: String, payload: [UInt8], messageID: String)], timeout: Duration) async -> Int {
        guard !messages.isEmpty else { return 0 }
        return (try? await connection.blocking.run { () throws(NATSError) -> Int in
            self.failures.ids.withLock { $0.removeAll() }
            var sent = 0
            for message in messages {
                var opts = jsPubOptions()
                guard jsPubOptions_Init(&opts) == NATS_OK else { break }
                let status = message.messageID.withCString { id -> natsStatus in
                    opts.MsgId = id
                    return message.payload.withUnsafeBytes { bytes in
                        js_PublishAsync(self.handle, message.subject, bytes.baseAddress, Int32(bytes.count), &opts)
                    }
                }
                guard status == NATS_OK else { break }
                sent += 1
            }
            var wait = jsPubOptions()
            _ = jsPubOptions_Init(&wait)
            wait.MaxWait = timeout.milliseconds
            if js_PublishAsyncComplete(self.handle, &wait) != NATS_OK {
                // Unanswered: take them back (nats.c forgets them) and count them as not stored.
                var pending = natsMsgList()
                if js_PublishAsyncGetPendingList(&pending, self.handle) == NATS_OK {
                    for i in 0..<Int(pending.Count) {
                        var value: UnsafePointer<CChar>?
                        if let msg = pending.Msgs[i], natsMsgHeader_Get(msg, "Nats-Msg-Id", &value) == NATS_OK, let value {
                            let id = String(cString: value)
                            self.failures.ids.withLock { _ = $0.insert(id) }
                        }
                    }
                    natsMsgList_Destroy(&pending)
                }
            }
            let failed = self.failures.ids.withLock { $0 }
            return messages.prefix(sent).firstIndex { failed.contains($0.messageID) } ?? sent
        }) ?? 0
    }
}
