/// Why bytes could not be decoded as an `archon.v1` message.
///
/// Bad input from the network is expected: callers log the error (its ``message`` names the
/// message type, the field and what to do), count it and drop or dead-letter the message.
public struct WireError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of problem it is. New codes may be added; switch with a `default`.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        public let description: String

        private init(_ description: String) {
            self.description = description
        }

        /// Not a protobuf encoding of the expected message: truncated, corrupt, or another message type.
        public static let malformed = Code("malformed")
        /// Larger than ``WireMessage/maxWireSize``; rejected before parsing.
        public static let tooLarge = Code("tooLarge")
        /// A `TrainingEvent` whose `body` oneof is not set (or set to an arm this build does not know).
        public static let missingBody = Code("missingBody")
        /// A sub-message the model requires is absent (a `JobAssignment` without `spec`, an `Escalation` without `incident`).
        public static let missingField = Code("missingField")
        /// A field holds a value the model cannot represent: a string that is not UTF-8, or an enum value
        /// that is unspecified or unknown where the model has no "unspecified" case.
        public static let invalidValue = Code("invalidValue")
    }

    public var code: Code
    /// What went wrong and what to check, for a person reading a log line.
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }
}
