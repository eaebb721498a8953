/// A parsed policy file: each value with the line it starts on, so errors can point at it.
struct PolicyNode: Sendable, Hashable {
    struct Member: Sendable, Hashable {
        var key: String
        var line: Int
        var node: PolicyNode
    }

    indirect enum Value: Sendable, Hashable {
        case object([Member])
        case array([PolicyNode])
        case string(String)
        /// The number as written, so it reaches the decoder unchanged.
        case number(String)
        case bool(Bool)
        case null
    }

    var value: Value
    var line: Int

    /// The node at a decoding path, or the deepest one on the way, with how many components matched.
    func deepest(along path: [PathComponent]) -> PolicyNode {
        var node = self
        for component in path {
            switch (component, node.value) {
            case (.key(let key), .object(let members)):
                guard let member = members.last(where: { $0.key == key }) else { return node }
                node = member.node
            case (.index(let index), .array(let items)):
                guard items.indices.contains(index) else { return node }
                node = items[index]
            default:
                return node
            }
        }
        return node
    }

    /// Compact JSON text of the tree.
    var json: String {
        var out = ""
        write(to: &out)
        return out
    }

    private func write(to out: inout String) {
        switch value {
        case .object(let members):
            out += "{"
            for (i, member) in members.enumerated() {
                if i > 0 { out += "," }
                out += Self.quoted(member.key) + ":"
                member.node.write(to: &out)
            }
            out += "}"
        case .array(let items):
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += "," }
                item.write(to: &out)
            }
            out += "]"
        case .string(let text): out += Self.quoted(text)
        case .number(let text): out += text
        case .bool(let flag): out += flag ? "true" : "false"
        case .null: out += "null"
        }
    }

    static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}

/// A step along a path into a policy tree.
enum PathComponent: Hashable, Sendable, CustomStringConvertible {
    case key(String)
    case index(Int)

    var description: String {
        switch self {
        case .key(let key): key
        case .index(let index): "[\(index)]"
        }
    }

    /// `a.b[2].c`
    static func render(_ path: [PathComponent]) -> String {
        var out = ""
        for component in path {
            switch component {
            case .key(let key): out += out.isEmpty ? key : ".\(key)"
            case .index(let index): out += "[\(index)]"
            }
        }
        return out
    }
}

/// A JSON parser that remembers lines (Foundation's does not).
struct PolicyJSONParser {
    private let bytes: [UInt8]
    private var position = 0
    private var line = 1

    init(_ text: String) { bytes = Array(text.utf8) }

    static func parse(_ text: String) throws(PolicyError.Located) -> PolicyNode {
        var parser = PolicyJSONParser(text)
        parser.skipWhitespace()
        let node = try parser.parseValue(path: [])
        parser.skipWhitespace()
        if parser.position < parser.bytes.count {
            throw parser.error("unexpected \(parser.peekDescription) after the end of the document")
        }
        return node
    }

    private var peekDescription: String {
        guard position < bytes.count else { return "end of file" }
        let byte = bytes[position]
        if byte >= 0x20 && byte < 0x7F { return "'\(Character(UnicodeScalar(byte)))'" }
        return "byte 0x\(String(byte, radix: 16))"
    }

    private func error(_ message: String, path: [PathComponent] = []) -> PolicyError.Located {
        PolicyError.Located(issue: PolicyIssue(line: line, path: PathComponent.render(path), message: message))
    }

    private mutating func skipWhitespace() {
        while position < bytes.count {
            switch bytes[position] {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r"): position += 1
            case UInt8(ascii: "\n"):
                position += 1
                line += 1
            default: return
            }
        }
    }

    private mutating func parseValue(path: [PathComponent]) throws(PolicyError.Located) -> PolicyNode {
        guard position < bytes.count else { throw error("unexpected end of file, expected a value", path: path) }
        let startLine = line
        switch bytes[position] {
        case UInt8(ascii: "{"):
            position += 1
            var members: [PolicyNode.Member] = []
            skipWhitespace()
            if position < bytes.count, bytes[position] == UInt8(ascii: "}") {
                position += 1
                return PolicyNode(value: .object(members), line: startLine)
            }
            while true {
                skipWhitespace()
                guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else {
                    throw error("expected a quoted key, found \(peekDescription)", path: path)
                }
                let keyLine = line
                let key = try parseString(path: path)
                if members.contains(where: { $0.key == key }) {
                    throw PolicyError.Located(issue: PolicyIssue(
                        line: keyLine, path: PathComponent.render(path + [.key(key)]), message: "duplicate key"))
                }
                skipWhitespace()
                guard position < bytes.count, bytes[position] == UInt8(ascii: ":") else {
                    throw error("expected ':' after key \"\(key)\", found \(peekDescription)", path: path)
                }
                position += 1
                skipWhitespace()
                let node = try parseValue(path: path + [.key(key)])
                members.append(PolicyNode.Member(key: key, line: keyLine, node: node))
                skipWhitespace()
                guard position < bytes.count else { throw error("unexpected end of file, expected ',' or '}'", path: path) }
                if bytes[position] == UInt8(ascii: ",") {
                    position += 1
                    continue
                }
                if bytes[position] == UInt8(ascii: "}") {
                    position += 1
                    return PolicyNode(value: .object(members), line: startLine)
                }
                throw error("expected ',' or '}' after the value of \"\(key)\", found \(peekDescription)", path: path)
            }
        case UInt8(ascii: "["):
            position += 1
            var items: [PolicyNode] = []
            skipWhitespace()
            if position < bytes.count, bytes[position] == UInt8(ascii: "]") {
                position += 1
                return PolicyNode(value: .array(items), line: startLine)
            }
            while true {
                skipWhitespace()
                items.append(try parseValue(path: path + [.index(items.count)]))
                skipWhitespace()
                guard position < bytes.count else { throw error("unexpected end of file, expected ',' or ']'", path: path) }
                if bytes[position] == UInt8(ascii: ",") {
                    position += 1
                    continue
                }
                if bytes[position] == UInt8(ascii: "]") {
                    position += 1
                    return PolicyNode(value: .array(items), line: startLine)
                }
                throw error("expected ',' or ']' in a list, found \(peekDescription)", path: path)
            }
        case UInt8(ascii: "\""):
            return PolicyNode(value: .string(try parseString(path: path)), line: startLine)
        case UInt8(ascii: "t"):
            try expectWord("true", path: path)
            return PolicyNode(value: .bool(true), line: startLine)
        case UInt8(ascii: "f"):
            try expectWord("false", path: path)
            return PolicyNode(value: .bool(false), line: startLine)
        case UInt8(ascii: "n"):
            try expectWord("null", path: path)
            return PolicyNode(value: .null, line: startLine)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return PolicyNode(value: .number(try parseNumber(path: path)), line: startLine)
        default:
            throw error("expected a value, found \(peekDescription)", path: path)
        }
    }

    private mutating func expectWord(_ word: String, path: [PathComponent]) throws(PolicyError.Located) {
        let utf8 = Array(word.utf8)
        guard position + utf8.count <= bytes.count, Array(bytes[position..<position + utf8.count]) == utf8 else {
            throw error("expected a value, found \(peekDescription) (strings need double quotes)", path: path)
        }
        position += utf8.count
    }

    private mutating func parseNumber(path: [PathComponent]) throws(PolicyError.Located) -> String {
        let start = position
        func isNumberByte(_ b: UInt8) -> Bool {
            (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9")) || b == UInt8(ascii: "-") || b == UInt8(ascii: "+")
                || b == UInt8(ascii: ".") || b == UInt8(ascii: "e") || b == UInt8(ascii: "E")
        }
        while position < bytes.count, isNumberByte(bytes[position]) { position += 1 }
        let text = String(decoding: bytes[start..<position], as: UTF8.self)
        guard Double(text) != nil, text.first != "+", !text.hasPrefix("-."), !text.hasPrefix(".") else {
            throw error("\"\(text)\" is not a number", path: path)
        }
        return text
    }

    private mutating func parseString(path: [PathComponent]) throws(PolicyError.Located) -> String {
        position += 1  // opening quote
        var scalars = String.UnicodeScalarView()
        var raw: [UInt8] = []
        func flush() {
            if !raw.isEmpty {
                scalars.append(contentsOf: String(decoding: raw, as: UTF8.self).unicodeScalars)
                raw.removeAll()
            }
        }
        while position < bytes.count {
            let byte = bytes[position]
            position += 1
            switch byte {
            case UInt8(ascii: "\""):
                flush()
                return String(scalars)
            case UInt8(ascii: "\n"):
                throw error("line break inside a string (missing closing quote?)", path: path)
            case UInt8(ascii: "\\"):
                guard position < bytes.count else { break }
                let escape = bytes[position]
                position += 1
                flush()
                switch escape {
                case UInt8(ascii: "\""): scalars.append("\"")
                case UInt8(ascii: "\\"): scalars.append("\\")
                case UInt8(ascii: "/"): scalars.append("/")
                case UInt8(ascii: "b"): scalars.append("\u{8}")
                case UInt8(ascii: "f"): scalars.append("\u{C}")
                case UInt8(ascii: "n"): scalars.append("\n")
                case UInt8(ascii: "r"): scalars.append("\r")
                case UInt8(ascii: "t"): scalars.append("\t")
                case UInt8(ascii: "u"):
                    guard position + 4 <= bytes.count,
                        let code = UInt32(String(decoding: bytes[position..<position + 4], as: UTF8.self), radix: 16)
                    else { throw error("bad \\u escape in a string", path: path) }
                    position += 4
                    scalars.append(UnicodeScalar(code) ?? "\u{FFFD}")
                default:
                    throw error("unknown escape '\\\(Character(UnicodeScalar(escape)))' in a string", path: path)
                }
            default:
                raw.append(byte)
            }
        }
        throw error("unexpected end of file inside a string", path: path)
    }
}

extension PolicyError {
    /// One issue thrown while parsing, before the file name is known.
    struct Located: Error {
        var issue: PolicyIssue
    }
}
