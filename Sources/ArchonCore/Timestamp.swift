/// Unix-millisecond times in words, without a clock or a calendar library.
public enum Timestamp {
    /// `2026-01-05T12:00:03.250Z` (milliseconds only when not zero).
    public static func iso8601(_ ms: Int64) -> String {
        let ms = min(max(ms, -8_640_000_000_000_000), 8_640_000_000_000_000)  // ±275,000 years: no overflow below
        let seconds = ms >= 0 ? ms / 1000 : (ms - 999) / 1000
        let millis = ms - seconds * 1000
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secondOfDay = seconds - days * 86_400
        let (y, m, d) = civil(fromDays: days)
        func pad(_ v: Int64, _ width: Int = 2) -> String {
            let text = String(v)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        var text = "\(pad(y, 4))-\(pad(m))-\(pad(d))T\(pad(secondOfDay / 3600)):\(pad(secondOfDay % 3600 / 60)):\(pad(secondOfDay % 60))"
        if millis != 0 { text += ".\(pad(millis, 3))" }
        return text + "Z"
    }

    /// Howard Hinnant's days-from-civil, inverted.
    private static func civil(fromDays z0: Int64) -> (Int64, Int64, Int64) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let y = yoe + era * 400
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (m <= 2 ? y + 1 : y, m, d)
    }

    /// "1h 30m", "45s", "0s".
    static func duration(_ ms: Int64) -> String { PolicyDuration.format(milliseconds: ms) }
}
