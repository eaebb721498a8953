@_exported import ArchonDev
import Foundation

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
