internal import CNATS

/// A JetStream stream's configuration (the subset Archon uses).
public struct StreamConfig: Sendable {
    public enum Storage: Sendable { case file, memory }

    public var name: String
    public var subjects: [String]
    public var storage: Storage
    /// Messages older than this are discarded; nil keeps them until other limits apply.
    public var maxAge: Duration?
    /// Window in which a message id is remembered for de-duplication.
    public var duplicateWindow: Duration
    /// 1 on a single server, 3 or 5 on a cluster.
    public var replicas: Int
    public var maxBytes: Int64

    public init(
        name: String,
        subjects: [String],
        storage: Storage = .file,
        maxAge: Duration? = nil,
        duplicateWindow: Duration = .seconds(120),
        replicas: Int = 1,
        maxBytes: Int64 = -1
    ) {
        self.name = name
        self.subjects = subjects
        self.storage = storage
        self.maxAge = maxAge
        self.duplicateWindow = duplicateWindow
        self.replicas = replicas
        self.maxBytes = maxBytes
    }
}

/// The server's answer to a JetStream publish.
public struct PublishAck: Sendable, Equatable {
    public var stream: String
    public var sequence: UInt64
    /// The message id was seen within the duplicate window: the message was not stored again.
    public var duplicate: Bool
}

/// JetStream of one connection: streams, publish with de-duplication, pull consumers, KV buckets.
///
/// `@unchecked Sendable`: nats.c's `jsCtx` is safe to share between threads.
public final class JetStream: @unchecked Sendable {
    let handle: OpaquePointer
    let connection: NATSConnection

    init(connection: NATSConnection, timeout: Duration) throws(NATSError) {
        var opts = jsOptions()
        try check(jsOptions_Init(&opts), "jsOptions_Init")
        opts.Wait = timeout.milliseconds
        var js: OpaquePointer?
        try check(natsConnection_JetStream(&js, connection.handle, &opts), "natsConnection_JetStream")
        self.handle = js!
        self.connection = connection
    }

    deinit {
        jsCtx_Destroy(handle)
    }

    /// Creates the stream, or updates it to `config` when it exists.
    public func createOrUpdateStream(_ config: StreamConfig) async throws(NATSError) {
        try await connection.blocking.run { () throws(NATSError) in
            let strings = CStrings()
            var cfg = jsStreamConfig()
            try check(jsStreamConfig_Init(&cfg), "jsStreamConfig_Init")
            cfg.Name = strings.add(config.name)
            var subjects: [UnsafePointer<CChar>?] = config.subjects.map { strings.add($0) }
            try subjects.withUnsafeMutableBufferPointer { subjectsBuffer throws(NATSError) in
                cfg.Subjects = subjectsBuffer.baseAddress
                cfg.SubjectsLen = Int32(subjectsBuffer.count)
                cfg.Storage = config.storage == .file ? js_FileStorage : js_MemoryStorage
                cfg.MaxAge = (config.maxAge?.milliseconds ?? 0) * 1_000_000
                cfg.Duplicates = config.duplicateWindow.milliseconds * 1_000_000
                cfg.Replicas = Int64(config.replicas)
                cfg.MaxBytes = config.maxBytes
                var jerr = jsErrCode(rawValue: 0)
                var info: UnsafeMutablePointer<jsStreamInfo>?
                var status = js_UpdateStream(&info, self.handle, &cfg, nil, &jerr)
                if status == NATS_NOT_FOUND || jerr.rawValue == 10059 {
                    jerr = jsErrCode(rawValue: 0)
                    status = js_AddStream(&info, self.handle, &cfg, nil, &jerr)
                }
                jsStreamInfo_Destroy(info)
                try check(status, "create stream \(config.name)", jsError: jerr)
            }
        }
    }

    /// Publishes and waits for the stream's ack. A repeated `messageID` within the stream's duplicate
    /// window is acknowledged but not stored again (``PublishAck/duplicate``).
    ///
    /// With `expectedLastSequence`, the stream stores the message only if its last sequence is that one: a
    /// writer that is not alone (a deposed leader) is refused instead of interleaving.
    public func publish(_ subject: String, _ payload: [UInt8], messageID: String? = nil, expectedLastSequence: UInt64? = nil) async throws(NATSError) -> PublishAck {
        try await connection.blocking.run { () throws(NATSError) -> PublishAck in
            let strings = CStrings()
            var opts = jsPubOptions()
            try check(jsPubOptions_Init(&opts), "jsPubOptions_Init")
            opts.MsgId = strings.add(messageID)
            if let expectedLastSequence { opts.ExpectLastSeq = expectedLastSequence }
            var ack: UnsafeMutablePointer<jsPubAck>?
            var jerr = jsErrCode(rawValue: 0)
            let status = payload.withUnsafeBytes { bytes in
                js_Publish(&ack, self.handle, subject, bytes.baseAddress, Int32(bytes.count), &opts, &jerr)
            }
            try check(status, "JetStream publish(\(subject))", jsError: jerr)
            defer { jsPubAck_Destroy(ack) }
            return PublishAck(stream: String(cString: ack!.pointee.Stream), sequence: ack!.pointee.Sequence, duplicate: ack!.pointee.Duplicate)
        }
    }

    /// First and last sequence of a stream (last is 0 when it never held a message).
    public func streamBounds(_ stream: String) async throws(NATSError) -> (first: UInt64, last: UInt64) {
        try await streamState(stream) { ($0.FirstSeq, $0.LastSeq) }
    }

    /// How many messages a stream holds now.
    public func streamMessages(_ stream: String) async throws(NATSError) -> UInt64 {
        try await streamState(stream) { $0.Msgs }
    }

    /// One field of a stream's state, from one `STREAM.INFO` request.
    private func streamState<T: Sendable>(_ stream: String, _ read: @escaping @Sendable (jsStreamState) -> T) async throws(NATSError) -> T {
        try await connection.blocking.run { () throws(NATSError) -> T in
            var info: UnsafeMutablePointer<jsStreamInfo>?
            var jerr = jsErrCode(rawValue: 0)
            try check(js_GetStreamInfo(&info, self.handle, stream, nil, &jerr), "stream info \(stream)", jsError: jerr)
            defer { jsStreamInfo_Destroy(info) }
            return read(info!.pointee.State)
        }
    }

    /// Where a durable consumer stands: the highest stream sequence below which everything is acknowledged, what it
    /// has delivered, what waits for it, and what it delivered without an acknowledgement yet.
    public func consumerProgress(stream: String, durable: String) async throws(NATSError) -> ConsumerProgress {
        try await connection.blocking.run { () throws(NATSError) -> ConsumerProgress in
            var info: UnsafeMutablePointer<jsConsumerInfo>?
            var jerr = jsErrCode(rawValue: 0)
            try check(js_GetConsumerInfo(&info, self.handle, stream, durable, nil, &jerr), "consumer info \(stream)/\(durable)", jsError: jerr)
            defer { jsConsumerInfo_Destroy(info) }
            let i = info!.pointee
            return ConsumerProgress(ackFloor: i.AckFloor.Stream, delivered: i.Delivered.Stream, pending: i.NumPending,
                                    ackPending: Int(i.NumAckPending))
        }
    }

    /// The message stored at `sequence`, or nil when there is none (deleted, purged, or never written).
    public func message(_ stream: String, sequence: UInt64) async throws(NATSError) -> (subject: String, payload: [UInt8])? {
        try await connection.blocking.run { () throws(NATSError) -> (subject: String, payload: [UInt8])? in
            var msg: OpaquePointer?
            var jerr = jsErrCode(rawValue: 0)
            let status = js_GetMsg(&msg, self.handle, stream, sequence, nil, &jerr)
            if status == NATS_NOT_FOUND || jerr.rawValue == 10037 { return nil }
            try check(status, "get message \(stream)/\(sequence)", jsError: jerr)
            defer { natsMsg_Destroy(msg) }
            let subject = String(cString: natsMsg_GetSubject(msg))
            let length = Int(natsMsg_GetDataLength(msg))
            let payload = natsMsg_GetData(msg).map { data in
                data.withMemoryRebound(to: UInt8.self, capacity: length) { Array(UnsafeBufferPointer(start: $0, count: length)) }
            } ?? []
            return (subject, payload)
        }
    }

    /// Removes every message below `sequence` from the stream.
    public func purge(_ stream: String, below sequence: UInt64) async throws(NATSError) {
        try await connection.blocking.run { () throws(NATSError) in
            var opts = jsOptions()
            try check(jsOptions_Init(&opts), "jsOptions_Init")
            opts.Stream.Purge.Sequence = sequence
            var jerr = jsErrCode(rawValue: 0)
            try check(js_PurgeStream(self.handle, stream, &opts, &jerr), "purge \(stream) below \(sequence)", jsError: jerr)
        }
    }

    /// Binds to (creating if needed) a durable pull consumer with explicit acks.
    ///
    /// - Parameters:
    ///   - ackWait: an unacked message is redelivered after this long.
    ///   - maxDeliver: deliveries before the server gives up on a message (-1 = unlimited).
    public func pullConsumer(
        stream: String,
        durable: String,
        filterSubject: String,
        ackWait: Duration = .seconds(30),
        maxDeliver: Int = -1
    ) async throws(NATSError) -> PullConsumer {
        try await PullConsumer.bind(
            jetStream: self, stream: stream, durable: durable, filterSubject: filterSubject, ackWait: ackWait, maxDeliver: maxDeliver)
    }

    /// Creates the bucket if it does not exist, else binds to it.
    public func keyValue(_ config: KeyValueConfig) async throws(NATSError) -> KeyValue {
        try await KeyValue.open(jetStream: self, config: config, create: true)
    }

    /// Binds to an existing bucket; throws (`NATS_NOT_FOUND`) when it does not exist. For identities that may
    /// use a bucket but not create one (agents).
    public func existingKeyValue(bucket: String) async throws(NATSError) -> KeyValue {
        try await KeyValue.open(jetStream: self, config: KeyValueConfig(bucket: bucket), create: false)
    }
}

/// A durable consumer's position in its stream (``JetStream/consumerProgress(stream:durable:)``).
public struct ConsumerProgress: Sendable, Equatable {
    /// Every message at or below this stream sequence is acknowledged.
    public var ackFloor: UInt64
    /// The highest stream sequence delivered.
    public var delivered: UInt64
    /// Messages not delivered yet.
    public var pending: UInt64
    /// Messages delivered and not acknowledged yet.
    public var ackPending: Int
}
