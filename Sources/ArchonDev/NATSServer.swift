public import Foundation

/// A real `nats-server` with JetStream on a loopback port, for `archon dev` and for tests.
///
/// `stop()` and `start()` again keep the port and the store: that is a server restart.
public final class NATSServer: @unchecked Sendable {
    /// Fixed once `init` returns.
    public private(set) var port: Int
    public let storeDirectory: URL
    /// nats-server `authorization` block to run with (see ``FleetCredentials``); nil = no authentication.
    public let authorizationFile: String?
    /// A whole configuration of one's own (given the port and the store directory) instead of the generated one.
    public typealias Configuration = @Sendable (_ port: Int, _ storeDirectory: String) -> String
    private let configuration: Configuration?
    private let removeStoreOnExit: Bool
    private var process: Process?
    private let lock = NSLock()

    public var url: String { "nats://127.0.0.1:\(port)" }

    /// Starts a server on `port` (0 = a free one) with its JetStream store in `storeDirectory`
    /// (nil = a temporary folder, removed when this object goes); throws when `nats-server` is missing
    /// (saying how to install it) or does not come up. `configuration`, when given, is the server's whole
    /// configuration file (it is written to `server.conf` in the store directory, where `include`s resolve).
    public init(port: Int = 0, storeDirectory: URL? = nil, authorizationFile: String? = nil, configuration: Configuration? = nil) throws {
        self.port = port == 0 ? try freeLoopbackPort() : port
        self.authorizationFile = authorizationFile
        self.configuration = configuration
        removeStoreOnExit = storeDirectory == nil
        self.storeDirectory = storeDirectory
            ?? FileManager.default.temporaryDirectory.appendingPathComponent("archon-nats-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: self.storeDirectory, withIntermediateDirectories: true)
        // A free port can be taken by another test's server between the probe and the bind: try another.
        var attempts = 0
        while true {
            do {
                try start()
                return
            } catch let error as DevError where port == 0 && attempts < 5 && error.description.contains("address already in use") {
                attempts += 1
                self.port = try freeLoopbackPort()
            }
        }
    }

    deinit {
        stop()
        if removeStoreOnExit { try? FileManager.default.removeItem(at: storeDirectory) }
    }

    public func start() throws {
        lock.lock()
        defer { lock.unlock() }
        guard process == nil else { return }
        let p = Process()
        p.executableURL = try natsServerExecutable()
        try writeConfiguration()
        p.arguments = ["-c", configurationFile.path]
        let log = storeDirectory.appendingPathComponent("server.log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        p.standardOutput = handle
        p.standardError = handle
        try p.run()
        process = p
        // Ready when *this* process says so (a port that accepts connections may be another server's).
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            guard p.isRunning else { break }
            if ((try? String(contentsOf: log, encoding: .utf8)) ?? "").contains("Server is ready") { return }
            usleep(20_000)
        }
        if p.isRunning { p.terminate() }
        process = nil
        let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        throw DevError("nats-server did not start on port \(port): \(text.suffix(2000))")
    }

    /// The end of the server's log, for error messages.
    public var logTail: String { String(((try? String(contentsOf: logFile, encoding: .utf8)) ?? "").suffix(4000)) }

    private var configurationFile: URL { storeDirectory.appendingPathComponent("server.conf") }
    private var logFile: URL { storeDirectory.appendingPathComponent("server.log") }

    /// Loopback listener, JetStream in the store directory, and the authorization block inline (nats-server
    /// resolves `include` relative to the including file, so a copy is simpler than a path).
    private func writeConfiguration() throws {
        if let configuration {
            try Data(configuration(port, storeDirectory.path).utf8).write(to: configurationFile, options: .atomic)
            return
        }
        var text = """
            listen: 127.0.0.1:\(port)
            jetstream { store_dir: "\(storeDirectory.path)" }
            max_payload: 1MB

            """
        if let authorizationFile { text += try String(contentsOfFile: authorizationFile, encoding: .utf8) }
        try Data(text.utf8).write(to: configurationFile, options: .atomic)
    }

    /// Re-reads the authorization file (e.g. after ``FleetCredentials/add(nodes:)``) and waits until the
    /// server has applied it.
    public func reload() throws {
        lock.lock()
        defer { lock.unlock() }
        guard let p = process, p.isRunning else { return }
        try writeConfiguration()
        let reloads = { ((try? String(contentsOf: self.logFile, encoding: .utf8)) ?? "").components(separatedBy: "Reloaded server configuration").count }
        let before = reloads()
        kill(p.processIdentifier, SIGHUP)
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if reloads() > before { return }
            usleep(10_000)
        }
        throw DevError("nats-server did not reload its configuration within 10 s; see \(logFile.path)")
    }

    /// SIGKILL, and waits until it is gone: a crash, no goodbye to peers or clients. `start()` again restarts it.
    public func crash() {
        lock.lock()
        defer { lock.unlock() }
        guard let p = process else { return }
        process = nil
        kill(p.processIdentifier, SIGKILL)
        let deadline = Date().addingTimeInterval(5)
        while p.isRunning, Date() < deadline { usleep(10_000) }
    }

    /// Stops the server (SIGTERM, then waits). Idempotent.
    public func stop() {
        lock.lock()
        defer { lock.unlock() }
        guard let p = process else { return }
        process = nil
        guard p.isRunning else { return }
        p.terminate()
        // Bounded wait instead of waitUntilExit, which can block for good when Foundation's child monitor
        // misses the exit: SIGTERM, up to 5 s, then SIGKILL.
        let deadline = Date().addingTimeInterval(5)
        while p.isRunning, Date() < deadline { usleep(10_000) }
        if p.isRunning {
            kill(p.processIdentifier, SIGKILL)
            let killDeadline = Date().addingTimeInterval(2)
            while p.isRunning, Date() < killDeadline { usleep(10_000) }
        }
    }
}

public struct DevError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// The nats-server to run: `$ARCHON_NATS_SERVER` when set (how `make test-nats-current` runs the suites against a
/// current server), else the one in PATH.
public func natsServerExecutable() throws -> URL {
    if let path = ProcessInfo.processInfo.environment["ARCHON_NATS_SERVER"], !path.isEmpty {
        guard FileManager.default.isExecutableFile(atPath: path) else { throw DevError("ARCHON_NATS_SERVER=\(path) is not an executable") }
        return URL(fileURLWithPath: path)
    }
    return try executable("nats-server")
}

/// Looks a program up in PATH (and /usr/sbin, where Debian puts nats-server).
public func executable(_ name: String) throws -> URL {
    let path = (ProcessInfo.processInfo.environment["PATH"] ?? "") + ":/usr/sbin:/usr/local/sbin"
    for dir in path.split(separator: ":") {
        let candidate = URL(fileURLWithPath: String(dir)).appendingPathComponent(name)
        if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
    }
    throw DevError("\(name) not found in PATH: install it with `make deps`, or `apt-get install nats-server` on Debian/Ubuntu (https://docs.nats.io/running-a-nats-service/introduction/installation elsewhere)")
}

/// A TCP port that is free on 127.0.0.1 right now, below the kernel's ephemeral range: a port from that range can
/// become the local end of any outgoing connection the moment its listener closes, and a server restarted on it then
/// cannot bind (found by `make chaos`, seed 13: a nats-server's route port taken while it was down).
public func freeLoopbackPort() throws -> Int {
    let ephemeral = (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8))
        .flatMap { $0.split(whereSeparator: \.isWhitespace).first.flatMap { Int($0) } } ?? 32768
    let below = 10_000..<max(10_001, ephemeral)
    for _ in 0..<500 {
        let port = Int.random(in: below)
        if (try? bindLoopback(port: port)) != nil { return port }
    }
    return try bindLoopback(port: 0)
}

/// Binds a TCP socket to 127.0.0.1:`port` (0 = any) and closes it again; returns the port bound.
private func bindLoopback(port: Int) throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw DevError("socket() failed") }
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = UInt16(port).bigEndian
    let bound = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard bound == 0 else { throw DevError("bind() failed") }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    return Int(UInt16(bigEndian: addr.sin_port))
}
