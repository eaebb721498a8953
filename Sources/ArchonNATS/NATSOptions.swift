/// How to reach and authenticate to NATS.
public struct NATSOptions: Sendable {
    /// How the client proves who it is. The server's configuration decides which one applies.
    public enum Auth: Sendable {
        case none
        case token(String)
        case userPassword(user: String, password: String)
        /// An NKey public key and the file holding its seed.
        case nkey(publicKey: String, seedFile: String)
        /// A `.creds` file (JWT and seed), as issued by an operator.
        case credentials(file: String)

        /// The NKey identity whose seed is in `path` (see ``NKeyPair``); throws when the file holds none.
        public static func nkey(seedFile path: String) throws(NATSError) -> Auth {
            .nkey(publicKey: try NKeyPair(seedFile: path).publicKey, seedFile: path)
        }
    }

    public struct TLS: Sendable {
        /// PEM file of trusted CAs; nil = the system's.
        public var caFile: String?
        /// Client certificate chain and key, for mutual TLS.
        public var certificateFile: String?
        public var keyFile: String?
        /// Host name to check in the server certificate, when it differs from the URL's.
        public var expectedHostname: String?

        public init(caFile: String? = nil, certificateFile: String? = nil, keyFile: String? = nil, expectedHostname: String? = nil) {
            self.caFile = caFile
            self.certificateFile = certificateFile
            self.keyFile = keyFile
            self.expectedHostname = expectedHostname
        }
    }

    /// Server URLs, e.g. `nats://127.0.0.1:4222`; several for a cluster.
    public var servers: [String]
    /// Client name, shown by the server's monitoring (e.g. `archon-agent-n1`).
    public var name: String
    public var auth: Auth
    public var tls: TLS?
    /// Timeout of one connection attempt.
    public var connectTimeout: Duration
    /// First reconnect delay; it doubles on each failed round up to ``maxReconnectDelay``. Reconnects never stop.
    public var reconnectDelay: Duration
    public var maxReconnectDelay: Duration
    /// Keep retrying the first connect in the background instead of failing when no server is up.
    public var retryOnFailedConnect: Bool
    /// Bytes buffered while disconnected; publishes beyond this fail instead of being lost silently.
    public var reconnectBufferBytes: Int
    /// Prefix of this client's reply inboxes (default `_INBOX`). A node's credential may subscribe only to
    /// `_INBOX.<node>.>`, so that it can never read replies meant for another client.
    public var inboxPrefix: String?

    public init(
        servers: [String],
        name: String = "archon",
        auth: Auth = .none,
        tls: TLS? = nil,
        connectTimeout: Duration = .seconds(2),
        reconnectDelay: Duration = .milliseconds(100),
        maxReconnectDelay: Duration = .seconds(5),
        retryOnFailedConnect: Bool = false,
        reconnectBufferBytes: Int = 8 * 1024 * 1024,
        inboxPrefix: String? = nil
    ) {
        self.servers = servers
        self.name = name
        self.auth = auth
        self.tls = tls
        self.connectTimeout = connectTimeout
        self.reconnectDelay = reconnectDelay
        self.maxReconnectDelay = maxReconnectDelay
        self.retryOnFailedConnect = retryOnFailedConnect
        self.reconnectBufferBytes = reconnectBufferBytes
        self.inboxPrefix = inboxPrefix
    }

    /// `nats://a:4222,nats://b:4222` → two servers.
    public init(url: String, name: String = "archon") {
        self.init(servers: url.split(separator: ",").map { String($0).trimmingSpaces }, name: name)
    }
}

extension String {
    var trimmingSpaces: String {
        var s = Substring(self)
        while s.first == " " { s = s.dropFirst() }
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }
}

extension Duration {
    var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}
