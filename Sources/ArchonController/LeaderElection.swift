public import ArchonNATS
import Foundation
public import Logging

/// Who leads the controllers, through one key in KV `archon_leader` updated by compare-and-set.
///
/// The leader rewrites the key every `leaseTime / 3`. A standby that sees no new revision for a whole
/// `leaseTime` (measured on its own monotonic clock: no cross-machine clock comparison) takes the key
/// over with a compare-and-set against the revision it saw; if the leader renewed meanwhile, it loses.
/// The revision of the write that won leadership is the **fencing epoch**: it goes into every
/// assignment, and agents ignore assignments with an older epoch than the newest they have seen.
/// A leader that cannot renew within `leaseTime` steps down on its own.
public actor LeaderElection {
    public enum Role: Sendable, Equatable {
        case leader(fencingEpoch: UInt64)
        case standby(leader: String?)
    }

    public static let key = "lease"

    private let kv: KeyValue
    public let id: String
    public let leaseTime: Duration
    private let logger: Logger
    private(set) public var role: Role = .standby(leader: nil)
    private var observedRevision: UInt64 = 0
    private var observedAt = ContinuousClock.now
    private var lastRenewal = ContinuousClock.now
    private var roleChanges: AsyncStream<Role>.Continuation?

    public init(kv: KeyValue, id: String, leaseTime: Duration, logger: Logger) {
        self.kv = kv
        self.id = id
        self.leaseTime = leaseTime
        self.logger = logger
    }

    /// Every change of role, starting with the first one decided.
    public func changes() -> AsyncStream<Role> {
        let (stream, continuation) = AsyncStream.makeStream(of: Role.self, bufferingPolicy: .bufferingNewest(16))
        roleChanges = continuation
        return stream
    }

    /// Campaigns and renews until cancelled; then gives the lease up so a standby takes over at once.
    public func run() async {
        while !Task.isCancelled {
            await step()
            try? await Task.sleep(for: leaseTime / 3)
        }
        await resign()
    }

    /// One round of the election: renew, or take over an expired or absent lease.
    ///
    /// The leader renews against the revision of its own last write, without reading the key first: on a cluster a
    /// read may be answered by a replica that lags (a server just restarted), and a renewal against the stale
    /// revision it returns fails as if someone else had taken the lease — the leader then stepped down for nothing,
    /// again and again while that replica caught up (found by `make chaos`). Only a write by someone else since its
    /// own makes the renewal fail.
    public func step() async {
        let now = ContinuousClock.now
        if case .leader = role {
            do {
                observedRevision = try await kv.update(Self.key, Array(id.utf8), expectedRevision: observedRevision)
                lastRenewal = now
            } catch where error.code == .wrongRevision {
                // Someone else wrote after us: they lead (the read says who, or nobody if it lags).
                let entry = try? await kv.get(Self.key)
                become(.standby(leader: entry.map { String(decoding: $0.value, as: UTF8.self) }), revision: entry?.revision ?? observedRevision)
            } catch {
                logger.warning("controller.leader.kv_failed", metadata: ["error": "\(error)"])
            }
            if case .leader = role, now - lastRenewal >= leaseTime {
                logger.error("controller.leader.lost", metadata: ["reason": "could not renew the lease in time"])
                become(.standby(leader: nil), revision: observedRevision)
            }
            return
        }
        do {
            let entry = try await kv.get(Self.key)
            let holder = entry.map { String(decoding: $0.value, as: UTF8.self) }
            switch entry {
            case nil:
                let revision = try await kv.create(Self.key, Array(id.utf8))
                become(.leader(fencingEpoch: revision), revision: revision)
            case let entry?:
                if entry.revision != observedRevision {
                    observedRevision = entry.revision
                    observedAt = now
                }
                if case .standby(let known) = role, known != holder {
                    become(.standby(leader: holder), revision: entry.revision)
                }
                if now - observedAt >= leaseTime {
                    logger.warning("controller.leader.takeover", metadata: ["leader.previous": "\(holder ?? "-")"])
                    let revision = try await kv.update(Self.key, Array(id.utf8), expectedRevision: entry.revision)
                    become(.leader(fencingEpoch: revision), revision: revision)
                }
            }
        } catch where error.code == .wrongRevision {
            // Someone else wrote first (or the revision read was a lagging replica's): they lead, or will say so.
        } catch {
            logger.warning("controller.leader.kv_failed", metadata: ["error": "\(error)"])
        }
    }

    /// Gives the lease up (deletes the key) if we hold it.
    public func resign() async {
        guard case .leader = role else { return }
        try? await kv.delete(Self.key)
        become(.standby(leader: nil), revision: 0)
    }

    private func become(_ newRole: Role, revision: UInt64) {
        observedRevision = revision
        observedAt = ContinuousClock.now
        lastRenewal = ContinuousClock.now
        guard newRole != role else { return }
        role = newRole
        switch newRole {
        case .leader(let epoch): logger.notice("controller.leader.acquired", metadata: ["leader.epoch": "\(epoch)"])
        case .standby(let leader): logger.notice("controller.leader.standby", metadata: ["leader.current": "\(leader ?? "-")"])
        }
        roleChanges?.yield(newRole)
    }
}
