/// A length of time in a policy, written `"15m"`, `"1h30m"`, `"90s"`, `"500ms"` or `"2d"`.
public struct PolicyDuration: Codable, Sendable, Hashable, Comparable, CustomStringConvertible {
    public var milliseconds: Int64

    public init(milliseconds: Int64) { self.milliseconds = milliseconds }

    public static func milliseconds(_ value: Int64) -> PolicyDuration { PolicyDuration(milliseconds: value) }
    public static func seconds(_ value: Int64) -> PolicyDuration { PolicyDuration(milliseconds: value * 1000) }
    public static func minutes(_ value: Int64) -> PolicyDuration { PolicyDuration(milliseconds: value * 60_000) }
    public static func hours(_ value: Int64) -> PolicyDuration { PolicyDuration(milliseconds: value * 3_600_000) }

    public var seconds: Int64 { milliseconds / 1000 }

    /// Parses `"1h30m"`-style text; nil when it is not a duration.
    public init?(parsing text: String) {
        let units: [(String, Int64)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000)]
        var rest = Substring(text.trimmingWhitespace())
        var total: Int64 = 0
        guard !rest.isEmpty else { return nil }
        if rest == "0" {
            self.init(milliseconds: 0)
            return
        }
        while !rest.isEmpty {
            let number = rest.prefix { $0.isNumber || $0 == "." }
            guard !number.isEmpty, let value = Double(number) else { return nil }
            rest = rest.dropFirst(number.count)
            let unitText = rest.prefix { $0.isLetter }
            guard let unit = units.first(where: { $0.0 == unitText }) else { return nil }
            rest = rest.dropFirst(unitText.count)
            let ms = value * Double(unit.1)
            guard ms.isFinite, ms < 1e15 else { return nil }
            total += Int64(ms.rounded())
        }
        self.init(milliseconds: total)
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let number = try? container.decode(Double.self) {
            guard number == 0 else {
                throw DecodingError.dataCorruptedError(
                    in: container, debugDescription: "a bare number is ambiguous: write a duration with its unit, such as \"\(number.compact)s\" or \"\(number.compact)m\"")
            }
            self.init(milliseconds: 0)
            return
        }
        let text = try container.decode(String.self)
        guard let value = PolicyDuration(parsing: text) else {
            throw DecodingError.dataCorruptedError(
                in: container,
                debugDescription: "expected a duration such as \"15m\" or \"1h30m\" (units ms, s, m, h, d), got \"\(text)\""
            )
        }
        self = value
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }

    /// Canonical text: `"1h30m"`, `"15m"`, `"500ms"`, `"0s"`.
    public var description: String { Self.format(milliseconds: milliseconds, compact: true) }

    /// Human text with spaces: `"1h 30m"`.
    static func format(milliseconds ms: Int64, compact: Bool = false) -> String {
        if ms == 0 { return "0s" }
        let sign = ms < 0 ? "-" : ""
        var rest = ms.magnitude
        var parts: [String] = []
        for (unit, size) in [("d", UInt64(86_400_000)), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)] {
            let count = rest / size
            if count > 0 { parts.append("\(count)\(unit)") }
            rest %= size
        }
        return sign + parts.joined(separator: compact ? "" : " ")
    }

    public static func < (a: PolicyDuration, b: PolicyDuration) -> Bool { a.milliseconds < b.milliseconds }
}

extension String {
    func trimmingWhitespace() -> String {
        let scalars = unicodeScalars
        guard let start = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
            let end = scalars.lastIndex(where: { !$0.properties.isWhitespace })
        else { return "" }
        return String(scalars[start...end])
    }
}
