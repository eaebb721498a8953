extension NATSOptions {
    /// `url` fit for a log line or an error message: a password in it becomes `***` (`nats://user:***@host:4222`),
    /// and a bare token in the user part (`nats://s3cr3t@host:4222`, how NATS URLs carry tokens) becomes `***` whole.
    public static func redacted(_ url: String) -> String {
        let separator = "://"
        guard let start = url.indices.first(where: { url[$0...].hasPrefix(separator) }) else { return url }
        let authorityStart = url.index(start, offsetBy: separator.count)
        let authorityEnd = url[authorityStart...].firstIndex(of: "/") ?? url.endIndex
        guard let at = url[authorityStart..<authorityEnd].lastIndex(of: "@") else { return url }
        let userInfo = url[authorityStart..<at]
        let shown = userInfo.firstIndex(of: ":").map { "\(userInfo[..<$0]):***" } ?? "***"
        return String(url[..<authorityStart]) + shown + String(url[at...])
    }

    /// Every server URL, redacted, comma-separated.
    public static func redacted(servers: [String]) -> String { servers.map { redacted($0) }.joined(separator: ",") }
}
