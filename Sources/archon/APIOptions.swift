import ArchonController
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

    var client: ControllerClient {
        let env = ProcessInfo.processInfo.environment
        return ControllerClient(base: api ?? env["ARCHON_API"] ?? "http://127.0.0.1:8080", token: token ?? env["ARCHON_TOKEN"] ?? "")
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
