import Foundation
import Synchronization

/// The node's lease, as the shims read it: the CLOCK_MONOTONIC time (ms) of the agent's last contact with NATS
/// (a JetStream acknowledgement), in `<work-dir>/lease`.
///
/// Each trainer's shim fences its trainer (SIGTERM, grace, SIGKILL) once the lease is older than the fence window:
/// an agent that is frozen (SIGSTOP, a stuck kernel call) or cut off from NATS cannot renew it, and the controller,
/// hearing nothing from the node, runs its jobs elsewhere after `detection.nodeSilence`. The window must end, grace
/// included, before that deadline: then no instant sees two live copies of one job.
public struct NodeLease: Sendable {
    public let path: String

    public init(workDirectory: String) {
        path = "\(workDirectory)/lease"
    }

    /// CLOCK_MONOTONIC in milliseconds: the clock the shims compare the lease against (wall-clock steps and
    /// NTP slews never fence a job).
    public static func monotonicMs() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }

    /// Records contact at `ms`, written whole (atomically, as the agent's other state files), so a shim never reads
    /// half a number.
    public func renew(at ms: Int64 = NodeLease.monotonicMs()) {
        try? Data("\(ms)\n".utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
    }
}

/// Renews a lease on every contact, writing at most twice a second; safe from any thread.
final class LeaseRenewer: Sendable {
    let lease: NodeLease
    private let lastWritten = Mutex<Int64>(0)

    init(_ lease: NodeLease) {
        self.lease = lease
    }

    func renewIfDue() {
        let now = NodeLease.monotonicMs()
        let due = lastWritten.withLock { last -> Bool in
            guard now - last >= 500 else { return false }
            last = now
            return true
        }
        if due { lease.renew(at: now) }
    }
}
