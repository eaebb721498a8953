import ArchonCore
import ArchonModel
import ArchonNATS
import ArchonWire
import Logging
import Synchronization

/// Reads one job's events back from `ARCHON_EVENTS` (subjects `archon.v1.events.*.<job>`) into a ``LossCurve``:
/// the history first, then what arrives, for as long as a page follows it. The stream is the record, so this works on
/// a standby and after a restart alike, and the controller's state holds no curve. An event is believed only when
/// its subject's node, the node in the event and the node the attempt ran on agree.
final class JobCurveReader: Sendable {
    let jobID: String
    private let controller: Controller
    private let state = Mutex<LossCurve>(LossCurve())
    private let replay = Mutex<StreamReplay?>(nil)

    init(jobID: String, controller: Controller) {
        self.jobID = jobID
        self.controller = controller
    }

    var curve: LossCurve { state.withLock { $0 } }

    func update(_ job: JobRecord) {
        state.withLock { $0.update(job: job) }
    }

    /// Follows the job's events until ``stop()``; returns at once when they cannot be read (no NATS).
    /// `caughtUp` runs once the history has been read.
    func follow(caughtUp: @Sendable () -> Void = {}) async {
        if let job = await controller.job(jobID) { update(job) }
        let replay: StreamReplay
        do {
            replay = try await controller.jobEvents(jobID)
        } catch {
            controller.logger.warning("dashboard.events_unreadable", metadata: ["job.id": "\(jobID)", "error": "\(error)"])
            caughtUp()
            return
        }
        self.replay.withLock { $0 = replay }
        if Task.isCancelled { replay.stop() }
        for await event in replay {
            switch event {
            case .caughtUp:
                caughtUp()
            case .message(let message):
                guard let decoded = Self.event(message, job: jobID) else { continue }
                let known = state.withLock { $0.knows(attempt: decoded.attempt) }
                if !known, let job = await controller.job(jobID) { update(job) }  // a newer attempt than we have seen
                state.withLock { _ = $0.add(decoded) }
            }
        }
    }

    func stop() {
        replay.withLock { $0?.stop() }
    }

    /// The event in `message` when it is one of this job's and its subject names the node it claims.
    static func event(_ message: NATSMessage, job: String) -> TrainingEvent? {
        guard let tokens = Fleet.eventsSubjectTokens(message.subject), tokens.job == job,
              let event = try? TrainingEvent.decode(message.payload), event.jobID == job, event.nodeID == tokens.node else { return nil }
        return event
    }

    /// The curve of a job's history as stored now, for a page's first rendering: read until caught up, at most
    /// `limit` long (what was read by then is drawn; the live stream completes it).
    static func curve(of job: JobRecord, controller: Controller, limit: Duration = .seconds(5)) async -> LossCurve {
        let reader = JobCurveReader(jobID: job.spec.id, controller: controller)
        reader.update(job)
        let (done, signal) = AsyncStream.makeStream(of: Void.self)
        let follow = Task { await reader.follow { signal.yield() }; signal.finish() }
        let timeout = Task { try? await Task.sleep(for: limit); signal.finish() }
        for await _ in done { break }
        follow.cancel()  // before stop(): a replay that starts after stop() sees the cancellation
        reader.stop()
        timeout.cancel()
        return reader.curve
    }
}
