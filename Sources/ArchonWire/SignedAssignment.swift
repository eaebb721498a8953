internal import ArchonProto
internal import CProtobufC
public import ArchonModel
import Crypto
import Foundation

/// The value of a key in KV `archon_desired`: an encoded ``JobAssignment`` and the controller's Ed25519
/// signature of exactly those bytes (empty from a controller run without a signing key).
public struct SignedAssignment: WireMessage, CPackable, Hashable {
    public static var protoMessageName: String { "archon.v1.SignedAssignment" }

    public var assignment: [UInt8]
    public var signature: [UInt8]

    public init(assignment: [UInt8], signature: [UInt8]) {
        self.assignment = assignment
        self.signature = signature
    }

    /// An unsigned envelope: what a controller without a signing key writes.
    public init(unsigned assignment: JobAssignment) {
        self.init(assignment: assignment.encoded(), signature: [])
    }

    public static func decode(_ bytes: some Collection<UInt8>) throws(WireError) -> SignedAssignment {
        try unpacked(bytes)
    }

    public func encoded() -> [UInt8] { packed() }

    /// The assignment inside, signature not checked: for the controller reading back what it wrote.
    public func unverifiedAssignment() throws(WireError) -> JobAssignment {
        try JobAssignment.decode(assignment)
    }

    typealias CMessage = Archon__V1__SignedAssignment
    static var cInit: (UnsafeMutablePointer<CMessage>?) -> Void { archon__v1__signed_assignment__init }
    static var cGetPackedSize: (UnsafePointer<CMessage>?) -> Int { archon__v1__signed_assignment__get_packed_size }
    static var cPack: (UnsafePointer<CMessage>?, UnsafeMutablePointer<UInt8>?) -> Int { archon__v1__signed_assignment__pack }
    static var cUnpack: (UnsafeMutablePointer<ProtobufCAllocator>?, Int, UnsafePointer<UInt8>?) -> UnsafeMutablePointer<CMessage>? {
        archon__v1__signed_assignment__unpack
    }
    static var cFreeUnpacked: (UnsafeMutablePointer<CMessage>?, UnsafeMutablePointer<ProtobufCAllocator>?) -> Void {
        archon__v1__signed_assignment__free_unpacked
    }

    func fill(_ c: inout CMessage, in arena: CArena) {
        c.assignment = arena.bytes(assignment)
        c.signature = arena.bytes(signature)
    }

    init(c: CMessage) throws(WireError) {
        self.init(assignment: CRead.bytes(c.assignment), signature: CRead.bytes(c.signature))
    }
}

/// Why an agent refused a value of `archon_desired`.
public struct AssignmentRejection: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// The controller's assignment signing key (Ed25519). The key file holds the 32-byte private key in base64,
/// the public key file (given to every agent) the 32-byte public key in base64.
public struct AssignmentSigner: Sendable {
    private let key: Curve25519.Signing.PrivateKey

    public init(keyFile path: String) throws {
        let text = try String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        guard let raw = Data(base64Encoded: text), raw.count == 32 else {
            throw AssignmentRejection("\(path) is not an assignment signing key (base64 of 32 bytes; create one with `archon credentials`)")
        }
        key = try Curve25519.Signing.PrivateKey(rawRepresentation: raw)
    }

    private init(key: Curve25519.Signing.PrivateKey) { self.key = key }

    /// A new key pair written to `keyFile` (owner-only) and `publicKeyFile`.
    public static func generate(keyFile: String, publicKeyFile: String) throws {
        let key = Curve25519.Signing.PrivateKey()
        _ = FileManager.default.createFile(atPath: keyFile, contents: nil, attributes: [.posixPermissions: 0o600])
        try Data((key.rawRepresentation.base64EncodedString() + "\n").utf8).write(to: URL(fileURLWithPath: keyFile))
        try Data((key.publicKey.rawRepresentation.base64EncodedString() + "\n").utf8).write(to: URL(fileURLWithPath: publicKeyFile))
    }

    /// The check of this key's own signatures.
    public var verifier: AssignmentVerifier { AssignmentVerifier(key: key.publicKey) }

    /// Base64 of the public key, as agents are configured with it.
    public var publicKey: String { key.publicKey.rawRepresentation.base64EncodedString() }

    /// The envelope to write in KV.
    public func sign(_ assignment: JobAssignment) throws -> SignedAssignment {
        let bytes = assignment.encoded()
        return SignedAssignment(assignment: bytes, signature: Array(try key.signature(for: bytes)))
    }
}

/// An agent's check of what it finds in `archon_desired`.
public struct AssignmentVerifier: Sendable {
    private let key: Curve25519.Signing.PublicKey?

    /// Accepts only envelopes signed by the key in `publicKeyFile` (base64 of 32 bytes).
    public init(publicKeyFile path: String) throws {
        let text = try String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        guard let raw = Data(base64Encoded: text), raw.count == 32 else {
            throw AssignmentRejection("\(path) is not an assignment public key (base64 of 32 bytes; `archon credentials` writes it)")
        }
        key = try Curve25519.Signing.PublicKey(rawRepresentation: raw)
    }

    fileprivate init(key: Curve25519.Signing.PublicKey?) { self.key = key }

    /// Checks nothing: only for `--insecure-unsigned-assignments`.
    public static let insecureAcceptAnything = AssignmentVerifier(key: nil)

    public var checksSignatures: Bool { key != nil }

    /// The assignment in `bytes`, or why it must not run.
    public func open(_ bytes: some Collection<UInt8>) throws(AssignmentRejection) -> JobAssignment {
        let envelope: SignedAssignment
        do {
            envelope = try SignedAssignment.decode(bytes)
        } catch {
            throw AssignmentRejection("not a signed assignment: \(error)")
        }
        if let key {
            guard !envelope.signature.isEmpty else {
                throw AssignmentRejection("unsigned: the controller that wrote it has no signing key, or someone else wrote it")
            }
            guard key.isValidSignature(envelope.signature, for: envelope.assignment) else {
                throw AssignmentRejection("the signature does not verify against this agent's assignment public key")
            }
        }
        do {
            return try envelope.unverifiedAssignment()
        } catch {
            throw AssignmentRejection("signed bytes are not a JobAssignment: \(error)")
        }
    }
}
