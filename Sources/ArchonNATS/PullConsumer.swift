internal import CNATS

/// A durable JetStream pull consumer. Fetches run on the consumer's own Dispatch thread.
///
/// Destroying it keeps the durable consumer on the server: a new `PullConsumer` with the same
/// durable name resumes after the last acknowledged message, and everything unacknowledged is
/// redelivered once its ack wait passes.
public final class PullConsumer: @unchecked Sendable {
    let handle: OpaquePointer
    let jetStream: JetStream
    /// One thread per pull subscription: nats.c's fetch is not meant to be called concurrently.
    private let thread: BlockingCalls
    public let durable: String
    /// Messages fetched beyond the batch asked for (see ``fetchSize(batch:waiting:)``), handed out first by the next
    /// fetch. Raw handles, not `JetStreamMessage`s (which hold the consumer: a cycle). Touched only on `thread`.
    private var kept: [OpaquePointer] = []

    private init(handle: OpaquePointer, jetStream: JetStream, thread: BlockingCalls, durable: String) {
        self.handle = handle
        self.jetStream = jetStream
        self.thread = thread
        self.durable = durable
    }

    static func bind(
        jetStream: JetStream, stream: String, durable: String, filterSubject: String, ackWait: Duration, maxDeliver: Int
    ) async throws(NATSError) -> PullConsumer {
        let thread = BlockingCalls(label: "archon.nats.pull.\(durable)", serial: true)
        let handle = try await thread.run { () throws(NATSError) -> UncheckedHandle in
            let strings = CStrings()
            var opts = jsSubOptions()
            try check(jsSubOptions_Init(&opts), "jsSubOptions_Init")
            opts.Stream = strings.add(stream)
            opts.Config.Durable = strings.add(durable)
            opts.Config.AckPolicy = js_AckExplicit
            opts.Config.AckWait = ackWait.milliseconds * 1_000_000
            opts.Config.MaxDeliver = Int64(maxDeliver)
            opts.Config.FilterSubject = strings.add(filterSubject)
            var sub: OpaquePointer?
            var jerr = jsErrCode(rawValue: 0)
            try check(js_PullSubscribe(&sub, jetStream.handle, filterSubject, durable, nil, &opts, &jerr), "pull subscribe \(stream)/\(durable)", jsError: jerr)
            return UncheckedHandle(sub!)
        }
        return PullConsumer(handle: handle.pointer, jetStream: jetStream, thread: thread, durable: durable)
    }

    /// How many messages to ask nats.c for when `waiting` messages already wait in the subscription (deliveries of an
    /// earlier pull request that arrived after its fetch gave up, and the server's 408s for expired requests).
    ///
    /// nats.c before 3.8.3 (Debian 12 ships 3.4.1) overflows its message array in `natsSubscription_Fetch` when more
    /// than half of the batch is taken from messages already waiting and more arrive during the fetch: it asks the
    /// server for `batch - taken`, waits until it holds exactly that many, which it never does, and stores every
    /// further delivery past the end of the array (upstream commit 0a42cd4e, "Fix heap buffer overflow in _fetch").
    /// Seen here as `free(): invalid pointer` in `natsMsgList_Destroy` and `malloc(): invalid size` elsewhere, under
    /// load. Asking for more than twice what waits (with room for 64 arriving meanwhile) keeps the count it waits for
    /// above what it holds, so the loop ends inside the array; what comes beyond `batch` is kept for the next fetch.
    /// With nothing waiting the batch is the one asked for.
    static func fetchSize(batch: Int, waiting: Int) -> Int {
        guard waiting > 0 else { return batch }
        return max(batch, 2 * (waiting + 64) + 1)
    }

    /// The inbox the server answers this consumer's pull requests on.
    var inbox: String { String(cString: natsSubscription_GetSubject(handle)) }

    /// Messages delivered to this consumer that no fetch has taken yet (status messages included).
    var waitingInClient: Int {
        var pending: Int32 = 0
        return natsSubscription_GetPending(handle, &pending, nil) == NATS_OK ? Int(pending) : 0
    }

    deinit {
        for message in kept { natsMsg_Destroy(message) }
        // Destroy without Unsubscribe: the durable consumer stays on the server.
        natsSubscription_Destroy(handle)
    }

    /// Up to `batch` messages; an empty array when none arrived within `timeout` (not an error).
    public func fetch(batch: Int, timeout: Duration) async throws(NATSError) -> [JetStreamMessage] {
        try await thread.run { () throws(NATSError) -> [JetStreamMessage] in
            if self.kept.isEmpty {
                var list = natsMsgList()
                var jerr = jsErrCode(rawValue: 0)
                let size = Self.fetchSize(batch: batch, waiting: self.waitingInClient)
                let status = natsSubscription_Fetch(&list, self.handle, Int32(clamping: size), timeout.milliseconds, &jerr)
                if status == NATS_TIMEOUT { return [] }
                try check(status, "fetch \(self.durable)", jsError: jerr)
                for i in 0..<Int(list.Count) {
                    if let msg = list.Msgs[i] {
                        self.kept.append(msg)
                        list.Msgs[i] = nil  // now ours
                    }
                }
                natsMsgList_Destroy(&list)
            }
            let taken = self.kept.prefix(max(batch, 1)).map { JetStreamMessage(handle: $0, consumer: self) }
            self.kept.removeFirst(taken.count)
            return taken
        }
    }
}

/// Where a JetStream message sits in its stream and consumer.
public struct JetStreamMetadata: Sendable, Equatable {
    public var streamSequence: UInt64
    public var consumerSequence: UInt64
    /// 1 on first delivery; more on redeliveries.
    public var deliveries: UInt64
    /// Messages still waiting for this consumer after this one: the consumer's lag.
    public var pending: UInt64
    /// When the stream stored it, Unix nanoseconds.
    public var timestampNanos: Int64
}

/// A message fetched from a pull consumer; acknowledge it exactly once (ack, nak or term).
///
/// `@unchecked Sendable`: the acks go through the connection, which nats.c makes thread-safe;
/// do not ack one message from two threads.
public final class JetStreamMessage: @unchecked Sendable {
    private let handle: OpaquePointer
    // Acks use the subscription: keep it alive as long as its messages.
    private let consumer: PullConsumer
    public let subject: String
    public let payload: [UInt8]

    init(handle: OpaquePointer, consumer: PullConsumer) {
        self.handle = handle
        self.consumer = consumer
        let message = NATSMessage(handle)
        self.subject = message.subject
        self.payload = message.payload
    }

    deinit {
        natsMsg_Destroy(handle)
    }

    public var metadata: JetStreamMetadata? {
        var meta: UnsafeMutablePointer<jsMsgMetaData>?
        guard natsMsg_GetMetaData(&meta, handle) == NATS_OK, let meta else { return nil }
        defer { jsMsgMetaData_Destroy(meta) }
        return JetStreamMetadata(
            streamSequence: meta.pointee.Sequence.Stream,
            consumerSequence: meta.pointee.Sequence.Consumer,
            deliveries: meta.pointee.NumDelivered,
            pending: meta.pointee.NumPending,
            timestampNanos: meta.pointee.Timestamp
        )
    }

    /// Done with it: the server will not deliver it again.
    public func ack() throws(NATSError) {
        try check(natsMsg_Ack(handle, nil), "ack \(subject)")
    }

    /// Done with it, once the server confirms the ack.
    public func ackSync() async throws(NATSError) {
        try await consumer.jetStream.connection.blocking.run { () throws(NATSError) in
            try check(natsMsg_AckSync(self.handle, nil, nil), "ack \(self.subject)")
        }
    }

    /// Could not process it now: redeliver after `delay` (nil = at once).
    public func nak(delay: Duration? = nil) throws(NATSError) {
        if let delay {
            try check(natsMsg_NakWithDelay(handle, delay.milliseconds, nil), "nak \(subject)")
        } else {
            try check(natsMsg_Nak(handle, nil), "nak \(subject)")
        }
    }

    /// Never deliver it again (malformed or rejected: redelivery cannot help).
    public func term() throws(NATSError) {
        try check(natsMsg_Term(handle, nil), "term \(subject)")
    }
}
