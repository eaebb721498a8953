import ArchonModel
import ArchonWire
import Testing

/// Bytes from the network are hostile: decoding throws or succeeds, and never traps.
/// (Leaks are checked by running this suite under `--sanitize=address`, whose LeakSanitizer
/// fails the run if any unpacked message is not freed.)
@Suite struct HostileInputTests {
    /// A prefix that ends inside a field is malformed; one that ends between top-level fields is a
    /// complete (shorter) message and may only fail on what is missing.
    @Test(arguments: Fixtures.samples)
    func everyTruncationIsRejectedOrComplete(_ sample: Sample) {
        let boundaries = WireBytes.fieldBoundaries(of: sample.bytes)
        var malformed = 0
        for length in 0..<sample.bytes.count {
            let prefix = Array(sample.bytes[..<length])
            let result = Result { () throws(WireError) in try sample.decode(prefix) }
            if boundaries.contains(length) {
                if case .failure(let error) = result {
                    #expect(error.code != .malformed && error.code != .tooLarge, "prefix of \(length) bytes: \(error)")
                }
            } else {
                switch result {
                case .success:
                    Issue.record("prefix of \(length) of \(sample.bytes.count) bytes, inside a field, decoded")
                case .failure(let error):
                    #expect(error.code == .malformed, "prefix of \(length) bytes: \(error)")
                    malformed += 1
                }
            }
        }
        #expect(malformed == sample.bytes.count - (boundaries.count - 1))
        #expect(throws: Never.self) { try sample.decode(sample.bytes) }
    }

    @Test func oversizedInputIsRejectedBeforeParsing() {
        let limit = TrainingEvent.maxWireSize
        #expect(limit == 4 * 1024 * 1024)
        let oversized = [UInt8](repeating: 0x0A, count: limit + 1)
        for decoder in Fixtures.decoders {
            do {
                try decoder.decode(oversized)
                Issue.record("\(decoder.name) accepted \(oversized.count) bytes")
            } catch {
                #expect(error.code == .tooLarge)
                #expect(error.message.contains(decoder.name) && error.message.contains("\(limit)"), "\(error)")
            }
        }
    }

    /// The limit is inclusive: a message of exactly `maxWireSize` bytes is parsed.
    @Test func inputAtTheLimitIsParsed() throws {
        let limit = LogReply.maxWireSize
        let payload = limit - 1 - 4  // tag byte + 4-byte length varint
        let bytes = WireBytes { $0.string(1, String(repeating: "a", count: payload)) }.bytes
        #expect(bytes.count == limit)
        let reply = try LogReply.decode(bytes)
        #expect(reply.lines.count == 1 && reply.lines[0].utf8.count == payload)
        // The same bytes at the limit but not protobuf: parsed, and rejected as malformed, not too large.
        let error = #expect(throws: WireError.self) { try LogReply.decode([UInt8](repeating: 0, count: limit)) }
        #expect(error?.code == .malformed)
    }

    /// 10,000 random inputs of 0...512 bytes, each decoded as every message type.
    @Test func randomBytes() {
        var rng = SeededGenerator(seed: 0xA4C0_2024)
        var outcomes = Outcomes()
        for _ in 0..<10_000 {
            let length = Int.random(in: 0...512, using: &rng)
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }
            for decoder in Fixtures.decoders {
                outcomes.record(decoder.name) { () throws(WireError) in try decoder.decode(bytes) }
            }
        }
        #expect(outcomes.failed > 0 && outcomes.succeeded > 0)
        #expect(outcomes.unhelpfulMessages.isEmpty, "\(outcomes.unhelpfulMessages.prefix(5))")
    }

    /// 5,000 random but well-formed-looking inputs (valid tags and lengths, random field numbers,
    /// wire types and nesting): these reach deeper into the parser than random bytes do.
    @Test func randomStructuredMessages() {
        var rng = SeededGenerator(seed: 0x5EED_0001)
        var outcomes = Outcomes()
        for _ in 0..<5000 {
            let bytes = randomMessage(depth: 0, using: &rng).bytes
            for decoder in Fixtures.decoders {
                outcomes.record(decoder.name) { () throws(WireError) in try decoder.decode(bytes) }
            }
        }
        #expect(outcomes.failed > 0 && outcomes.succeeded > 0)
        #expect(outcomes.unhelpfulMessages.isEmpty, "\(outcomes.unhelpfulMessages.prefix(5))")
    }

    /// 10,000 mutations (bit flips, byte changes, insertions, deletions, duplications, splices) of valid encodings.
    @Test func mutatedEncodings() {
        var rng = SeededGenerator(seed: 0x00DD_BA11)
        let samples = Fixtures.samples
        var outcomes = Outcomes()
        for _ in 0..<10_000 {
            let sample = samples.randomElement(using: &rng)!
            var bytes = sample.bytes
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                mutate(&bytes, donor: samples.randomElement(using: &rng)!.bytes, using: &rng)
            }
            outcomes.record(sample.protoMessageName) { () throws(WireError) in try sample.decode(bytes) }
            let other = Fixtures.decoders.randomElement(using: &rng)!
            outcomes.record(other.name) { () throws(WireError) in try other.decode(bytes) }
        }
        #expect(outcomes.failed > 1000 && outcomes.succeeded > 1000, "\(outcomes.failed) failed, \(outcomes.succeeded) decoded")
        #expect(outcomes.unhelpfulMessages.isEmpty, "\(outcomes.unhelpfulMessages.prefix(5))")
    }

    /// Every error of the fuzz tests names the message it was decoding, so a log line says what broke.
    struct Outcomes {
        var succeeded = 0
        var failed = 0
        var codes: Set<WireError.Code> = []
        var unhelpfulMessages: [String] = []

        mutating func record(_ messageName: String, _ decode: () throws(WireError) -> Void) {
            do {
                try decode()
                succeeded += 1
            } catch {
                failed += 1
                codes.insert(error.code)
                if !error.message.contains(messageName) { unhelpfulMessages.append(error.description) }
            }
        }
    }

    private func mutate(_ bytes: inout [UInt8], donor: [UInt8], using rng: inout SeededGenerator) {
        let position = bytes.isEmpty ? 0 : Int.random(in: 0..<bytes.count, using: &rng)
        switch Int.random(in: 0..<7, using: &rng) {
        case 0 where !bytes.isEmpty:
            bytes[position] ^= 1 << UInt8.random(in: 0..<8, using: &rng)
        case 1 where !bytes.isEmpty:
            bytes[position] = [0x00, 0x7F, 0x80, 0xFF, UInt8.random(in: 0...255, using: &rng)].randomElement(using: &rng)!
        case 2:
            bytes.insert(UInt8.random(in: 0...255, using: &rng), at: position)
        case 3 where !bytes.isEmpty:
            bytes.remove(at: position)
        case 4:
            bytes.removeLast(Int.random(in: 0...bytes.count, using: &rng))
        case 5 where !bytes.isEmpty:
            let end = Int.random(in: position...bytes.count, using: &rng)
            let copy = Array(bytes[position..<end])
            bytes.insert(contentsOf: copy, at: end)
        default:
            guard !donor.isEmpty else { return }
            let start = Int.random(in: 0..<donor.count, using: &rng)
            let end = Int.random(in: start...donor.count, using: &rng)
            bytes.replaceSubrange(position..<min(bytes.count, position + end - start), with: donor[start..<end])
        }
    }

    private func randomMessage(depth: Int, using rng: inout SeededGenerator) -> WireBytes {
        var message = WireBytes()
        for _ in 0..<Int.random(in: 0...8, using: &rng) {
            let field = Bool.random(using: &rng) ? Int.random(in: 1...25, using: &rng) : Int.random(in: 1...1000, using: &rng)
            switch Int.random(in: 0..<6, using: &rng) {
            case 0: message.varint(field, rng.next() >> UInt64.random(in: 0...63, using: &rng))
            case 1: message.double(field, [Double.nan, .infinity, -0.0, 1.5, Double(bitPattern: rng.next())].randomElement(using: &rng)!)
            case 2: message.lengthDelimited(field, (0..<Int.random(in: 0...12, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) })
            case 3: message.string(field, ["", "ok", "ünï", "job-1"].randomElement(using: &rng)!)
            case 4 where depth < 4: message.lengthDelimited(field, randomMessage(depth: depth + 1, using: &rng).bytes)
            default: message.raw([UInt8(truncatingIfNeeded: field << 3 | 5), 1, 2, 3, 4])
            }
        }
        return message
    }
}
