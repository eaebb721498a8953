/// A parser for the block subset of YAML a policy file needs, remembering lines.
///
/// Supported: nested block mappings and sequences (`key: value`, `- item`, `- key: value`), plain, single- and
/// double-quoted scalars, flow lists and objects (`[a, b]`, `{action: restart}`), `#` comments, a leading `---`.
/// Not supported (rejected with the line): anchors, aliases, tags, multi-line scalars, tabs for indentation.
struct PolicyYAMLParser {
    private struct Line {
        var indent: Int
        var content: Substring
        var number: Int
    }

    private var lines: [Line] = []
    private var index = 0

    static func parse(_ text: String) throws(PolicyError.Located) -> PolicyNode {
        var parser = PolicyYAMLParser()
        try parser.split(text)
        guard !parser.lines.isEmpty else { return PolicyNode(value: .object([]), line: 1) }
        let root = try parser.parseBlock(indent: parser.lines[0].indent, path: [])
        if parser.index < parser.lines.count {
            throw parser.error("unexpected indentation", line: parser.lines[parser.index].number)
        }
        return root
    }

    private func error(_ message: String, line: Int, path: [PathComponent] = []) -> PolicyError.Located {
        PolicyError.Located(issue: PolicyIssue(line: line, path: PathComponent.render(path), message: message))
    }

    private mutating func split(_ text: String) throws(PolicyError.Located) {
        var number = 0
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            number += 1
            var line = raw
            if line.last == "\r" { line = line.dropLast() }
            let body = Self.stripComment(line)
            let content = body.drop { $0 == " " }
            if content.isEmpty { continue }
            if content.first == "\t" || body.prefix(while: { $0 == " " || $0 == "\t" }).contains("\t") {
                throw error("tabs cannot indent YAML; use spaces", line: number)
            }
            var trimmed = content
            while trimmed.last == " " { trimmed = trimmed.dropLast() }
            if number == 1 || lines.isEmpty, trimmed == "---" { continue }
            if trimmed == "..." { break }
            if let first = trimmed.first, "&*!|>%@`".contains(first) {
                throw error("'\(first)' (anchors, aliases, tags, block scalars) is not supported in a policy file", line: number)
            }
            lines.append(Line(indent: body.count - content.count, content: trimmed, number: number))
        }
    }

    /// The line without a `#` comment (a `#` at the start or after a space, outside quotes).
    private static func stripComment(_ line: Substring) -> Substring {
        var quote: Character? = nil
        var previous: Character = " "
        for i in line.indices {
            let c = line[i]
            if let q = quote {
                if c == q { quote = nil }
            } else if c == "\"" || c == "'" {
                quote = c
            } else if c == "#" && (previous == " " || previous == "\t") {
                return line[..<i]
            }
            previous = c
        }
        return line
    }

    private static func isSequenceItem(_ content: Substring) -> Bool {
        content == "-" || content.hasPrefix("- ")
    }

    private mutating func parseBlock(indent: Int, path: [PathComponent]) throws(PolicyError.Located) -> PolicyNode {
        if Self.isSequenceItem(lines[index].content) {
            return try parseSequence(indent: indent, path: path)
        }
        return try parseMapping(indent: indent, path: path)
    }

    private mutating func parseMapping(indent: Int, path: [PathComponent]) throws(PolicyError.Located) -> PolicyNode {
        let startLine = lines[index].number
        var members: [PolicyNode.Member] = []
        while index < lines.count {
            let line = lines[index]
            if line.indent < indent { break }
            if line.indent > indent { throw error("unexpected indentation", line: line.number, path: path) }
            if Self.isSequenceItem(line.content) {
                throw error("a list item where a key was expected", line: line.number, path: path)
            }
            guard let (key, rest) = try Self.splitKey(line.content, line: line.number, path: path) else {
                throw error("expected \"key: value\", found \"\(line.content)\"", line: line.number, path: path)
            }
            let memberPath = path + [.key(key)]
            if members.contains(where: { $0.key == key }) {
                throw error("duplicate key", line: line.number, path: memberPath)
            }
            index += 1
            let node: PolicyNode
            if rest.isEmpty {
                if index < lines.count, lines[index].indent > indent
                    || (lines[index].indent == indent && Self.isSequenceItem(lines[index].content))
                {
                    node = try parseBlock(indent: lines[index].indent, path: memberPath)
                } else {
                    node = PolicyNode(value: .null, line: line.number)
                }
            } else {
                node = try Self.scalarOrFlow(rest, line: line.number, path: memberPath)
            }
            members.append(PolicyNode.Member(key: key, line: line.number, node: node))
        }
        return PolicyNode(value: .object(members), line: startLine)
    }

    private mutating func parseSequence(indent: Int, path: [PathComponent]) throws(PolicyError.Located) -> PolicyNode {
        let startLine = lines[index].number
        var items: [PolicyNode] = []
        while index < lines.count {
            let line = lines[index]
            if line.indent < indent || !Self.isSequenceItem(line.content) { break }
            if line.indent > indent { throw error("unexpected indentation", line: line.number, path: path) }
            let itemPath = path + [.index(items.count)]
            let afterDash = line.content.dropFirst()
            let rest = afterDash.drop { $0 == " " }
            if rest.isEmpty {
                index += 1
                if index < lines.count, lines[index].indent > indent {
                    items.append(try parseBlock(indent: lines[index].indent, path: itemPath))
                } else {
                    items.append(PolicyNode(value: .null, line: line.number))
                }
            } else if rest.first != "[", rest.first != "{", rest.first != "\"", rest.first != "'",
                (try Self.splitKey(rest, line: line.number, path: itemPath)) != nil
            {
                // `- key: value`: a mapping whose keys line up with `key`.
                let column = indent + 1 + (afterDash.count - rest.count)
                lines[index] = Line(indent: column, content: rest, number: line.number)
                items.append(try parseMapping(indent: column, path: itemPath))
            } else {
                index += 1
                items.append(try Self.scalarOrFlow(rest, line: line.number, path: itemPath))
            }
        }
        return PolicyNode(value: .array(items), line: startLine)
    }

    /// `key: rest` or `key:`; nil when the text is not a key.
    private static func splitKey(_ content: Substring, line: Int, path: [PathComponent]) throws(PolicyError.Located) -> (String, Substring)? {
        var key: String
        var rest: Substring
        if let quote = content.first, quote == "\"" || quote == "'" {
            guard let close = content.dropFirst().firstIndex(of: quote) else { return nil }
            key = String(content[content.index(after: content.startIndex)..<close])
            rest = content[content.index(after: close)...]
            guard rest.first == ":" else { return nil }
            rest = rest.dropFirst()
        } else {
            guard let colon = content.indices.first(where: { i in
                content[i] == ":" && (content.index(after: i) == content.endIndex || content[content.index(after: i)] == " ")
            }) else { return nil }
            key = String(content[..<colon])
            rest = content[content.index(after: colon)...]
            if key.contains(" ") || key.isEmpty { return nil }
        }
        while key.last == " " { key.removeLast() }
        return (key, rest.drop { $0 == " " })
    }

    private static func scalarOrFlow(_ text: Substring, line: Int, path: [PathComponent]) throws(PolicyError.Located) -> PolicyNode {
        var flow = FlowParser(text: Array(text), line: line, path: path)
        let node = try flow.parseValue(path: path)
        flow.skipSpaces()
        if flow.position < flow.text.count {
            throw PolicyError.Located(issue: PolicyIssue(
                line: line, path: PathComponent.render(path),
                message: "unexpected \"\(String(flow.text[flow.position...]))\" after a value"))
        }
        return node
    }

    /// Scalars and flow collections within one line.
    private struct FlowParser {
        let text: [Character]
        var position = 0
        let line: Int
        let path: [PathComponent]

        init(text: [Character], line: Int, path: [PathComponent]) {
            self.text = text
            self.line = line
            self.path = path
        }

        func error(_ message: String, path: [PathComponent]) -> PolicyError.Located {
            PolicyError.Located(issue: PolicyIssue(line: line, path: PathComponent.render(path), message: message))
        }

        mutating func skipSpaces() {
            while position < text.count, text[position] == " " { position += 1 }
        }

        mutating func parseValue(path: [PathComponent], inFlow: Bool = false) throws(PolicyError.Located) -> PolicyNode {
            skipSpaces()
            guard position < text.count else { return PolicyNode(value: .null, line: line) }
            switch text[position] {
            case "[":
                position += 1
                var items: [PolicyNode] = []
                skipSpaces()
                if position < text.count, text[position] == "]" {
                    position += 1
                    return PolicyNode(value: .array(items), line: line)
                }
                while true {
                    items.append(try parseValue(path: path + [.index(items.count)], inFlow: true))
                    skipSpaces()
                    guard position < text.count else { throw error("missing ']'", path: path) }
                    if text[position] == "," { position += 1; continue }
                    if text[position] == "]" { position += 1; return PolicyNode(value: .array(items), line: line) }
                    throw error("expected ',' or ']' in a list, found '\(text[position])'", path: path)
                }
            case "{":
                position += 1
                var members: [PolicyNode.Member] = []
                skipSpaces()
                if position < text.count, text[position] == "}" {
                    position += 1
                    return PolicyNode(value: .object(members), line: line)
                }
                while true {
                    skipSpaces()
                    let keyNode = try parseScalar(path: path, inFlow: true, stopAtColon: true)
                    guard case .string(let key) = keyNode.value else { throw error("expected a key", path: path) }
                    skipSpaces()
                    guard position < text.count, text[position] == ":" else { throw error("expected ':' after \"\(key)\"", path: path) }
                    position += 1
                    if members.contains(where: { $0.key == key }) { throw error("duplicate key", path: path + [.key(key)]) }
                    let value = try parseValue(path: path + [.key(key)], inFlow: true)
                    members.append(PolicyNode.Member(key: key, line: line, node: value))
                    skipSpaces()
                    guard position < text.count else { throw error("missing '}'", path: path) }
                    if text[position] == "," { position += 1; continue }
                    if text[position] == "}" { position += 1; return PolicyNode(value: .object(members), line: line) }
                    throw error("expected ',' or '}' in an object, found '\(text[position])'", path: path)
                }
            default:
                return try parseScalar(path: path, inFlow: inFlow, stopAtColon: false)
            }
        }

        mutating func parseScalar(path: [PathComponent], inFlow: Bool, stopAtColon: Bool) throws(PolicyError.Located) -> PolicyNode {
            skipSpaces()
            guard position < text.count else { return PolicyNode(value: .null, line: line) }
            let quote = text[position]
            if quote == "\"" || quote == "'" {
                position += 1
                var out = ""
                while position < text.count {
                    let c = text[position]
                    position += 1
                    if c == quote {
                        if quote == "'", position < text.count, text[position] == "'" {
                            out.append("'")
                            position += 1
                            continue
                        }
                        return PolicyNode(value: .string(out), line: line)
                    }
                    if quote == "\"", c == "\\", position < text.count {
                        let e = text[position]
                        position += 1
                        switch e {
                        case "n": out.append("\n")
                        case "t": out.append("\t")
                        case "\"": out.append("\"")
                        case "\\": out.append("\\")
                        default: out.append(e)
                        }
                        continue
                    }
                    out.append(c)
                }
                throw error("missing closing \(quote)", path: path)
            }
            let start = position
            while position < text.count {
                let c = text[position]
                if inFlow && (c == "," || c == "]" || c == "}") { break }
                if stopAtColon && c == ":" { break }
                position += 1
            }
            var plain = String(text[start..<position])
            while plain.last == " " { plain.removeLast() }
            if stopAtColon { return PolicyNode(value: .string(plain), line: line) }
            switch plain {
            case "true", "True", "TRUE": return PolicyNode(value: .bool(true), line: line)
            case "false", "False", "FALSE": return PolicyNode(value: .bool(false), line: line)
            case "null", "Null", "NULL", "~", "": return PolicyNode(value: .null, line: line)
            default:
                if Self.isJSONNumber(plain) { return PolicyNode(value: .number(plain), line: line) }
                return PolicyNode(value: .string(plain), line: line)
            }
        }

        /// `-12`, `0.5`, `1e-3`: numbers JSON would accept as written.
        static func isJSONNumber(_ text: String) -> Bool {
            var chars = Substring(text)
            if chars.first == "-" { chars = chars.dropFirst() }
            let integer = chars.prefix { $0.isASCII && $0.isNumber }
            guard !integer.isEmpty, integer == "0" || integer.first != "0" else { return false }
            chars = chars.dropFirst(integer.count)
            if chars.first == "." {
                chars = chars.dropFirst()
                let fraction = chars.prefix { $0.isASCII && $0.isNumber }
                guard !fraction.isEmpty else { return false }
                chars = chars.dropFirst(fraction.count)
            }
            if chars.first == "e" || chars.first == "E" {
                chars = chars.dropFirst()
                if chars.first == "+" || chars.first == "-" { chars = chars.dropFirst() }
                let exponent = chars.prefix { $0.isASCII && $0.isNumber }
                guard !exponent.isEmpty else { return false }
                chars = chars.dropFirst(exponent.count)
            }
            return chars.isEmpty
        }
    }
}
