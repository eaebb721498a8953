/// An amount of memory or disk in a policy, written `"8GiB"`, `"512MiB"`, `"16GB"` or a plain number of bytes.
public struct ByteCount: Codable, Sendable, Hashable, Comparable, CustomStringConvertible {
    public var bytes: UInt64

    public init(bytes: UInt64) { self.bytes = bytes }

    public static func gibibytes(_ value: UInt64) -> ByteCount { ByteCount(bytes: value << 30) }
    public static func mebibytes(_ value: UInt64) -> ByteCount { ByteCount(bytes: value << 20) }

    private static let units: [(String, UInt64)] = [
        ("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10),
        ("TB", 1_000_000_000_000), ("GB", 1_000_000_000), ("MB", 1_000_000), ("KB", 1000), ("B", 1),
    ]

    /// Parses `"8GiB"`-style text; nil when it is not a size.
    public init?(parsing text: String) {
        let trimmed = text.trimmingWhitespace()
        let number = trimmed.prefix { $0.isNumber || $0 == "." }
        let unitText = trimmed.dropFirst(number.count).trimmingPrefixSpaces()
        guard !number.isEmpty, let value = Double(number), value >= 0 else { return nil }
        let size: UInt64
        if unitText.isEmpty {
            size = 1
        } else if let unit = Self.units.first(where: { $0.0 == unitText }) {
            size = unit.1
        } else {
            return nil
        }
        let total = value * Double(size)
        guard total.isFinite, total < 1.8e19 else { return nil }
        self.init(bytes: UInt64(total.rounded()))
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let number = try? container.decode(UInt64.self) {
            self.init(bytes: number)
            return
        }
        let text = try container.decode(String.self)
        guard let value = ByteCount(parsing: text) else {
            throw DecodingError.dataCorruptedError(
                in: container,
                debugDescription: "expected a size such as \"8GiB\" or \"512MiB\" (units B, KiB, MiB, GiB, TiB, KB, MB, GB, TB), got \"\(text)\""
            )
        }
        self = value
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }

    /// `"8GiB"` when exact in a binary unit, else a number of bytes.
    public var description: String {
        if bytes == 0 { return "0" }
        for (unit, size) in Self.units where unit.hasSuffix("iB") && bytes % size == 0 {
            return "\(bytes / size)\(unit)"
        }
        return "\(bytes)B"
    }

    /// `"8 GiB"`, `"1.5 GiB"`: for messages.
    public static func human(_ bytes: UInt64) -> String {
        for (unit, size) in units where unit.hasSuffix("iB") && bytes >= size {
            let value = Double(bytes) / Double(size)
            let rounded = (value * 10).rounded() / 10
            let text = rounded == rounded.rounded() ? String(Int(rounded)) : String(rounded)
            return "\(text) \(unit)"
        }
        return "\(bytes) B"
    }

    public static func < (a: ByteCount, b: ByteCount) -> Bool { a.bytes < b.bytes }
}

extension Substring {
    func trimmingPrefixSpaces() -> Substring { drop { $0 == " " } }
}
