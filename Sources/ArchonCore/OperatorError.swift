/// An operator action that cannot be applied; the state is unchanged.
public struct OperatorError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of problem; extensible.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let name: String
        public init(_ name: String) { self.name = name }
        public static let unknownIncident = Code("unknown-incident")
        public static let unknownJob = Code("unknown-job")
        public static let unknownNode = Code("unknown-node")
        public static let unknownDataset = Code("unknown-dataset")
        /// The incident is resolved: it can no longer be acknowledged.
        public static let incidentResolved = Code("incident-resolved")
        /// A silence that cannot be added as given (no matcher, no reason, bad times, too many).
        public static let invalidSilence = Code("invalid-silence")
        /// A well-formed silence the fleet cannot take now: it would end before it starts or before now, last over 30
        /// days, or too many are in force.
        public static let silenceRefused = Code("silence-refused")
        public static let unknownSilence = Code("unknown-silence")
        public var description: String { name }
    }

    /// What kind of problem.
    public let code: Code
    /// What went wrong, for the operator: "incident 'INC-9' not found".
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
