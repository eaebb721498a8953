public import ArchonCore
public import ArchonNATS
import Crypto
import Foundation

/// A bearer token of the HTTP API and what it may do.
///
/// Only the token's SHA-256 is kept: a config file written with `tokenSHA256` (`archon token hash`) holds no secret,
/// and one with a plain `token` (fine for development) is hashed when read and the text dropped. A presented token is
/// hashed and compared with every configured hash, every byte of each, so the time taken says nothing about which
/// one it resembles. Neither the token nor its hash is ever printed (`description` shows the name and scopes).
public struct APIToken: Codable, Sendable, Hashable, CustomStringConvertible {
    public var name: String
    /// SHA-256 of the token: 32 bytes.
    public var tokenSHA256: [UInt8]
    public var scopes: [Scope]

    /// From the token itself (development, tests): only its hash is kept.
    public init(name: String, token: String, scopes: [Scope]) {
        self.init(name: name, tokenSHA256: Self.sha256(of: token), scopes: scopes)
    }

    public init(name: String, tokenSHA256: [UInt8], scopes: [Scope]) {
        self.name = name
        self.tokenSHA256 = tokenSHA256
        self.scopes = scopes
    }

    public func allows(_ scope: Scope) -> Bool { scopes.contains(scope) || scopes.contains(.admin) }

    /// "oncall (training:read, training:start)": never the token or its hash.
    public var description: String { "\(name) (\(scopes.map(\.rawValue).joined(separator: ", ")))" }

    /// SHA-256 of a token's UTF-8 bytes.
    public static func sha256(of token: String) -> [UInt8] { Array(SHA256.hash(data: Data(token.utf8))) }

    /// Lower-case hex, as `tokenSHA256` is written.
    public static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes { out += [digits[Int(byte >> 4)], digits[Int(byte & 0x0F)]] }
        return String(decoding: out, as: UTF8.self)
    }

    /// Whether `digest` is this token's hash, in a time that does not depend on where they differ.
    public func matches(digest: [UInt8]) -> Bool {
        guard digest.count == tokenSHA256.count else { return false }
        var difference: UInt8 = 0
        for i in digest.indices { difference |= digest[i] ^ tokenSHA256[i] }
        return difference == 0
    }

    private enum CodingKeys: String, CodingKey { case name, token, tokenSHA256, scopes }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        scopes = try c.decode([Scope].self, forKey: .scopes)
        let plain = try c.decodeIfPresent(String.self, forKey: .token)
        let hex = try c.decodeIfPresent(String.self, forKey: .tokenSHA256)
        switch (plain, hex) {
        case (let plain?, nil):
            tokenSHA256 = Self.sha256(of: plain)
        case (nil, let hex?):
            guard let digest = Self.bytes(hex: hex), digest.count == 32 else {
                throw DecodingError.dataCorruptedError(forKey: .tokenSHA256, in: c, debugDescription:
                    "token '\(name)': tokenSHA256 must be 64 hex digits, the SHA-256 of the token (`archon token hash` prints it)")
            }
            tokenSHA256 = digest
        case (.some, .some), (nil, nil):
            throw DecodingError.dataCorruptedError(forKey: .tokenSHA256, in: c, debugDescription:
                "token '\(name)': give tokenSHA256 (the token's SHA-256, from `archon token hash`) or, for development, token; exactly one")
        }
    }

    /// Writes the hash, never a token.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(Self.hex(tokenSHA256), forKey: .tokenSHA256)
        try c.encode(scopes, forKey: .scopes)
    }

    private static func bytes(hex: String) -> [UInt8]? {
        let utf8 = Array(hex.utf8)
        guard utf8.count % 2 == 0 else { return nil }
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
            default: nil
            }
        }
        var out: [UInt8] = []
        for i in stride(from: 0, to: utf8.count, by: 2) {
            guard let high = nibble(utf8[i]), let low = nibble(utf8[i + 1]) else { return nil }
            out.append(high << 4 | low)
        }
        return out
    }
}

/// What a token may do. `admin` implies every other scope.
public enum Scope: String, Codable, Sendable, CaseIterable {
    case trainingRead = "training:read"
    case trainingStart = "training:start"
    case datasetRead = "dataset:read"
    case incidentAck = "incident:ack"
    case admin
}

/// The controller's configuration file (JSON). Everything but `tokens` has a default.
public struct ControllerConfig: Codable, Sendable {
    /// This replica's name, unique among the controllers (leadership, logs).
    public var id: String
    /// NATS server URL(s), comma-separated.
    public var nats: String
    /// HTTP API listen address and port (0 = any free port).
    public var httpHost: String
    public var httpPort: Int
    public var tokens: [APIToken]
    public var sinks: [SinkConfig]
    /// Datasets registered at start (the API can add more).
    public var datasets: [Dataset]
    /// A policy file (JSON or YAML, see docs/policy.md); nil = the runbook's defaults.
    public var policyFile: String?
    /// Leadership lease; a standby takes over within about this long after the leader dies.
    public var leaseSeconds: Double
    /// JetStream replicas of streams and buckets (3 on a 3-server cluster).
    public var replicas: Int
    /// Events fetched per batch from the durable consumer.
    public var fetchBatch: Int
    /// Seconds before JetStream redelivers events fetched and not acknowledged: what a crashed leader had
    /// fetched reaches the next one after at most this long (and the events of those jobs wait for it).
    /// It is the durable consumer's ack wait: changing it on a running fleet means editing the consumer too.
    public var ackWaitSeconds: Double
    /// An event delivered this many times without being applied is terminated (counted and logged), so that no
    /// message can keep a controller crash-looping.
    public var maxDeliveries: Int
    /// Seconds between flushes of the state journal into KV `archon_state` (see docs/operations.md).
    public var stateFlushSeconds: Double
    /// Seconds between comparisons of `archon_desired` with the controller's state (also at takeover, and soon
    /// after a failed write).
    public var reconcileSeconds: Double
    /// The controller's NATS identity: a file holding its NKey seed (`archon credentials` writes
    /// `controller.nk`); nil = connect without authenticating (local experiments only).
    public var natsNKeySeedFile: String?
    /// TLS to NATS: the CA that signed the servers' certificates, and a client certificate where the servers
    /// verify clients. nil = plain TCP.
    public var natsTLS: NATSTLSConfig?
    /// The Ed25519 key assignments are signed with (`archon credentials` writes `assignment-signing.key`);
    /// nil = assignments go unsigned, which agents holding the public key refuse (said loudly in the log and
    /// in `/readyz`).
    public var assignmentSigningKeyFile: String?

    public init(
        id: String = "controller-1", nats: String = "nats://127.0.0.1:4222", httpHost: String = "127.0.0.1", httpPort: Int = 8080,
        tokens: [APIToken] = [], sinks: [SinkConfig] = [], datasets: [Dataset] = [], policyFile: String? = nil,
        leaseSeconds: Double = 10, replicas: Int = 1, fetchBatch: Int = 256, ackWaitSeconds: Double = 10,
        maxDeliveries: Int = 10, stateFlushSeconds: Double = 5, reconcileSeconds: Double = 60
    ) {
        self.id = id
        self.nats = nats
        self.httpHost = httpHost
        self.httpPort = httpPort
        self.tokens = tokens
        self.sinks = sinks
        self.datasets = datasets
        self.policyFile = policyFile
        self.leaseSeconds = leaseSeconds
        self.replicas = replicas
        self.fetchBatch = fetchBatch
        self.ackWaitSeconds = ackWaitSeconds
        self.maxDeliveries = maxDeliveries
        self.stateFlushSeconds = stateFlushSeconds
        self.reconcileSeconds = reconcileSeconds
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = ControllerConfig()
        id = try c.decodeIfPresent(String.self, forKey: .id) ?? d.id
        nats = try c.decodeIfPresent(String.self, forKey: .nats) ?? d.nats
        httpHost = try c.decodeIfPresent(String.self, forKey: .httpHost) ?? d.httpHost
        httpPort = try c.decodeIfPresent(Int.self, forKey: .httpPort) ?? d.httpPort
        tokens = try c.decodeIfPresent([APIToken].self, forKey: .tokens) ?? d.tokens
        sinks = try c.decodeIfPresent([SinkConfig].self, forKey: .sinks) ?? d.sinks
        datasets = try c.decodeIfPresent([Dataset].self, forKey: .datasets) ?? d.datasets
        policyFile = try c.decodeIfPresent(String.self, forKey: .policyFile)
        leaseSeconds = try c.decodeIfPresent(Double.self, forKey: .leaseSeconds) ?? d.leaseSeconds
        replicas = try c.decodeIfPresent(Int.self, forKey: .replicas) ?? d.replicas
        fetchBatch = try c.decodeIfPresent(Int.self, forKey: .fetchBatch) ?? d.fetchBatch
        ackWaitSeconds = try c.decodeIfPresent(Double.self, forKey: .ackWaitSeconds) ?? d.ackWaitSeconds
        maxDeliveries = try c.decodeIfPresent(Int.self, forKey: .maxDeliveries) ?? d.maxDeliveries
        stateFlushSeconds = try c.decodeIfPresent(Double.self, forKey: .stateFlushSeconds) ?? d.stateFlushSeconds
        reconcileSeconds = try c.decodeIfPresent(Double.self, forKey: .reconcileSeconds) ?? d.reconcileSeconds
        natsNKeySeedFile = try c.decodeIfPresent(String.self, forKey: .natsNKeySeedFile)
        natsTLS = try c.decodeIfPresent(NATSTLSConfig.self, forKey: .natsTLS)
        assignmentSigningKeyFile = try c.decodeIfPresent(String.self, forKey: .assignmentSigningKeyFile)
    }

    /// Reads a config file; errors name the file and what is wrong.
    public static func load(_ path: String) throws -> ControllerConfig {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError(description: "cannot read controller config \(path)")
        }
        do {
            return try JSONDecoder().decode(ControllerConfig.self, from: data)
        } catch {
            throw ConfigError(description: "\(path): \(error)")
        }
    }

    /// The policy to run with: the file's, or the runbook's defaults.
    public func loadPolicy() throws -> Policy {
        guard let file = policyFile else { return .runbookDefaults }
        guard let data = FileManager.default.contents(atPath: file) else {
            throw ConfigError(description: "cannot read policy file \(file)")
        }
        return try Policy.parse(String(decoding: data, as: UTF8.self), fileName: file)
    }

    /// How to connect to NATS; throws when the seed file cannot be read.
    func natsOptions() throws -> NATSOptions {
        var options = NATSOptions(url: nats, name: "archon-controller-\(id)")
        if let natsNKeySeedFile { options.auth = try .nkey(seedFile: natsNKeySeedFile) }
        options.tls = natsTLS?.options
        return options
    }
}

/// TLS settings of a NATS connection, as configuration files spell them.
public struct NATSTLSConfig: Codable, Sendable, Hashable {
    /// PEM file of the CA(s) that signed the servers' certificates; nil = the system's trust store.
    public var caFile: String?
    /// Client certificate and key, where the servers verify clients (`verify: true`).
    public var certFile: String?
    public var keyFile: String?

    public init(caFile: String? = nil, certFile: String? = nil, keyFile: String? = nil) {
        self.caFile = caFile
        self.certFile = certFile
        self.keyFile = keyFile
    }

    public var options: NATSOptions.TLS { NATSOptions.TLS(caFile: caFile, certificateFile: certFile, keyFile: keyFile) }
}

public struct ConfigError: Error, CustomStringConvertible {
    public let description: String
}
