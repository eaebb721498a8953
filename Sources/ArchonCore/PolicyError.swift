/// A policy file that cannot be used, with every problem found, each at its line.
public struct PolicyError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of problem; extensible.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let name: String
        public init(_ name: String) { self.name = name }
        /// Not valid JSON / YAML.
        public static let syntax = Code("syntax")
        /// A key the policy does not have (usually a typo).
        public static let unknownKey = Code("unknown-key")
        /// A value of the wrong type or form.
        public static let invalidValue = Code("invalid-value")
        /// Values of the right type that break a rule (a negative window, an empty ladder that must not be).
        public static let outOfRange = Code("out-of-range")
        public var description: String { name }
    }

    /// The kind of the first problem found.
    public let code: Code
    /// The file name given to ``Policy/parse(_:fileName:)``.
    public let fileName: String
    /// Every problem, in file order where the parser can tell.
    public let issues: [PolicyIssue]

    public init(code: Code, fileName: String, issues: [PolicyIssue]) {
        self.code = code
        self.fileName = fileName
        self.issues = issues
    }

    /// One line per issue: `policy.json:12: remediation.maxRestartsPerJob: must be >= 0 (got -1)`.
    public var description: String {
        issues.map { $0.rendered(fileName: fileName) }.joined(separator: "\n")
    }
}

/// One problem in a policy: where, and what to change.
public struct PolicyIssue: Sendable, Hashable, CustomStringConvertible {
    /// 1-based line in the file; 0 when the value did not come from the file.
    public var line: Int
    /// Dotted path, e.g. `remediation.ladders.outOfMemory.steps[2].factor`; empty for the whole file.
    public var path: String
    /// What is wrong and what would be right.
    public var message: String

    public init(line: Int = 0, path: String, message: String) {
        self.line = line
        self.path = path
        self.message = message
    }

    func rendered(fileName: String) -> String {
        let location = line > 0 ? "\(fileName):\(line)" : fileName
        return path.isEmpty ? "\(location): \(message)" : "\(location): \(path): \(message)"
    }

    public var description: String { rendered(fileName: "policy") }
}
