// Arithmetic on numbers that came from an agent. A conversion or sum that traps on an absurd value would crash
// the controller on an event that is never acknowledged, so every restarted controller would die on it again:
// these saturate at the nearest bound instead.

extension FixedWidthInteger {
    /// `value` rounded to the nearest integer; NaN is 0, and anything beyond the range is the nearest bound.
    init(saturating value: Double) {
        let rounded = value.rounded()
        if let exact = Self(exactly: rounded) {
            self = exact
        } else if rounded.isNaN {
            self = 0
        } else {
            self = rounded < 0 ? .min : .max
        }
    }

    /// `self + other`, or the nearest bound where that overflows.
    public func addingSaturated(_ other: Self) -> Self {
        let (sum, overflow) = addingReportingOverflow(other)
        guard overflow else { return sum }
        return other > 0 ? .max : .min
    }

    /// `self - other`, or the nearest bound where that overflows.
    func subtractingSaturated(_ other: Self) -> Self {
        let (difference, overflow) = subtractingReportingOverflow(other)
        guard overflow else { return difference }
        return other > 0 ? .min : .max
    }
}

extension Int64 {
    /// `seconds` as milliseconds (NaN as 0, saturating): for durations an agent reports.
    init(millisecondsSaturating seconds: Double) {
        self.init(saturating: seconds * 1000)
    }
}
