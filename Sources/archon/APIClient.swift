import ArgumentParser
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Options every operator command shares.
struct APIOptions: ParsableArguments {
    @Option(name: .long, help: "Controller API URL (default $ARCHON_API, else http://127.0.0.1:8080).")
    var api: String?

    @Option(name: .long, help: "Bearer token (default $ARCHON_TOKEN).")
    var token: String?

    @Flag(name: .long, help: "Print JSON with stable field names instead of a table.")
    var json = false

    var client: APIClient {
        let env = ProcessInfo.processInfo.environment
        return APIClient(base: api ?? env["ARCHON_API"] ?? "http://127.0.0.1:8080", token: token ?? env["ARCHON_TOKEN"] ?? "")
    }
}

/// A small HTTP client of the controller API.
struct APIClient: Sendable {
    let base: String
    let token: String

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// The response body; throws with the API's own error message on a non-2xx answer.
    func call(_ method: String, _ path: String, body: Data? = nil, contentType: String = "application/json") async throws -> Data {
        guard let url = URL(string: base.trimmingCharacters(in: CharacterSet(charactersIn: "/")) + path) else {
            throw Failure(description: "bad API URL \(base)")
        }
        var request = URLRequest(url: url, timeoutInterval: 30)
        request.httpMethod = method
        if !token.isEmpty { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        if let body {
            request.httpBody = body
            request.setValue(contentType, forHTTPHeaderField: "Content-Type")
        }
        let data: Data
        let response: URLResponse
        do {
            (data, response) = try await URLSession.shared.data(for: request)
        } catch {
            throw Failure(description: "cannot reach the controller at \(base): \(error.localizedDescription) (set --api or ARCHON_API)")
        }
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        guard (200..<300).contains(status) else {
            let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
            var message = object?["error"] as? String ?? String(decoding: data, as: UTF8.self)
            if let details = object?["details"] as? [String], !details.isEmpty {
                message += "\n" + details.map { "  - \($0)" }.joined(separator: "\n")
            }
            throw Failure(description: "HTTP \(status): \(message)")
        }
        return data
    }

    func get<T: Decodable>(_ path: String, as type: T.Type) async throws -> T {
        try decode(try await call("GET", path), as: type)
    }

    func post<T: Decodable>(_ path: String, json: [String: String] = [:], as type: T.Type) async throws -> T {
        try decode(try await call("POST", path, body: try JSONSerialization.data(withJSONObject: json)), as: type)
    }

    func decode<T: Decodable>(_ data: Data, as type: T.Type) throws -> T {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        do {
            return try decoder.decode(type, from: data)
        } catch {
            throw Failure(description: "unexpected answer from the controller: \(error)")
        }
    }
}

/// Prints raw JSON from the API (pretty, keys sorted) for `--json`.
func printJSON(_ data: Data) {
    if let object = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]),
       let pretty = try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys]) {
        print(String(decoding: pretty, as: UTF8.self))
    } else {
        print(String(decoding: data, as: UTF8.self))
    }
}

/// A plain text table: columns padded to their widest cell.
func printTable(_ header: [String], _ rows: [[String]]) {
    let widths = header.indices.map { i in ([header[i]] + rows.map { i < $0.count ? $0[i] : "" }).map(\.count).max() ?? 0 }
    func line(_ cells: [String]) -> String {
        cells.enumerated().map { i, c in i == cells.count - 1 ? c : c.padding(toLength: widths[i], withPad: " ", startingAt: 0) }
            .joined(separator: "  ")
    }
    print(line(header))
    for row in rows { print(line(row)) }
    if rows.isEmpty { print("(none)") }
}

func formatTime(_ ms: Int64) -> String {
    guard ms > 0 else { return "-" }
    let formatter = DateFormatter()
    formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
    formatter.timeZone = TimeZone(identifier: "UTC")
    return formatter.string(from: Date(timeIntervalSince1970: Double(ms) / 1000)) + "Z"
}

func formatBytes(_ bytes: UInt64) -> String {
    let gib = Double(bytes) / 1_073_741_824
    return gib >= 1 ? String(format: "%.1f GiB", gib) : String(format: "%.0f MiB", Double(bytes) / 1_048_576)
}

func readFile(_ path: String) throws -> String {
    if path == "-" {
        return String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
    }
    guard let data = FileManager.default.contents(atPath: path) else { throw ValidationError("cannot read \(path)") }
    return String(decoding: data, as: UTF8.self)
}
