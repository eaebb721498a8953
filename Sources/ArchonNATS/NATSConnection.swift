internal import CNATS
public import Logging
import Synchronization

/// A message received from core NATS.
public struct NATSMessage: Sendable {
    public var subject: String
    /// Where to send the answer of a request; nil for plain publishes.
    public var reply: String?
    public var payload: [UInt8]

    public init(subject: String, reply: String? = nil, payload: [UInt8]) {
        self.subject = subject
        self.reply = reply
        self.payload = payload
    }
}

/// What happens to the connection, for logs, metrics and readiness.
public enum NATSConnectionEvent: Sendable, Equatable {
    /// Lost the server; nats.c reconnects on its own, forever, with backoff.
    case disconnected
    /// Connected again (possibly to another server of the cluster).
    case reconnected(url: String)
    /// Closed for good (by us, or a fatal error).
    case closed
    /// An asynchronous error, e.g. a slow consumer on `subject`.
    case error(message: String, subject: String?)

    /// The server refused a publish or subscription this credential does not allow.
    public var isPermissionViolation: Bool {
        guard case .error(let message, _) = self else { return false }
        return message.contains("Permissions Violation") || message == "Not Permitted"
    }
}

/// State shared with nats.c's callback threads.
final class ConnectionCallbacks: Sendable {
    let events: AsyncStream<NATSConnectionEvent>.Continuation
    let reconnectBaseMs: Int64
    let reconnectMaxMs: Int64
    let logger: Logger
    let slowConsumerErrors = Atomic<Int>(0)

    init(events: AsyncStream<NATSConnectionEvent>.Continuation, reconnectBaseMs: Int64, reconnectMaxMs: Int64, logger: Logger) {
        self.events = events
        self.reconnectBaseMs = reconnectBaseMs
        self.reconnectMaxMs = reconnectMaxMs
        self.logger = logger
    }
}

private func callbacks(_ closure: UnsafeMutableRawPointer?) -> ConnectionCallbacks {
    Unmanaged<ConnectionCallbacks>.fromOpaque(closure!).takeUnretainedValue()
}

private func onDisconnected(_ nc: OpaquePointer?, _ closure: UnsafeMutableRawPointer?) {
    let box = callbacks(closure)
    box.logger.warning("nats.disconnected")
    box.events.yield(.disconnected)
}

private func onReconnected(_ nc: OpaquePointer?, _ closure: UnsafeMutableRawPointer?) {
    let box = callbacks(closure)
    var buffer = [CChar](repeating: 0, count: 256)
    let url = natsConnection_GetConnectedUrl(nc, &buffer, buffer.count) == NATS_OK
        ? NATSOptions.redacted(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)) : ""
    box.logger.info("nats.reconnected", metadata: ["nats.url": "\(url)"])
    box.events.yield(.reconnected(url: url))
}

private func onClosed(_ nc: OpaquePointer?, _ closure: UnsafeMutableRawPointer?) {
    let box = callbacks(closure)
    box.events.yield(.closed)
    box.events.finish()
    // The box retained at connect is never released: nats.c can still deliver an asynchronous error (a slow
    // consumer seen while the connection is torn down) after this callback, and that callback must not find
    // freed memory (seen as heap corruption at teardown, about one run in six). A few hundred bytes per
    // connection ever made is the price.
}

private func onError(_ nc: OpaquePointer?, _ sub: OpaquePointer?, _ status: natsStatus, _ closure: UnsafeMutableRawPointer?) {
    let box = callbacks(closure)
    let subject = sub.flatMap { natsSubscription_GetSubject($0) }.map { String(cString: $0) }
    var text = String(cString: natsStatus_GetText(status))
    // The connection keeps the server's own words (e.g. `Permissions Violation for Publish to "…"`).
    var detail: UnsafePointer<CChar>?
    if let nc, natsConnection_GetLastError(nc, &detail) == status, let detail, detail.pointee != 0 {
        text = String(cString: detail)
    }
    if status == NATS_SLOW_CONSUMER {
        box.slowConsumerErrors.add(1, ordering: .relaxed)
    }
    box.logger.error("nats.async_error", metadata: ["nats.error": "\(text)", "nats.subject": "\(subject ?? "-")"])
    box.events.yield(.error(message: text, subject: subject))
}

private func reconnectDelay(_ nc: OpaquePointer?, _ attempts: Int32, _ closure: UnsafeMutableRawPointer?) -> Int64 {
    // Exponential backoff with jitter, capped; nats.c calls this after each round over all servers.
    let box = callbacks(closure)
    let exponent = Int64(min(max(attempts - 1, 0), 20))
    let delay = min(box.reconnectBaseMs << exponent, box.reconnectMaxMs)
    return delay / 2 + Int64.random(in: 0...max(delay / 2, 1))
}

/// One connection to NATS (nats.c `natsConnection`).
///
/// `@unchecked Sendable`: nats.c documents connections as safe to use from any thread.
public final class NATSConnection: @unchecked Sendable {
    let handle: OpaquePointer
    let logger: Logger
    let blocking = BlockingCalls(label: "archon.nats.blocking")
    /// Connection events: disconnects, reconnects, asynchronous errors. Finishes when closed.
    public let events: AsyncStream<NATSConnectionEvent>
    private let callbacks: ConnectionCallbacks

    private init(handle: OpaquePointer, events: AsyncStream<NATSConnectionEvent>, callbacks: ConnectionCallbacks, logger: Logger) {
        self.handle = handle
        self.events = events
        self.callbacks = callbacks
        self.logger = logger
    }

    /// Connects (on a Dispatch thread: nats.c blocks while it tries the servers).
    public static func connect(_ options: NATSOptions, logger: Logger) async throws(NATSError) -> NATSConnection {
        guard !options.servers.isEmpty else {
            throw NATSError(code: .invalidArgument, message: "no NATS server URL given")
        }
        let (events, continuation) = AsyncStream.makeStream(of: NATSConnectionEvent.self, bufferingPolicy: .bufferingNewest(256))
        let box = ConnectionCallbacks(
            events: continuation,
            reconnectBaseMs: max(options.reconnectDelay.milliseconds, 1),
            reconnectMaxMs: max(options.maxReconnectDelay.milliseconds, 1),
            logger: logger
        )
        let connectCalls = BlockingCalls(label: "archon.nats.connect")
        let (handle, pending) = try await connectCalls.run { () throws(NATSError) -> (UncheckedHandle, String?) in
            let strings = CStrings()
            var opts: OpaquePointer?
            try check(natsOptions_Create(&opts), "natsOptions_Create")
            defer { natsOptions_Destroy(opts) }
            var servers: [UnsafePointer<CChar>?] = options.servers.map { strings.add($0) }
            try check(natsOptions_SetServers(opts, &servers, Int32(servers.count)), "natsOptions_SetServers(\(NATSOptions.redacted(servers: options.servers)))")
            try check(natsOptions_SetName(opts, options.name), "natsOptions_SetName")
            try check(natsOptions_SetTimeout(opts, options.connectTimeout.milliseconds), "natsOptions_SetTimeout")
            try check(natsOptions_SetMaxReconnect(opts, -1), "natsOptions_SetMaxReconnect")
            try check(natsOptions_SetReconnectBufSize(opts, Int32(clamping: options.reconnectBufferBytes)), "natsOptions_SetReconnectBufSize")
            let closure = Unmanaged.passUnretained(box).toOpaque()
            try check(natsOptions_SetCustomReconnectDelay(opts, reconnectDelay, closure), "natsOptions_SetCustomReconnectDelay")
            try check(natsOptions_SetDisconnectedCB(opts, onDisconnected, closure), "natsOptions_SetDisconnectedCB")
            try check(natsOptions_SetReconnectedCB(opts, onReconnected, closure), "natsOptions_SetReconnectedCB")
            try check(natsOptions_SetClosedCB(opts, onClosed, closure), "natsOptions_SetClosedCB")
            try check(natsOptions_SetErrorHandler(opts, onError, closure), "natsOptions_SetErrorHandler")
            if options.retryOnFailedConnect {
                try check(natsOptions_SetRetryOnFailedConnect(opts, true, nil, nil), "natsOptions_SetRetryOnFailedConnect")
            }
            if let prefix = options.inboxPrefix {
                try check(natsOptions_SetCustomInboxPrefix(opts, prefix), "natsOptions_SetCustomInboxPrefix(\(prefix))")
            }
            switch options.auth {
            case .none:
                break
            case .token(let token):
                try check(natsOptions_SetToken(opts, token), "natsOptions_SetToken")
            case .userPassword(let user, let password):
                try check(natsOptions_SetUserInfo(opts, user, password), "natsOptions_SetUserInfo")
            case .nkey(let publicKey, let seedFile):
                try check(natsOptions_SetNKeyFromSeed(opts, publicKey, seedFile), "natsOptions_SetNKeyFromSeed(\(seedFile))")
            case .credentials(let file):
                try check(natsOptions_SetUserCredentialsFromFiles(opts, file, nil), "natsOptions_SetUserCredentialsFromFiles(\(file))")
            }
            if let tls = options.tls {
                try check(natsOptions_SetSecure(opts, true), "natsOptions_SetSecure")
                if let ca = tls.caFile {
                    try check(natsOptions_LoadCATrustedCertificates(opts, ca), "natsOptions_LoadCATrustedCertificates(\(ca))")
                }
                if let cert = tls.certificateFile, let key = tls.keyFile {
                    try check(natsOptions_LoadCertificatesChain(opts, cert, key), "natsOptions_LoadCertificatesChain(\(cert))")
                }
                if let host = tls.expectedHostname {
                    try check(natsOptions_SetExpectedHostname(opts, host), "natsOptions_SetExpectedHostname")
                }
            }
            var nc: OpaquePointer?
            // Retained for nats.c's callbacks; released by onClosed, the last one delivered.
            _ = Unmanaged.passRetained(box)
            let status = natsConnection_Connect(&nc, opts)
            // With retryOnFailedConnect, NATS_NOT_YET_CONNECTED means "connecting in the background".
            guard status == NATS_OK || (options.retryOnFailedConnect && status == NATS_NOT_YET_CONNECTED), let nc else {
                let error = NATSError(status, "connect to \(NATSOptions.redacted(servers: options.servers))")
                Unmanaged.passUnretained(box).release()
                throw error
            }
            guard status == NATS_NOT_YET_CONNECTED else { return (UncheckedHandle(nc), nil) }
            // Why the first round failed (refused, authorization violation, TLS): nats.c retries without saying.
            var lastStatus = NATS_OK
            let reason = nats_GetLastError(&lastStatus).map { String(cString: $0) } ?? ""
            return (UncheckedHandle(nc), reason.isEmpty ? String(cString: natsStatus_GetText(lastStatus)) : reason)
        }
        if let pending {
            logger.warning("nats.connect.retrying", metadata: [
                "nats.servers": "\(NATSOptions.redacted(servers: options.servers))", "nats.name": "\(options.name)",
                "error": "\(NATSOptions.redacted(pending))",
            ])
        } else {
            logger.info("nats.connected", metadata: ["nats.servers": "\(NATSOptions.redacted(servers: options.servers))", "nats.name": "\(options.name)"])
        }
        return NATSConnection(handle: handle.pointer, events: events, callbacks: box, logger: logger)
    }

    deinit {
        natsConnection_Destroy(handle)
    }

    /// Closes the connection; pending subscriptions finish. Idempotent.
    public func close() {
        natsConnection_Close(handle)
    }

    public var isConnected: Bool { natsConnection_Status(handle) == NATS_CONN_STATUS_CONNECTED }

    /// Slow-consumer errors nats.c reported for this connection's subscriptions.
    public var slowConsumerErrors: Int { callbacks.slowConsumerErrors.load(ordering: .relaxed) }

    /// Publishes on core NATS (buffered by nats.c; fails when the reconnect buffer is full).
    public func publish(_ subject: String, _ payload: [UInt8], reply: String? = nil) throws(NATSError) {
        let status = payload.withUnsafeBytes { bytes in
            if let reply {
                natsConnection_PublishRequest(handle, subject, reply, bytes.baseAddress, Int32(bytes.count))
            } else {
                natsConnection_Publish(handle, subject, bytes.baseAddress, Int32(bytes.count))
            }
        }
        try check(status, "publish(\(subject))")
    }

    /// Waits until the server has processed everything published so far.
    public func flush(timeout: Duration = .seconds(5)) async throws(NATSError) {
        try await blocking.run { () throws(NATSError) in
            try check(natsConnection_FlushTimeout(self.handle, timeout.milliseconds), "flush")
        }
    }

    /// Sends a request and waits for the first reply.
    public func request(_ subject: String, _ payload: [UInt8], timeout: Duration = .seconds(5)) async throws(NATSError) -> NATSMessage {
        try await blocking.run { () throws(NATSError) -> NATSMessage in
            var reply: OpaquePointer?
            let status = payload.withUnsafeBytes { bytes in
                natsConnection_Request(&reply, self.handle, subject, bytes.baseAddress, Int32(bytes.count), timeout.milliseconds)
            }
            try check(status, "request(\(subject))")
            defer { natsMsg_Destroy(reply) }
            return NATSMessage(reply!)
        }
    }

    /// Subscribes to `subject` (wildcards allowed). See ``NATSSubscription``.
    public func subscribe(_ subject: String, queue: String? = nil, bufferLimit: Int = 65_536) throws(NATSError) -> NATSSubscription {
        try NATSSubscription(connection: self, subject: subject, queue: queue, bufferLimit: bufferLimit)
    }

    /// The JetStream context of this connection.
    public func jetStream(timeout: Duration = .seconds(5)) throws(NATSError) -> JetStream {
        try JetStream(connection: self, timeout: timeout)
    }
}

extension NATSMessage {
    /// Copies a nats.c message (which the caller still owns and destroys).
    init(_ msg: OpaquePointer) {
        let length = Int(natsMsg_GetDataLength(msg))
        let payload: [UInt8]
        if length > 0, let data = natsMsg_GetData(msg) {
            payload = data.withMemoryRebound(to: UInt8.self, capacity: length) { Array(UnsafeBufferPointer(start: $0, count: length)) }
        } else {
            payload = []
        }
        self.init(
            subject: String(cString: natsMsg_GetSubject(msg)),
            reply: natsMsg_GetReply(msg).map { String(cString: $0) },
            payload: payload
        )
    }
}
