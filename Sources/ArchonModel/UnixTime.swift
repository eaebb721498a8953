import Foundation

/// Times on the wire and in state are Unix epoch milliseconds (see proto/archon/v1/training.proto).
public enum UnixTime {
    /// Now, in Unix milliseconds, from the system clock.
    public static func nowMillis() -> Int64 {
        Int64((Date().timeIntervalSince1970 * 1000).rounded())
    }
}
