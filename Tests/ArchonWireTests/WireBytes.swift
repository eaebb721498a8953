/// Protobuf wire bytes written by hand: an encoder independent of protobuf-c, for inputs no
/// well-behaved implementation would produce (bad UTF-8, unknown enum values and fields).
struct WireBytes {
    private(set) var bytes: [UInt8] = []

    init() {}

    init(_ build: (inout WireBytes) -> Void) {
        build(&self)
    }

    mutating func varint(_ field: Int, _ value: UInt64) {
        tag(field, wireType: 0)
        appendVarint(value)
    }

    mutating func double(_ field: Int, _ value: Double) {
        tag(field, wireType: 1)
        withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func lengthDelimited(_ field: Int, _ payload: [UInt8]) {
        tag(field, wireType: 2)
        appendVarint(UInt64(payload.count))
        bytes.append(contentsOf: payload)
    }

    mutating func string(_ field: Int, _ value: String) {
        lengthDelimited(field, Array(value.utf8))
    }

    mutating func message(_ field: Int, _ build: (inout WireBytes) -> Void) {
        lengthDelimited(field, WireBytes(build).bytes)
    }

    mutating func raw(_ more: [UInt8]) {
        bytes.append(contentsOf: more)
    }

    private mutating func tag(_ field: Int, wireType: UInt64) {
        appendVarint(UInt64(field) << 3 | wireType)
    }

    private mutating func appendVarint(_ value: UInt64) {
        var value = value
        while value >= 0x80 {
            bytes.append(UInt8(value & 0x7F) | 0x80)
            value >>= 7
        }
        bytes.append(UInt8(value))
    }

    /// Offsets at which a top-level field of a well-formed encoding ends (0 included): the only
    /// prefix lengths that are themselves a complete message.
    static func fieldBoundaries(of bytes: [UInt8]) -> Set<Int> {
        var boundaries: Set<Int> = [0]
        var offset = 0
        func readVarint() -> UInt64 {
            var result: UInt64 = 0
            var shift: UInt64 = 0
            while true {
                let byte = bytes[offset]
                offset += 1
                result |= UInt64(byte & 0x7F) << shift
                if byte < 0x80 { return result }
                shift += 7
            }
        }
        while offset < bytes.count {
            let key = readVarint()
            switch key & 7 {
            case 0: _ = readVarint()
            case 1: offset += 8
            case 2: offset += Int(readVarint())
            case 5: offset += 4
            default: preconditionFailure("fixture encodings use wire types 0, 1, 2 and 5 only")
            }
            boundaries.insert(offset)
        }
        precondition(offset == bytes.count, "not a well-formed encoding")
        return boundaries
    }
}

/// SplitMix64: a small seeded generator, so every fuzz run sees the same inputs.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
