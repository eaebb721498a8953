import ArchonCore
import Foundation

/// Building HTML by hand, safely: every text from the state (job names, log lines, reasons — all of it came from
/// the wire or an operator once) goes through ``escape(_:)``.
public enum HTML {
    public static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for c in text.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default:
                // Control characters (but tab and newline) have no business in a page.
                if c.value < 0x20 && c != "\n" && c != "\t" { out += "\u{FFFD}" } else { out.unicodeScalars.append(c) }
            }
        }
        return out
    }

    /// A whole page: the layout every dashboard page shares. `live` is the event-stream path the page follows.
    static func page(title: String, viewer: DashboardViewer, live: String?, body: String) -> String {
        """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
        <title>\(escape(title)) · Archon Fleet</title>
        <link rel="stylesheet" href="/ui/static/archon.css"><script src="/ui/static/archon.js" defer></script></head>
        <body\(live.map { " data-live=\"\(escape($0))\"" } ?? "")>
        <header><a class="brand" href="/ui/">Archon Fleet</a><span class="role" id="role">\(escape(viewer.role))</span>
        <span class="who">\(escape(viewer.name))\(viewer.canAct ? "" : " · read-only")</span><span class="live-state" id="live-state"></span>
        <form method="post" action="/ui/logout"><button class="link">Log out</button></form></header>
        <main>
        \(body)
        </main></body></html>
        """
    }

    static func time(_ ms: Int64) -> String {
        ms == 0 ? "–" : Timestamp.iso8601(ms).replacingOccurrences(of: "T", with: " ")
    }

    /// "12 s", "4 min", "3 h" ago.
    static func age(_ ms: Int64, now: Int64) -> String {
        guard ms > 0 else { return "never" }
        let s = max(0, now - ms) / 1000
        if s < 120 { return "\(s) s" }
        if s < 7200 { return "\(s / 60) min" }
        return "\(s / 3600) h"
    }

    static func bytes(_ b: UInt64) -> String { ByteCount.human(b) }

    static func percent(_ part: UInt64, of whole: UInt64) -> String {
        whole == 0 ? "–" : "\(Int((Double(part) / Double(whole) * 100).rounded())) %"
    }

    /// A table: header cells and rows of already-escaped cells.
    static func table(_ headers: [String], _ rows: [[String]], empty: String) -> String {
        guard !rows.isEmpty else { return "<p class=\"empty\">\(escape(empty))</p>" }
        var out = "<table><thead><tr>" + headers.map { "<th>\(escape($0))</th>" }.joined() + "</tr></thead><tbody>"
        for row in rows { out += "<tr>" + row.map { "<td>\($0)</td>" }.joined() + "</tr>" }
        return out + "</tbody></table>"
    }

    static func badge(_ text: String, _ kind: String) -> String {
        "<span class=\"badge \(escape(kind))\">\(escape(text))</span>"
    }
}

/// Who looks at the dashboard: the token's name, whether it may press the buttons, and the controller's role.
public struct DashboardViewer: Sendable {
    public var name: String
    public var canAct: Bool
    public var canReadDatasets: Bool
    public var role: String

    public init(name: String, canAct: Bool, canReadDatasets: Bool, role: String) {
        self.name = name
        self.canAct = canAct
        self.canReadDatasets = canReadDatasets
        self.role = role
    }
}
