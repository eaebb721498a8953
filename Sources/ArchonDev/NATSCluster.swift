import Foundation

/// The shipped 3-server cluster (`deploy/nats/cluster/nats-{1,2,3}.conf`) run on loopback, for `archon chaos`: only
/// the machine-specific parts change (ports, store, certificate folder, route hosts), TLS and authentication stay on.
///
/// Every route goes through a ``RouteProxy`` of its own (server i's route to server j), so that ``cut(_:)`` can
/// separate one server from its peers while its clients still reach it; the servers advertise no route address
/// (a closed port), so that gossip cannot open a route around the proxies.
public final class NATSCluster: @unchecked Sendable {
    public let servers: [NATSServer]
    /// `proxies[i][j]`: server i's route to server j (nil on the diagonal).
    private let proxies: [[RouteProxy?]]
    public let caFile: String

    /// Client URLs of all three, comma-separated, as every Archon process is given them.
    public var urls: String { servers.map(\.url).joined(separator: ",") }
    /// `nats-1`, `nats-2`, `nats-3`: the `server_name`s, as JetStream reports a stream's leader.
    public let names = ["nats-1", "nats-2", "nats-3"]

    /// Starts the three servers in `directory` (`nats-<n>/`, `tls/`), with `authorizationFile` beside each config.
    public init(directory: String, deploy: String, authorizationFile: String) throws {
        let tls = "\(directory)/tls"
        try LoopbackCertificates.make(in: tls)
        caFile = "\(tls)/ca.pem"
        let clientPorts = try (0..<3).map { _ in try freeLoopbackPort() }
        let routePorts = try (0..<3).map { _ in try freeLoopbackPort() }
        var proxies: [[RouteProxy?]] = []
        for i in 0..<3 {
            proxies.append(try (0..<3).map { j in i == j ? nil : try RouteProxy(target: routePorts[j]) })
        }
        self.proxies = proxies
        var servers: [NATSServer] = []
        for i in 0..<3 {
            let shipped = try String(contentsOfFile: "\(deploy)/cluster/nats-\(i + 1).conf", encoding: .utf8)
            let folder = URL(fileURLWithPath: "\(directory)/nats-\(i + 1)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try? FileManager.default.removeItem(atPath: "\(folder.path)/nats-auth.conf")
            try FileManager.default.copyItem(atPath: authorizationFile, toPath: "\(folder.path)/nats-auth.conf")
            var replacements = [
                ("http: 127.0.0.1:8222", ""),
                ("/etc/nats/tls/", "\(tls)/"),
                ("/var/lib/nats/jetstream", "\(folder.path)/jetstream"),
                ("listen: 0.0.0.0:6222", "listen: 127.0.0.1:\(routePorts[i])\n  advertise: \"127.0.0.1:1\""),
            ]
            for j in 0..<3 {
                let port = proxies[i][j]?.port ?? routePorts[j]
                replacements.append(("nats-route://nats-\(j + 1).internal:6222", "nats-route://127.0.0.1:\(port)"))
            }
            let text = try Self.replacing(shipped, replacements)
            let configuration = { @Sendable (port: Int, _: String) -> String in
                text.replacingOccurrences(of: "listen: 0.0.0.0:4222", with: "listen: 127.0.0.1:\(port)")
            }
            servers.append(try NATSServer(port: clientPorts[i], storeDirectory: folder, configuration: configuration))
        }
        self.servers = servers
    }

    deinit { stop() }

    /// Cuts server `index` from both peers (its routes, both ways); its clients still reach it.
    public func cut(_ index: Int) {
        for j in 0..<3 where j != index {
            proxies[index][j]?.cut()
            proxies[j][index]?.cut()
        }
    }

    /// Undoes ``cut(_:)``: the servers redial their routes on their own.
    public func heal(_ index: Int) {
        for j in 0..<3 where j != index {
            proxies[index][j]?.heal()
            proxies[j][index]?.heal()
        }
    }

    public func stop() {
        for server in servers { server.stop() }
        for row in proxies { for proxy in row { proxy?.stop() } }
    }

    /// `text` with each `(original, replacement)` applied; every original must be there (the shipped file changed
    /// shape otherwise, and what runs would no longer be what ships).
    public static func replacing(_ text: String, _ replacements: [(String, String)]) throws -> String {
        var text = text
        for (original, replacement) in replacements {
            guard text.contains(original) else { throw DevError("the shipped configuration no longer contains '\(original)'") }
            text = text.replacingOccurrences(of: original, with: replacement)
        }
        return text
    }
}

/// A CA, and a server certificate it signed for 127.0.0.1 and localhost: what an operator puts in /etc/nats/tls.
public enum LoopbackCertificates {
    public static func make(in folder: String) throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let extensions = "\(folder)/san.ext"
        try "subjectAltName=IP:127.0.0.1,DNS:localhost\n".write(toFile: extensions, atomically: true, encoding: .utf8)
        for arguments in [
            ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=archon test CA",
             "-keyout", "\(folder)/ca-key.pem", "-out", "\(folder)/ca.pem"],
            ["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
             "-keyout", "\(folder)/server-key.pem", "-out", "\(folder)/server.csr"],
            ["x509", "-req", "-in", "\(folder)/server.csr", "-CA", "\(folder)/ca.pem", "-CAkey", "\(folder)/ca-key.pem",
             "-CAcreateserial", "-days", "2", "-extfile", extensions, "-out", "\(folder)/server.pem"],
        ] {
            let process = Process()
            process.executableURL = try executable("openssl")
            process.arguments = arguments
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            process.waitUntilExit()
            guard process.terminationStatus == 0 else { throw DevError("openssl \(arguments[0]) failed") }
        }
    }
}
