import Crypto
import Foundation

/// A NATS user identity: an Ed25519 key pair in NATS's NKey encoding (base32, a type prefix and a CRC-16).
///
/// The server's configuration holds only the public key (`U…`); the client proves it holds the seed (`SU…`)
/// by signing the server's nonce (nats.c does that, given the seed file). No secret is ever in a server config.
public struct NKeyPair: Sendable {
    /// `SU…`, 58 characters: the secret.
    public let seed: String
    /// `U…`, 56 characters: what the server's `authorization` block lists.
    public let publicKey: String

    /// A new random identity.
    public static func generate() -> NKeyPair {
        NKeyPair(privateKey: Curve25519.Signing.PrivateKey())
    }

    /// The identity of an encoded seed (`SU…`); nil when it is not a valid user seed.
    public init?(seed: String) {
        guard let raw = NKeyCoding.decode(seed.trimmingCharacters(in: .whitespacesAndNewlines)), raw.count == 34,
              raw[0] == NKeyCoding.seedPrefix | (NKeyCoding.userPrefix >> 5), raw[1] == (NKeyCoding.userPrefix & 31) << 3,
              let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: raw[2...])
        else { return nil }
        self.init(privateKey: key)
    }

    /// Reads a seed file as `nats.c` does: the first line that holds a user seed.
    public init(seedFile path: String) throws(NATSError) {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw NATSError(code: .invalidArgument, message: "cannot read the NKey seed file \(path): \(error.localizedDescription)")
        }
        for line in text.split(whereSeparator: \.isNewline) where line.hasPrefix("SU") {
            if let pair = NKeyPair(seed: String(line)) {
                self = pair
                return
            }
        }
        throw NATSError(code: .invalidArgument, message: "\(path) holds no NATS user seed (a line starting with SU)")
    }

    private init(privateKey: Curve25519.Signing.PrivateKey) {
        seed = NKeyCoding.encode([NKeyCoding.seedPrefix | (NKeyCoding.userPrefix >> 5), (NKeyCoding.userPrefix & 31) << 3]
            + Array(privateKey.rawRepresentation))
        publicKey = NKeyCoding.encode([NKeyCoding.userPrefix] + Array(privateKey.publicKey.rawRepresentation))
    }

    /// Writes the seed to `path`, readable by its owner only.
    public func writeSeed(to path: String) throws {
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600])
        try Data((seed + "\n").utf8).write(to: URL(fileURLWithPath: path))
    }
}

/// NKey text: base32 (RFC 4648, no padding) of prefix bytes, the key, and a little-endian CRC-16/XMODEM.
enum NKeyCoding {
    static let seedPrefix: UInt8 = 18 << 3  // 'S'
    static let userPrefix: UInt8 = 20 << 3  // 'U'
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".utf8)

    static func encode(_ payload: [UInt8]) -> String {
        let crc = crc16(payload)
        let bytes = payload + [UInt8(crc & 0xFF), UInt8(crc >> 8)]
        var out: [UInt8] = []
        var buffer: UInt32 = 0
        var bits = 0
        for byte in bytes {
            buffer = buffer << 8 | UInt32(byte)
            bits += 8
            while bits >= 5 {
                out.append(alphabet[Int((buffer >> UInt32(bits - 5)) & 31)])
                bits -= 5
            }
        }
        if bits > 0 { out.append(alphabet[Int((buffer << UInt32(5 - bits)) & 31)]) }
        return String(decoding: out, as: UTF8.self)
    }

    /// The payload without its CRC; nil when the text is not base32 or the CRC does not match.
    static func decode(_ text: String) -> [UInt8]? {
        var bytes: [UInt8] = []
        var buffer: UInt32 = 0
        var bits = 0
        for c in text.utf8 {
            guard let value = alphabet.firstIndex(of: c) else { return nil }
            buffer = buffer << 5 | UInt32(value)
            bits += 5
            if bits >= 8 {
                bytes.append(UInt8((buffer >> UInt32(bits - 8)) & 0xFF))
                bits -= 8
            }
        }
        guard bytes.count > 2 else { return nil }
        let payload = Array(bytes.dropLast(2))
        let crc = UInt16(bytes[bytes.count - 2]) | UInt16(bytes[bytes.count - 1]) << 8
        return crc == crc16(payload) ? payload : nil
    }

    static func crc16(_ bytes: [UInt8]) -> UInt16 {
        var crc: UInt16 = 0
        for byte in bytes {
            crc ^= UInt16(byte) << 8
            for _ in 0..<8 { crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1 }
        }
        return crc
    }
}
