// Foundation only for JSONEncoder/JSONDecoder; the core does no I/O: the shell reads the file.
import Foundation
import ArchonModel

extension Policy {
    /// Reads a policy file's text. Keys left out keep their runbook defaults; unknown keys, wrong types and
    /// values out of range are rejected with every problem at its line (`policy.json:12: …`).
    ///
    /// - Parameter fileName: used in messages, and to pick the format: `.yaml`/`.yml` is read as YAML
    ///   (all of it, through Yams), anything else as JSON.
    public static func parse(_ text: String, fileName: String = "policy.json") throws(PolicyError) -> Policy {
        let isYAML = fileName.hasSuffix(".yaml") || fileName.hasSuffix(".yml")
        let user: PolicyNode
        do {
            user = isYAML ? try YAMLFile.parse(text) : try PolicyJSONParser.parse(text)
        } catch {
            throw PolicyError(code: .syntax, fileName: fileName, issues: [error.issue])
        }
        guard case .object = user.value else {
            throw PolicyError(code: .invalidValue, fileName: fileName, issues: [
                PolicyIssue(line: user.line, path: "", message: "a policy must be an object of sections (detection, remediation, …)")
            ])
        }

        var unknown: [PolicyIssue] = []
        let merged = merge(defaultsTree, user, path: [], issues: &unknown)
        if !unknown.isEmpty {
            throw PolicyError(code: .unknownKey, fileName: fileName, issues: unknown)
        }

        let policy: Policy
        do {
            policy = try JSONDecoder().decode(Policy.self, from: Data(merged.json.utf8))
        } catch let error as DecodingError {
            throw PolicyError(code: .invalidValue, fileName: fileName, issues: [issue(for: error, in: user)])
        } catch {
            throw PolicyError(code: .invalidValue, fileName: fileName, issues: [PolicyIssue(path: "", message: "\(error)")])
        }

        let problems = policy.validate().map { problem in
            var located = problem
            located.line = user.deepest(along: PathComponent.parse(problem.path)).line
            return located
        }
        if !problems.isEmpty {
            throw PolicyError(code: .outOfRange, fileName: fileName, issues: problems)
        }
        return policy
    }

    /// The policy as pretty-printed JSON with sorted keys: a complete policy file.
    public func jsonText() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        // Encoding plain value types cannot fail.
        guard let data = try? encoder.encode(self) else { preconditionFailure("Policy is not encodable") }
        return String(decoding: data, as: UTF8.self)
    }

    private static let defaultsTree: PolicyNode = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys  // deterministic key lists in messages
        guard let data = try? encoder.encode(Policy.runbookDefaults),
            let tree = try? PolicyJSONParser.parse(String(decoding: data, as: UTF8.self))
        else { preconditionFailure("the default policy does not encode") }
        return tree
    }()

    /// The user's values over the defaults; objects merge key by key, everything else replaces.
    private static func merge(_ base: PolicyNode, _ overlay: PolicyNode, path: [PathComponent], issues: inout [PolicyIssue]) -> PolicyNode {
        guard case .object(let baseMembers) = base.value, case .object(let overlayMembers) = overlay.value else {
            return overlay
        }
        var result = baseMembers
        for member in overlayMembers {
            let memberPath = path + [.key(member.key)]
            if let index = result.firstIndex(where: { $0.key == member.key }) {
                result[index].node = merge(result[index].node, member.node, path: memberPath, issues: &issues)
            } else {
                let known = baseMembers.map(\.key)
                let hint: String
                if let close = closest(to: member.key, in: known) {
                    hint = "did you mean \"\(close)\"?"
                } else {
                    hint = "known keys here: \(known.joined(separator: ", "))"
                }
                issues.append(PolicyIssue(line: member.line, path: PathComponent.render(memberPath), message: "unknown key; \(hint)"))
            }
        }
        return PolicyNode(value: .object(result), line: overlay.line)
    }

    private static func closest(to key: String, in candidates: [String]) -> String? {
        let scored = candidates.map { ($0, editDistance(key.lowercased(), $0.lowercased())) }
        guard let best = scored.min(by: { $0.1 < $1.1 }), best.1 <= max(2, key.count / 3) else { return nil }
        return best.0
    }

    private static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        if a.isEmpty { return b.count }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in stride(from: 1, through: b.count, by: 1) {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }

    private static let enumValues: [String: [String]] = [
        "EscalationLevel": EscalationLevel.allCases.map(\.rawValue),
        "Severity": Severity.allCases.map(\.rawValue),
        "Symptom": Symptom.allCases.map(\.rawValue),
    ]

    private static func issue(for error: DecodingError, in user: PolicyNode) -> PolicyIssue {
        func components(_ codingPath: [any CodingKey]) -> [PathComponent] {
            codingPath.map { key in key.intValue.map(PathComponent.index) ?? .key(key.stringValue) }
        }
        func found(_ node: PolicyNode) -> String {
            switch node.value {
            case .object: "an object"
            case .array: "a list"
            case .string(let text): "\"\(text)\""
            case .number(let text): text
            case .bool(let flag): flag ? "true" : "false"
            case .null: "null"
            }
        }
        func expected(_ type: Any.Type) -> String {
            if type == Int.self || type == Int64.self || type == UInt64.self { return "an integer" }
            if type == Double.self { return "a number" }
            if type == Bool.self { return "true or false" }
            if type == String.self { return "a string" }
            let name = String(describing: type)
            if name.hasPrefix("Array") { return "a list" }
            if name.hasPrefix("Dictionary") { return "an object" }
            return name
        }
        switch error {
        case .typeMismatch(let type, let context):
            let path = components(context.codingPath)
            let node = user.deepest(along: path)
            return PolicyIssue(line: node.line, path: PathComponent.render(path), message: "expected \(expected(type)), found \(found(node))")
        case .valueNotFound(let type, let context):
            let path = components(context.codingPath)
            let node = user.deepest(along: path)
            return PolicyIssue(line: node.line, path: PathComponent.render(path), message: "expected \(expected(type)), found null")
        case .keyNotFound(let key, let context):
            let path = components(context.codingPath)
            let node = user.deepest(along: path)
            return PolicyIssue(line: node.line, path: PathComponent.render(path), message: "missing \"\(key.stringValue)\"")
        case .dataCorrupted(let context):
            let path = components(context.codingPath)
            let node = user.deepest(along: path)
            var message = context.debugDescription
            if let type = enumValues.keys.sorted().first(where: { message.contains($0) }), let values = enumValues[type] {
                message = "must be one of \(values.joined(separator: ", ")), found \(found(node))"
            }
            return PolicyIssue(line: node.line, path: PathComponent.render(path), message: message)
        @unknown default:
            return PolicyIssue(path: "", message: "\(error)")
        }
    }
}

extension PathComponent {
    /// Parses `a.b[2].c`.
    static func parse(_ text: String) -> [PathComponent] {
        var out: [PathComponent] = []
        for part in text.split(separator: ".") {
            var rest = Substring(part)
            if let bracket = rest.firstIndex(of: "[") {
                if bracket > rest.startIndex { out.append(.key(String(rest[..<bracket]))) }
                rest = rest[bracket...]
                while rest.first == "[", let close = rest.firstIndex(of: "]") {
                    if let index = Int(rest[rest.index(after: rest.startIndex)..<close]) { out.append(.index(index)) }
                    rest = rest[rest.index(after: close)...]
                }
            } else {
                out.append(.key(String(rest)))
            }
        }
        return out
    }
}
