import Foundation
import Yams

/// YAML files people write — policy files and job specs — read by Yams (libyaml): all of YAML, anchors and aliases,
/// merge keys (`<<: *defaults`), block and flow styles, multi-line strings. The result is the located tree the policy
/// loader checks, so every value keeps its line and every error says where.
public enum YAMLFile {
    /// The document as a tree of located values; an empty document is an empty object. `isText(path)`: whether the
    /// value at `path` (keys, nil for a list index: `["env", "HOME"]`, `["command", nil]`) is text, so that a plain
    /// scalar there stays the text it was written as (`1e-3`, `yes`, `0755` are strings in a string field) instead of
    /// the number or bool YAML would make of it.
    public typealias TextPaths = ([String?]) -> Bool

    static func parse(_ text: String, isText: TextPaths = { _ in false }) throws(PolicyError.Located) -> PolicyNode {
        let root: Yams.Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw located(error)
        } catch {
            throw PolicyError.Located(issue: PolicyIssue(line: 1, path: "", message: "\(error)"))
        }
        guard let root else { return PolicyNode(value: .object([]), line: 1) }
        return try convert(root, path: [], isText: isText)
    }

    /// The document as JSON text (what the job spec decoder reads); errors name `fileName` and the line.
    public static func jsonText(_ yaml: String, fileName: String, isText: TextPaths = { _ in false }) throws(PolicyError) -> String {
        do {
            return try parse(yaml, isText: isText).json
        } catch {
            throw PolicyError(code: .syntax, fileName: fileName, issues: [error.issue])
        }
    }

    private static func convert(_ node: Yams.Node, path: [PathComponent], isText: TextPaths) throws(PolicyError.Located) -> PolicyNode {
        let line = node.mark?.line ?? 0
        func fail(_ message: String) -> PolicyError.Located {
            PolicyError.Located(issue: PolicyIssue(line: line, path: PathComponent.render(path), message: message))
        }
        switch node {
        case .scalar(let scalar):
            let tag = Tag.Name(rawValue: node.tag.rawValue)
            if tag == .int || tag == .float || tag == .bool, scalar.style == .plain,
               isText(path.map { if case .key(let key) = $0 { key } else { nil } }) {
                return PolicyNode(value: .string(scalar.string), line: line)
            }
            switch tag {  // resolved: 4 is an int, 5m a string
            case .null:
                return PolicyNode(value: .null, line: line)
            case .bool:
                return PolicyNode(value: .bool(node.bool ?? false), line: line)
            case .int:
                guard let value = node.int else { throw fail("\(scalar.string) is too large a whole number") }
                return PolicyNode(value: .number(String(value)), line: line)
            case .float:
                guard let value = node.float, value.isFinite else { throw fail("\(scalar.string) is not a finite number") }
                return PolicyNode(value: .number("\(value)"), line: line)
            default:
                return PolicyNode(value: .string(scalar.string), line: line)
            }
        case .mapping(let mapping):
            var members: [PolicyNode.Member] = []
            var merged: [PolicyNode.Member] = []
            for (key, value) in mapping {
                guard case .scalar(let name) = key else { throw fail("a key must be a plain scalar") }
                if Tag.Name(rawValue: key.tag.rawValue) == .merge {  // `<<: *defaults` or `<<: [*a, *b]`: their keys, unless given here
                    let sources: [Yams.Node] = if case .sequence(let list) = value { Array(list) } else { [value] }
                    for source in sources {
                        guard case .object(let inherited) = try convert(source, path: path, isText: isText).value else {
                            throw fail("`<<` merges mappings only")
                        }
                        merged += inherited
                    }
                    continue
                }
                members.append(PolicyNode.Member(key: name.string, line: key.mark?.line ?? line, node: try convert(value, path: path + [.key(name.string)], isText: isText)))
            }
            let own = Set(members.map(\.key))
            var seen = own
            for member in merged where seen.insert(member.key).inserted { members.append(member) }
            return PolicyNode(value: .object(members), line: line)
        case .sequence(let sequence):
            var items: [PolicyNode] = []
            for (index, item) in sequence.enumerated() { items.append(try convert(item, path: path + [.index(index)], isText: isText)) }
            return PolicyNode(value: .array(items), line: line)
        case .alias:
            throw fail("an alias Yams did not resolve")
        }
    }

    /// libyaml's error at its line: "mapping values are not allowed in this context".
    private static func located(_ error: YamlError) -> PolicyError.Located {
        let (line, message): (Int, String) = switch error {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _), .composer(let context, let problem, let mark, _):
            (mark.line, [context.map { "\($0.text)" }, problem].compactMap { $0?.isEmpty == false ? $0 : nil }.joined(separator: ": "))
        case .duplicatedKeysInMapping(let duplicates, let context):
            (context.mark.line, "duplicate key \(duplicates.joined(separator: ", "))")
        default:
            (1, "\(error)")
        }
        return PolicyError.Located(issue: PolicyIssue(line: line, path: "", message: message))
    }
}
