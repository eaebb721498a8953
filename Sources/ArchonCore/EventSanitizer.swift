public import ArchonModel

/// The boundary check for agent events: the controller shell passes every decoded event through
/// ``sanitize(_:at:)`` before the core sees it, and logs and counts each problem it reports.
///
/// Every number on the wire is untrusted: NaN, ±infinity, 1e300, negatives and the integer bounds all arrive
/// (from buggy trainers as much as from hostile ones). The core itself does not trap on any of them (it saturates,
/// see `Saturating.swift`), but it would still judge a job on a nonsense value; this check turns each one into
/// something the core can judge on, and says what it changed. Per field class:
///
/// - **Losses** (`epoch.loss`, `epoch.validation.loss`, `step.loss`): kept exactly as sent. NaN and ±infinity are
///   how a trainer reports a diverging run, and the divergence detector relies on them.
/// - **Durations** (`epoch.durationSeconds`, `heartbeat.secondsSinceProgress`, `exited.runtimeSeconds`): must be
///   finite and within 0...10,000,000 s (about 115 days); otherwise 0, which means unknown. Not clamped to the
///   bound: a duration drives timeout and hang findings, and the core measures those on its own clock anyway,
///   so a garbage duration must never fail a job.
/// - **Gauges** (`resources.cpuCores` 0...100,000 cores; `resources.gpuUtilization`, `nodeStatus.usage.cpuUtilization`,
///   `nodeStatus.usage.gpuUtilization`, `epoch.validation.accuracy` 0...1; `step.samplesPerSecond`
///   0...1,000,000,000): NaN and ±infinity become 0 (unknown); a finite value out of range is clamped to the
///   nearest bound (a utilization of 1.02 is sampling jitter of a busy device, not garbage).
/// - **Learning rates** (`epoch.learningRate`, `step.learningRate`): shown to operators only; NaN, ±infinity and
///   negatives become 0 (unknown). Any finite non-negative value is kept, however large: a schedule can blow up.
/// - **Counts and indices** (epochs, steps, `totalEpochs`, `epochsCompleted`, `attempt`, running-job counts,
///   `nodeStatus.capacity.cpuCores` (also at most 100,000), GPU indices, `started.pid`): a negative value becomes 0.
/// - **Times**: a `timeMs` before 1970 or more than an hour after `now` becomes `now`. Not 0: the core orders node
///   statuses by it, so 0 would drop the node's status (and `Int64.max` would freeze it forever); for job events
///   the core reads an unknown time as `now` anyway. A `timeMs` of 0 (none sent) is kept. `nodeStatus.startedAtMs`
///   outside the same window becomes 0 (unknown).
/// - **Kept as sent**: byte counts (`UInt64`: the core's sums saturate, and a byte count too large for its node
///   is the resource-pressure evidence the core looks for), `sequence` and `fencingEpoch` (identifiers; the core
///   handles any value), and `exitCode`/`signal` (any non-zero value means the process failed, which is what the
///   core judges).
public enum EventSanitizer {
    /// Longest duration believed, in seconds.
    public static let maxDurationSeconds = 10_000_000.0
    /// Most CPU cores believed for a job or a node.
    public static let maxCPUCores = 100_000
    /// Highest training throughput believed, in samples per second.
    public static let maxSamplesPerSecond = 1_000_000_000.0
    /// How far ahead of the controller an agent's clock may be, in milliseconds.
    public static let maxClockAheadMs: Int64 = 3_600_000

    /// `event` with every number the core cannot judge on replaced, and one reason per replaced field, e.g.
    /// "epoch.durationSeconds is nan; treated as unknown (0)". An event that needs no change comes back unchanged,
    /// with no problems.
    /// Longest free text of an agent's report that reaches an incident.
    public static let maxTextCharacters = 2000

    public static func sanitize(_ event: TrainingEvent, at now: Int64) -> (event: TrainingEvent, problems: [String]) {
        var check = Check(now: now)
        var event = event
        check.count(&event.attempt, "attempt")
        check.eventTime(&event.timeMs, "timeMs")
        switch event.body {
        case .accepted:
            break
        case .started(var started):
            check.count(&started.pid, "started.pid")
            event.body = .started(started)
        case .epoch(var m):
            check.count(&m.epoch, "epoch.epoch")
            check.count(&m.totalEpochs, "epoch.totalEpochs")
            check.learningRate(&m.learningRate, "epoch.learningRate")
            check.duration(&m.durationSeconds, "epoch.durationSeconds")
            check.count(&m.step, "epoch.step")
            if var validation = m.validation {
                check.gauge(&validation.accuracy, "epoch.validation.accuracy", max: 1)
                m.validation = validation
            }
            event.body = .epoch(m)
        case .step(var step):
            check.count(&step.step, "step.step")
            check.count(&step.epoch, "step.epoch")
            check.learningRate(&step.learningRate, "step.learningRate")
            check.gauge(&step.samplesPerSecond, "step.samplesPerSecond", max: maxSamplesPerSecond)
            event.body = .step(step)
        case .checkpoint(var written):
            check.count(&written.epoch, "checkpoint.epoch")
            check.count(&written.step, "checkpoint.step")
            event.body = .checkpoint(written)
        case .resources(var sample):
            check.gauge(&sample.cpuCores, "resources.cpuCores", max: Double(maxCPUCores))
            check.gauge(&sample.gpuUtilization, "resources.gpuUtilization", max: 1)
            event.body = .resources(sample)
        case .exited(var exit):
            check.duration(&exit.runtimeSeconds, "exited.runtimeSeconds")
            check.count(&exit.epochsCompleted, "exited.epochsCompleted")
            event.body = .exited(exit)
        case .heartbeat(var beat):
            check.count(&beat.runningJobs, "heartbeat.runningJobs")
            check.duration(&beat.secondsSinceProgress, "heartbeat.secondsSinceProgress")
            event.body = .heartbeat(beat)
        case .nodeStatus(var status):
            check.count(&status.capacity.cpuCores, "nodeStatus.capacity.cpuCores", max: maxCPUCores)
            for i in status.capacity.gpus.indices {
                check.count(&status.capacity.gpus[i].index, "nodeStatus.capacity.gpus[\(i)].index")
            }
            check.gauge(&status.usage.cpuUtilization, "nodeStatus.usage.cpuUtilization", max: 1)
            check.gauge(&status.usage.gpuUtilization, "nodeStatus.usage.gpuUtilization", max: 1)
            check.count(&status.usage.runningJobs, "nodeStatus.usage.runningJobs")
            check.startTime(&status.startedAtMs, "nodeStatus.startedAtMs")
            event.body = .nodeStatus(status)
        case .securityAlert(var alert):
            check.text(&alert.detail, "securityAlert.detail")
            check.text(&alert.subject, "securityAlert.subject")
            event.body = .securityAlert(alert)
        }
        return (event, check.problems)
    }

    /// Applies one rule per field and collects the reasons.
    private struct Check {
        let now: Int64
        var problems: [String] = []

        /// Text that goes into an incident verbatim: at most ``maxTextCharacters`` characters.
        mutating func text(_ value: inout String, _ field: String) {
            guard value.count > EventSanitizer.maxTextCharacters else { return }
            problems.append("\(field) has \(value.count) characters; kept the first \(EventSanitizer.maxTextCharacters)")
            value = String(value.prefix(EventSanitizer.maxTextCharacters))
        }

        mutating func duration(_ value: inout Double, _ field: String) {
            let why: String
            if value.isNaN {
                why = "is nan"
            } else if value < 0 {
                why = "is \(value), negative"
            } else if value > EventSanitizer.maxDurationSeconds {
                why = "is \(value), beyond \(EventSanitizer.maxDurationSeconds.compact) s"
            } else {
                return
            }
            problems.append("\(field) \(why); treated as unknown (0)")
            value = 0
        }

        mutating func gauge(_ value: inout Double, _ field: String, max: Double) {
            if !value.isFinite {
                problems.append("\(field) is \(value); treated as unknown (0)")
                value = 0
            } else if value < 0 || value > max {
                let clamped = Swift.min(Swift.max(value, 0), max)
                problems.append("\(field) is \(value), outside 0...\(max.compact); clamped to \(clamped.compact)")
                value = clamped
            }
        }

        mutating func learningRate(_ value: inout Double, _ field: String) {
            guard !value.isFinite || value < 0 else { return }
            problems.append("\(field) is \(value)\(value.isFinite ? ", negative" : ""); treated as unknown (0)")
            value = 0
        }

        mutating func count<Count: FixedWidthInteger & SignedInteger>(_ value: inout Count, _ field: String, max: Count = .max) {
            if value < 0 {
                problems.append("\(field) is \(value), negative; clamped to 0")
                value = 0
            } else if value > max {
                problems.append("\(field) is \(value), above \(max); clamped to \(max)")
                value = max
            }
        }

        /// Before 1970 or more than ``EventSanitizer/maxClockAheadMs`` ahead of `now`: why, or nil when plausible.
        func absurdity(_ timeMs: Int64) -> String? {
            if timeMs < 0 { return "before 1970" }
            guard timeMs > now.addingSaturated(EventSanitizer.maxClockAheadMs) else { return nil }
            return "more than \(Timestamp.duration(EventSanitizer.maxClockAheadMs)) after the controller's time \(Timestamp.iso8601(now))"
        }

        mutating func eventTime(_ value: inout Int64, _ field: String) {
            guard let why = absurdity(value) else { return }
            problems.append("\(field) is \(value), \(why); treated as the controller's time")
            value = now
        }

        mutating func startTime(_ value: inout Int64, _ field: String) {
            guard let why = absurdity(value) else { return }
            problems.append("\(field) is \(value), \(why); treated as unknown (0)")
            value = 0
        }
    }
}
