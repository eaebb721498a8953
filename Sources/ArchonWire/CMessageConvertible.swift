internal import CProtobufC

/// A model value that maps to one protobuf-c message struct.
protocol CMessageConvertible {
    associatedtype CMessage

    /// The generated `*__init`: sets the descriptor and defaults. A zeroed struct would crash `pack`.
    static var cInit: (UnsafeMutablePointer<CMessage>?) -> Void { get }

    /// Writes this value into an initialised message; strings and sub-messages are allocated in `arena`.
    func fill(_ message: inout CMessage, in arena: CArena)

    /// Reads a message that protobuf-c unpacked (and still owns).
    init(c message: CMessage) throws(WireError)
}

/// A top-level message: one that is packed and unpacked on its own.
protocol CPackable: CMessageConvertible, WireMessage {
    static var cGetPackedSize: (UnsafePointer<CMessage>?) -> Int { get }
    static var cPack: (UnsafePointer<CMessage>?, UnsafeMutablePointer<UInt8>?) -> Int { get }
    static var cUnpack: (UnsafeMutablePointer<ProtobufCAllocator>?, Int, UnsafePointer<UInt8>?) -> UnsafeMutablePointer<CMessage>? { get }
    static var cFreeUnpacked: (UnsafeMutablePointer<CMessage>?, UnsafeMutablePointer<ProtobufCAllocator>?) -> Void { get }
}

extension CPackable {
    func packed() -> [UInt8] {
        let arena = CArena()
        return withExtendedLifetime(arena) {
            let message = arena.message(self)
            let size = Self.cGetPackedSize(message)
            return [UInt8](unsafeUninitializedCapacity: size) { buffer, initializedCount in
                guard size > 0, let base = buffer.baseAddress else {
                    initializedCount = 0
                    return
                }
                let written = Self.cPack(message, base)
                precondition(written == size, "protobuf-c packed \(written) bytes of \(Self.protoMessageName), expected \(size)")
                initializedCount = written
            }
        }
    }

    static func unpacked(_ bytes: some Collection<UInt8>) throws(WireError) -> Self {
        let count = bytes.count
        guard count <= maxWireSize else {
            throw WireError(
                .tooLarge,
                "\(protoMessageName) of \(count) bytes is over the \(maxWireSize)-byte limit and was not parsed; "
                    + "the publisher must send smaller messages (bound log tails, label and hyperparameter maps)"
            )
        }
        let message = withContiguousBytes(bytes) { base, length in cUnpack(nil, length, base) }
        guard let message else {
            throw WireError(
                .malformed,
                "\(count) bytes are not a valid \(protoMessageName) (truncated, corrupt, or another message type); "
                    + "first bytes: \(hexPrefix(bytes)); check what the publisher sends on this subject or key"
            )
        }
        defer { cFreeUnpacked(message, nil) }
        do {
            return try Self(c: message.pointee)
        } catch {
            throw WireError(error.code, "\(protoMessageName): \(error.message)")
        }
    }
}

/// Calls `body` with a non-NULL pointer to the bytes (protobuf-c needs one even for an empty input).
private func withContiguousBytes<Result>(
    _ bytes: some Collection<UInt8>,
    _ body: (UnsafePointer<UInt8>, Int) -> Result
) -> Result {
    func call(_ buffer: UnsafeBufferPointer<UInt8>) -> Result {
        if let base = buffer.baseAddress, buffer.count > 0 {
            return body(base, buffer.count)
        }
        return withUnsafePointer(to: UInt8(0)) { body($0, 0) }
    }
    if let result = bytes.withContiguousStorageIfAvailable(call) {
        return result
    }
    return Array(bytes).withUnsafeBufferPointer(call)
}

private func hexPrefix(_ bytes: some Collection<UInt8>) -> String {
    if bytes.isEmpty { return "(none)" }
    let shown = 16
    let hex = bytes.prefix(shown).map { byte in
        let digits = String(byte, radix: 16)
        return byte < 16 ? "0" + digits : digits
    }
    return hex.joined(separator: " ") + (bytes.count > shown ? " …" : "")
}

/// Reading fields of unpacked messages. `field` names the field for error messages, e.g. `JobExited.log_tail[2]`.
enum CRead {
    /// A `bytes` field (empty when absent).
    static func bytes(_ data: ProtobufCBinaryData) -> [UInt8] {
        guard data.len > 0, let pointer = data.data else { return [] }
        return Array(UnsafeBufferPointer(start: pointer, count: data.len))
    }

    /// A string field; protobuf-c sets absent ones to "" but NULL is tolerated.
    static func string(_ pointer: UnsafePointer<CChar>?, _ field: @autoclosure () -> String) throws(WireError) -> String {
        guard let pointer else { return "" }
        guard let string = String(validatingCString: pointer) else {
            throw WireError(.invalidValue, "field \(field()) is not valid UTF-8; protobuf string fields must hold UTF-8 text")
        }
        return string
    }

    static func strings(
        _ count: Int,
        _ array: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
        _ field: @autoclosure () -> String
    ) throws(WireError) -> [String] {
        guard count > 0 else { return [] }
        guard let array else { throw missingElements(field()) }
        var result: [String] = []
        result.reserveCapacity(count)
        for index in 0..<count {
            result.append(try string(array[index], "\(field())[\(index)]"))
        }
        return result
    }

    /// A singular sub-message; `absent` when it is not on the wire.
    static func message<Value: CMessageConvertible>(
        _ pointer: UnsafeMutablePointer<Value.CMessage>?,
        absent: @autoclosure () -> Value
    ) throws(WireError) -> Value {
        guard let pointer else { return absent() }
        return try Value(c: pointer.pointee)
    }

    static func messages<Value: CMessageConvertible>(
        _ count: Int,
        _ array: UnsafeMutablePointer<UnsafeMutablePointer<Value.CMessage>?>?,
        _ field: @autoclosure () -> String
    ) throws(WireError) -> [Value] {
        guard count > 0 else { return [] }
        guard let array else { throw missingElements(field()) }
        var result: [Value] = []
        result.reserveCapacity(count)
        for index in 0..<count {
            guard let element = array[index] else { throw missingElements("\(field())[\(index)]") }
            result.append(try Value(c: element.pointee))
        }
        return result
    }

    /// A `map<string, string>`: repeated entries; a repeated key keeps the last entry.
    static func map<Entry>(
        _ count: Int,
        _ array: UnsafeMutablePointer<UnsafeMutablePointer<Entry>?>?,
        _ field: @autoclosure () -> String,
        _ keyAndValue: (Entry) -> (key: UnsafeMutablePointer<CChar>?, value: UnsafeMutablePointer<CChar>?)
    ) throws(WireError) -> [String: String] {
        guard count > 0 else { return [:] }
        guard let array else { throw missingElements(field()) }
        var result: [String: String] = [:]
        result.reserveCapacity(count)
        for index in 0..<count {
            guard let entry = array[index] else { throw missingElements("\(field())[\(index)]") }
            let (key, value) = keyAndValue(entry.pointee)
            let keyString = try string(key, "\(field())[\(index)].key")
            result[keyString] = try string(value, "\(field())[\(index)].value")
        }
        return result
    }

    private static func missingElements(_ field: String) -> WireError {
        WireError(.malformed, "repeated field \(field) has a count but no elements")
    }

    /// A `uint64` read into an `Int`: clamped to `Int.max`.
    static func int(_ value: UInt64) -> Int { Int(clamping: value) }

    /// A `uint32` read into an `Int` (always fits).
    static func int(_ value: UInt32) -> Int { Int(value) }

    /// An enum value the model cannot represent.
    static func unrepresentable(_ field: String, _ rawValue: UInt32, expected: String) -> WireError {
        let found = rawValue == 0 ? "is not set (0, unspecified)" : "has value \(rawValue), unknown to this build (a newer schema?)"
        return WireError(.invalidValue, "field \(field) \(found); expected \(expected)")
    }
}
