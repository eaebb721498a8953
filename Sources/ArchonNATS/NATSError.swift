internal import CNATS

/// A failure reported by nats.c, with the library's own text.
public struct NATSError: Error, CustomStringConvertible, Sendable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let rawValue: Int
        public let name: String
        public var description: String { name }

        public static let timeout = Code(rawValue: Int(NATS_TIMEOUT.rawValue), name: "timeout")
        public static let notFound = Code(rawValue: Int(NATS_NOT_FOUND.rawValue), name: "not found")
        public static let noServer = Code(rawValue: Int(NATS_NO_SERVER.rawValue), name: "no server")
        public static let connectionClosed = Code(rawValue: Int(NATS_CONNECTION_CLOSED.rawValue), name: "connection closed")
        public static let noResponders = Code(rawValue: Int(NATS_NO_RESPONDERS.rawValue), name: "no responders")
        /// Compare-and-set lost: the key changed (or exists) since the revision given.
        public static let wrongRevision = Code(rawValue: -1, name: "wrong last revision")
        /// Our own argument checks (bad subject, payload too large, ...).
        public static let invalidArgument = Code(rawValue: Int(NATS_INVALID_ARG.rawValue), name: "invalid argument")

        init(rawValue: Int, name: String) {
            self.rawValue = rawValue
            self.name = name
        }

        init(_ status: natsStatus) {
            switch status {
            case NATS_TIMEOUT: self = .timeout
            case NATS_NOT_FOUND: self = .notFound
            case NATS_NO_SERVER: self = .noServer
            case NATS_CONNECTION_CLOSED: self = .connectionClosed
            case NATS_NO_RESPONDERS: self = .noResponders
            default: self = Code(rawValue: Int(status.rawValue), name: String(cString: natsStatus_GetText(status)))
            }
        }
    }

    public let code: Code
    /// What we were doing and what nats.c said, e.g. `kvStore_Update(archon_leader/lease): wrong last sequence: 4`.
    public let message: String

    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    /// Builds the error for `status` returned by `operation`. Call on the thread that made the call:
    /// nats.c keeps the detailed text in thread-local storage.
    init(_ status: natsStatus, _ operation: String, jsError: jsErrCode = jsErrCode(rawValue: 0)) {
        var text = String(cString: natsStatus_GetText(status))
        // The thread-local last error can be stale (not every call clears it): use it only when it
        // belongs to this status.
        var lastStatus = NATS_OK
        if let last = nats_GetLastError(&lastStatus), lastStatus == status {
            let detail = String(cString: last)
            if !detail.isEmpty { text = detail }
        }
        // JetStream reports compare-and-set conflicts as API error 10071 (wrong last sequence).
        if jsError.rawValue == 10071 || text.contains("wrong last sequence") {
            self.init(code: .wrongRevision, message: "\(operation): \(text)")
        } else {
            let js = jsError.rawValue == 0 ? "" : " (JetStream error \(jsError.rawValue))"
            self.init(code: Code(status), message: "\(operation): \(text)\(js)")
        }
    }

    public var description: String { "NATS error (\(code)): \(message)" }
}

/// Throws a ``NATSError`` unless `status` is NATS_OK.
@inline(__always)
func check(_ status: natsStatus, _ operation: @autoclosure () -> String, jsError: jsErrCode = jsErrCode(rawValue: 0)) throws(NATSError) {
    if status != NATS_OK { throw NATSError(status, operation(), jsError: jsError) }
}
