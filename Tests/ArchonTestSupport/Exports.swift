@_exported import ArchonDev
public import ArchonNATS
import Foundation
public import Logging

/// A test's own client of `server`, connected as a test's first step. nats.c 3.4 sends an empty NKey signature when
/// the signature's first byte is 0 — one connect in 256, measured: the server then refuses it ("authentication error
/// - Nkey U…") and accepts the next try, with a new nonce. The daemons retry every connect anyway, so a test does
/// too, three times, and a final failure carries the server's log.
public func connectTestClient(_ options: NATSOptions, to server: NATSServer, logger: Logger) async throws -> NATSConnection {
    var attempt = 1
    while true {
        do {
            return try await NATSConnection.connect(options, logger: logger)
        } catch where attempt < 3 {
            logger.warning("test.connect.retrying", metadata: ["error": "\(error)", "nats.server_log": "\(server.logTail.suffix(1500))"])
            attempt += 1
            try await Task.sleep(for: .milliseconds(200))
        } catch {
            throw DevError("\(error)\nnats-server's log:\n\(server.logTail)")
        }
    }
}

/// Polls `condition` until it holds or `timeout` passes — for waiting on real servers and processes,
/// never as a stand-in for a measurement.
public func eventually(timeout: Duration = .seconds(10), _ condition: () async throws -> Bool) async rethrows -> Bool {
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    while clock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return try await condition()
}

/// Connects, retrying twice, and rethrows the last error unchanged: for tests that expect some connections to be
/// refused (their error type checked) and others to succeed despite nats.c 3.4's 1-in-256 empty NKey signature.
public func connectRetryingRefusals(_ options: NATSOptions, logger: Logger) async throws -> NATSConnection {
    var last: (any Error)?
    for _ in 1...3 {
        do {
            return try await NATSConnection.connect(options, logger: logger)
        } catch {
            last = error
            try await Task.sleep(for: .milliseconds(100))
        }
    }
    throw last!
}
