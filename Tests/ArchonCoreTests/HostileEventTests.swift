import ArchonModel
import PropertyBased
import Testing

@testable import ArchonCore

/// Every number an agent sends is untrusted. A number the core traps on is a poison event: never acknowledged,
/// redelivered to every restarted controller, which dies on it again. The core must survive any value (these
/// tests drive it without the sanitizer), and ``EventSanitizer`` must turn each one into something to judge on.
@Suite struct HostileEventTests {
    static let doubles: [Double] = [.nan, .infinity, -.infinity, .greatestFiniteMagnitude, -.greatestFiniteMagnitude, 1e300, -1, 0]
    static let ints: [Int] = [0, -1, .max, .min]
    static let int32s: [Int32] = [0, -1, .max, .min]
    static let int64s: [Int64] = [0, -1, .max, .min]
    static let byteCounts: [UInt64] = [0, 1, .max]
    static let sha = String(repeating: "ab", count: 32)

    // Well-formed bodies: each hostile case changes one number of one of them.
    static let started = JobStarted(pid: 100, memoryLimitBytes: 8 * gib)
    static let epoch = EpochMetrics(
        epoch: 2, totalEpochs: 10, loss: 0.9, learningRate: 0.01, durationSeconds: 60, step: 200,
        validation: Validation(loss: 1.0, accuracy: 0.5))
    static let step = StepProgress(step: 250, epoch: 3, loss: 0.85, learningRate: 0.01, samplesPerSecond: 1000)
    static let checkpoint = CheckpointWritten(path: "/ckpt/job-1/e2", epoch: 2, step: 200, sizeBytes: gib, sha256: sha)
    static let resources = ResourceSample(
        memoryUsedBytes: 2 * gib, memoryLimitBytes: 8 * gib, cpuCores: 2, gpuMemoryUsedBytes: 10 * gib, gpuMemoryTotalBytes: 40 * gib,
        gpuUtilization: 0.5, diskUsedBytes: 10 * gib, diskTotalBytes: 1000 * gib)
    static let exited = JobExited(exitCode: 1, runtimeSeconds: 120, epochsCompleted: 1)
    static let heartbeat = Heartbeat(runningJobs: 1, secondsSinceProgress: 5)
    static let nodeStatus = NodeStatus(
        nodeID: "n1", hostname: "n1",
        capacity: NodeCapacity(
            cpuCores: 16, memoryBytes: 64 * gib,
            gpus: [GPU(index: 0, name: "A100", gpuClass: "a100-40gb", memoryBytes: 40 * gib), GPU(index: 1, name: "A100", gpuClass: "a100-40gb", memoryBytes: 40 * gib)],
            diskBytes: 1000 * gib),
        usage: NodeUsage(
            memoryReservedBytes: 8 * gib, memoryUsedBytes: 4 * gib, cpuUtilization: 0.2, gpuMemoryUsedBytes: 10 * gib,
            gpuUtilization: 0.5, diskUsedBytes: 10 * gib, runningJobs: 1),
        startedAtMs: t0)

    /// An event that differs from a well-formed one in a single number.
    struct Hostile: Sendable, CustomStringConvertible {
        var field: String
        var value: String
        var body: TrainingEvent.Body
        var attempt: Int?
        var sequence: UInt64?
        var timeMs: Int64?

        var description: String { "\(field) = \(value)" }
    }

    static func vary<Root, Value>(
        _ field: String, _ root: Root, _ path: WritableKeyPath<Root, Value>, _ values: [Value], _ wrap: (Root) -> TrainingEvent.Body
    ) -> [Hostile] {
        values.map { value in
            var changed = root
            changed[keyPath: path] = value
            return Hostile(field: field, value: "\(value)", body: wrap(changed))
        }
    }

    /// Every numeric field of every body, and of the envelope, through every hostile value of its type.
    static var cases: [Hostile] {
        typealias Body = TrainingEvent.Body
        var all: [Hostile] = []
        all += vary("accepted.fencingEpoch", JobAccepted(fencingEpoch: 0), \.fencingEpoch, byteCounts, Body.accepted)
        all += vary("started.pid", started, \.pid, int32s, Body.started)
        all += vary("started.memoryLimitBytes", started, \.memoryLimitBytes, byteCounts, Body.started)
        let epochDoubles: [(String, WritableKeyPath<EpochMetrics, Double>)] = [
            ("loss", \.loss), ("learningRate", \.learningRate), ("durationSeconds", \.durationSeconds),
            ("validation.loss", \.validation!.loss), ("validation.accuracy", \.validation!.accuracy),
        ]
        for (name, path) in epochDoubles { all += vary("epoch.\(name)", epoch, path, doubles, Body.epoch) }
        let epochInts: [(String, WritableKeyPath<EpochMetrics, Int>)] = [("epoch", \.epoch), ("totalEpochs", \.totalEpochs), ("step", \.step)]
        for (name, path) in epochInts { all += vary("epoch.\(name)", epoch, path, ints, Body.epoch) }
        let stepDoubles: [(String, WritableKeyPath<StepProgress, Double>)] = [("loss", \.loss), ("learningRate", \.learningRate), ("samplesPerSecond", \.samplesPerSecond)]
        for (name, path) in stepDoubles { all += vary("step.\(name)", step, path, doubles, Body.step) }
        let stepInts: [(String, WritableKeyPath<StepProgress, Int>)] = [("step", \.step), ("epoch", \.epoch)]
        for (name, path) in stepInts { all += vary("step.\(name)", step, path, ints, Body.step) }
        all += vary("checkpoint.epoch", checkpoint, \.epoch, ints, Body.checkpoint)
        all += vary("checkpoint.step", checkpoint, \.step, ints, Body.checkpoint)
        all += vary("checkpoint.sizeBytes", checkpoint, \.sizeBytes, byteCounts, Body.checkpoint)
        let resourceDoubles: [(String, WritableKeyPath<ResourceSample, Double>)] = [("cpuCores", \.cpuCores), ("gpuUtilization", \.gpuUtilization)]
        for (name, path) in resourceDoubles { all += vary("resources.\(name)", resources, path, doubles, Body.resources) }
        let resourceBytes: [(String, WritableKeyPath<ResourceSample, UInt64>)] = [
            ("memoryUsedBytes", \.memoryUsedBytes), ("memoryLimitBytes", \.memoryLimitBytes), ("gpuMemoryUsedBytes", \.gpuMemoryUsedBytes),
            ("gpuMemoryTotalBytes", \.gpuMemoryTotalBytes), ("diskUsedBytes", \.diskUsedBytes), ("diskTotalBytes", \.diskTotalBytes),
        ]
        for (name, path) in resourceBytes { all += vary("resources.\(name)", resources, path, byteCounts, Body.resources) }
        all += vary("exited.exitCode", exited, \.exitCode, int32s, Body.exited)
        all += vary("exited.signal", exited, \.signal, int32s, Body.exited)
        all += vary("exited.runtimeSeconds", exited, \.runtimeSeconds, doubles, Body.exited)
        all += vary("exited.epochsCompleted", exited, \.epochsCompleted, ints, Body.exited)
        all += vary("heartbeat.runningJobs", heartbeat, \.runningJobs, ints, Body.heartbeat)
        all += vary("heartbeat.secondsSinceProgress", heartbeat, \.secondsSinceProgress, doubles, Body.heartbeat)
        let statusInts: [(String, WritableKeyPath<NodeStatus, Int>)] = [
            ("capacity.cpuCores", \.capacity.cpuCores), ("capacity.gpus[0].index", \.capacity.gpus[0].index), ("usage.runningJobs", \.usage.runningJobs),
        ]
        for (name, path) in statusInts { all += vary("nodeStatus.\(name)", nodeStatus, path, ints, Body.nodeStatus) }
        let statusDoubles: [(String, WritableKeyPath<NodeStatus, Double>)] = [("usage.cpuUtilization", \.usage.cpuUtilization), ("usage.gpuUtilization", \.usage.gpuUtilization)]
        for (name, path) in statusDoubles { all += vary("nodeStatus.\(name)", nodeStatus, path, doubles, Body.nodeStatus) }
        // gpus[1] at UInt64.max: the node's GPU memory sums past the range.
        let statusBytes: [(String, WritableKeyPath<NodeStatus, UInt64>)] = [
            ("capacity.memoryBytes", \.capacity.memoryBytes), ("capacity.diskBytes", \.capacity.diskBytes), ("capacity.gpus[1].memoryBytes", \.capacity.gpus[1].memoryBytes),
            ("usage.memoryReservedBytes", \.usage.memoryReservedBytes), ("usage.memoryUsedBytes", \.usage.memoryUsedBytes),
            ("usage.gpuMemoryUsedBytes", \.usage.gpuMemoryUsedBytes), ("usage.diskUsedBytes", \.usage.diskUsedBytes),
        ]
        for (name, path) in statusBytes { all += vary("nodeStatus.\(name)", nodeStatus, path, byteCounts, Body.nodeStatus) }
        all += vary("nodeStatus.startedAtMs", nodeStatus, \.startedAtMs, int64s, Body.nodeStatus)

        all += ints.map { Hostile(field: "attempt", value: "\($0)", body: .heartbeat(heartbeat), attempt: $0) }
        all += ([0, 1, .max - 1, .max] as [UInt64]).map { Hostile(field: "sequence", value: "\($0)", body: .epoch(epoch), sequence: $0) }
        let timed: [(String, Body)] = [
            ("an exit", .exited(exited)), ("an hour's silence", .heartbeat(Heartbeat(runningJobs: 1, secondsSinceProgress: 3600))),
            ("a node status", .nodeStatus(nodeStatus)), ("a NaN loss", .epoch(EpochMetrics(epoch: 2, loss: .nan))),
        ]
        for (what, body) in timed {
            all += int64s.map { Hostile(field: "timeMs", value: "\($0) on \(what)", body: body, timeMs: $0) }
        }
        return all
    }

    /// job-1 runs on n1 and has reported epoch 1.
    static func runningFleet() -> Fleet {
        var fleet = Fleet(policy: .noBackoff)
        _ = fleet.submit(spec("job-1"))
        _ = fleet.start("job-1")
        fleet.advance(minute)
        _ = fleet.epoch("job-1", 1, loss: 1.0)
        return fleet
    }

    /// The hostile event, from n1, about job-1's attempt 1 unless it is node-wide.
    @discardableResult
    static func deliver(_ hostile: Hostile, to fleet: inout Fleet) -> [ControllerAction] {
        if case .nodeStatus = hostile.body {
            let event = TrainingEvent(jobID: "", nodeID: "n1", attempt: 0, sequence: 0, timeMs: hostile.timeMs ?? fleet.now, body: hostile.body)
            return fleet.controller.eventReceived(event, subjectNode: "n1", at: fleet.now)
        }
        if hostile.attempt == nil, hostile.sequence == nil, hostile.timeMs == nil { return fleet.send("job-1", hostile.body) }
        let event = TrainingEvent(
            jobID: "job-1", nodeID: "n1", attempt: hostile.attempt ?? 1, sequence: hostile.sequence ?? 1000,
            timeMs: hostile.timeMs ?? fleet.now, body: hostile.body)
        return fleet.controller.eventReceived(event, subjectNode: "n1", at: fleet.now)
    }

    /// Resolves every incident and renders its post-incident review (times formatted, durations subtracted).
    static func resolveAllAndReport(_ fleet: inout Fleet) throws {
        for incident in fleet.controller.incidents where fleet.controller.incident(incident.id)?.status != .resolved {
            _ = try fleet.controller.incidentResolved(incident.id, by: "ops", rootCause: "hostile numbers", at: fleet.now)
        }
        for incident in fleet.controller.incidents {
            let report = try #require(fleet.controller.postIncidentReport(incident.id))
            #expect(report.markdown.contains(incident.id))
        }
    }

    // MARK: - The core, without the sanitizer

    @Test func noNumberInAnyEventTrapsTheCore() throws {
        let cases = Self.cases
        #expect(cases.count > 200)
        for hostile in cases {
            // The trainer then diverges: that is judged as if the hostile number had never come.
            var fleet = Self.runningFleet()
            Self.deliver(hostile, to: &fleet)
            let job = try #require(fleet.controller.job("job-1"), "\(hostile)")
            if job.status == .running {
                let attempt = job.attempt
                fleet.advance(minute)
                _ = fleet.epoch("job-1", 3, loss: .nan)
                #expect(fleet.job("job-1").history.first { $0.attempt == attempt }?.symptom == .divergingLoss, "\(hostile)")
            }

            // Or it keeps stepping until its deadlines come: they fire on whatever the event left behind.
            fleet = Self.runningFleet()
            Self.deliver(hostile, to: &fleet)
            for _ in 0..<4 {
                fleet.advance(5 * minute)
                _ = fleet.send("job-1", .step(StepProgress(step: 300, epoch: 3, loss: 0.8)))
                _ = fleet.tick()
            }
            fleet.advance(3 * hour)
            _ = fleet.tick()
            try Self.resolveAllAndReport(&fleet)
            #expect(fleet.controller.job("job-1") != nil, "\(hostile)")
        }
    }

    @Test func anEpochDurationThatIsNotANumberIsNoTimeout() {
        for seconds: Double in [.nan, -1, -.infinity, -.greatestFiniteMagnitude] {
            var fleet = Self.runningFleet()
            fleet.advance(minute)
            #expect(decisions(fleet.epoch("job-1", 2, loss: 0.9, seconds: seconds)) == [], "\(seconds)")
            #expect(fleet.job("job-1").status == .running, "\(seconds)")
        }
    }

    @Test func aNonFiniteLossIsStillDivergence() {
        for loss in [Double.nan, .infinity, -.infinity] {
            let bodies: [TrainingEvent.Body] = [
                .epoch(EpochMetrics(epoch: 2, loss: loss, durationSeconds: .nan)),
                .epoch(EpochMetrics(epoch: 2, loss: 0.9, durationSeconds: .infinity, validation: Validation(loss: loss, accuracy: .nan))),
                .step(StepProgress(step: .max, epoch: .min, loss: loss, learningRate: .nan, samplesPerSecond: -.infinity)),
            ]
            for body in bodies {
                var fleet = Self.runningFleet()
                fleet.advance(minute)
                _ = fleet.send("job-1", body)
                #expect(fleet.job("job-1").history.first?.symptom == .divergingLoss, "\(body)")
            }
        }
    }

    @Test func aSilenceThatIsNotANumberIsNoHang() {
        for seconds: Double in [.nan, -1, -.infinity, -.greatestFiniteMagnitude] {
            var fleet = Self.runningFleet()
            #expect(decisions(fleet.send("job-1", .heartbeat(Heartbeat(runningJobs: 1, secondsSinceProgress: seconds)))) == [], "\(seconds)")
            #expect(fleet.job("job-1").status == .running, "\(seconds)")
        }
    }

    @Test func anEpochNumberAtTheTopOfTheRangeThenANaNLossDoesNotOverflowTheResumePoint() {
        var fleet = Self.runningFleet()
        fleet.advance(minute)
        _ = fleet.send("job-1", .epoch(EpochMetrics(epoch: .max, loss: 0.9)))
        fleet.advance(minute)
        _ = fleet.send("job-1", .epoch(EpochMetrics(epoch: .max, loss: .nan)))
        #expect(fleet.job("job-1").history.first?.symptom == .divergingLoss)
        #expect(fleet.job("job-1").attempt == 2)
    }

    @Test func sequenceNumbersAtTheTopOfTheRangeNeitherTrapNorRepeat() {
        var window = SequenceWindow()
        let top = (UInt64.max - 1100)...UInt64.max
        #expect(top.allSatisfy { window.insert($0) })
        let again = window.insert(.max)
        #expect(!again)
        #expect(window.contains(.max) && window.contains(.max - 1100))
    }

    @Test func saturatingHelpersStopAtTheBounds() {
        #expect(Int64(millisecondsSaturating: .nan) == 0)
        #expect(Int64(millisecondsSaturating: .infinity) == .max)
        #expect(Int64(millisecondsSaturating: -.greatestFiniteMagnitude) == .min)
        #expect(Int64(millisecondsSaturating: 2.5) == 2500)
        #expect(Int(saturating: 9.3e18) == .max)
        #expect(UInt64(saturating: -1) == 0)
        #expect(Int64.max.addingSaturated(1) == .max && Int64.min.addingSaturated(-1) == .min)
        #expect(Int64.min.subtractingSaturated(1) == .min && Int64.max.subtractingSaturated(-1) == .max)
        #expect(UInt64.max.addingSaturated(1) == .max && UInt64(0).subtractingSaturated(1) == 0)
        #expect(Int64(5).subtractingSaturated(7) == -2)
    }

    @Test func checkpointStepsAtTheEndsOfTheRangeDoNotOverflow() {
        let policy = CheckpointPolicy(everyEpochs: 0, everySteps: 100)
        #expect(CheckpointPlanner.isDue(policy, epoch: 1, step: .max, last: CheckpointRecord(path: "/c", epoch: 0, step: -1)))
        #expect(!CheckpointPlanner.isDue(policy, epoch: 1, step: .min, last: CheckpointRecord(path: "/c", epoch: 0, step: 1)))
    }

    @Test func aTimeAtTheBottomOfTheRangeIsStillWritten() {
        #expect(Timestamp.iso8601(.min).hasPrefix("-"))
        #expect(Timestamp.iso8601(t0) == "2026-01-01T00:00:00Z")
    }

    // MARK: - The sanitizer

    static func event(_ body: TrainingEvent.Body, timeMs: Int64 = t0, attempt: Int = 1) -> TrainingEvent {
        TrainingEvent(jobID: "job-1", nodeID: "n1", attempt: attempt, sequence: 7, timeMs: timeMs, body: body)
    }

    /// The sanitized body and the problems found in it.
    static func sanitized(_ body: TrainingEvent.Body) -> (TrainingEvent.Body, [String]) {
        let (clean, problems) = EventSanitizer.sanitize(event(body), at: t0)
        return (clean.body, problems)
    }

    @Test func wellFormedEventsPassUnchanged() {
        let bodies: [TrainingEvent.Body] = [
            .accepted(JobAccepted(fencingEpoch: 3)), .started(Self.started), .epoch(Self.epoch), .step(Self.step),
            .checkpoint(Self.checkpoint), .resources(Self.resources), .exited(Self.exited), .heartbeat(Self.heartbeat), .nodeStatus(Self.nodeStatus),
        ]
        for body in bodies {
            let (clean, problems) = EventSanitizer.sanitize(Self.event(body), at: t0)
            #expect(clean == Self.event(body))
            #expect(problems == [])
        }
    }

    @Test func lossesAreKeptEvenWhenNotFinite() {
        for loss in [Double.nan, .infinity, -.infinity, -1, 1e300] {
            let (epoch, epochProblems) = Self.sanitized(.epoch(EpochMetrics(epoch: 2, loss: loss, validation: Validation(loss: loss))))
            guard case .epoch(let m) = epoch else { Issue.record("not an epoch"); continue }
            #expect(m.loss.bitPattern == loss.bitPattern && m.validation?.loss.bitPattern == loss.bitPattern)
            #expect(epochProblems == [])
            let (step, stepProblems) = Self.sanitized(.step(StepProgress(step: 1, loss: loss)))
            guard case .step(let s) = step else { Issue.record("not a step"); continue }
            #expect(s.loss.bitPattern == loss.bitPattern)
            #expect(stepProblems == [])
        }
    }

    @Test func durationsOutOfRangeBecomeUnknown() {
        let table: [(TrainingEvent.Body, TrainingEvent.Body, String)] = [
            (.epoch(EpochMetrics(epoch: 2, loss: 0.9, durationSeconds: .nan)), .epoch(EpochMetrics(epoch: 2, loss: 0.9)),
             "epoch.durationSeconds is nan; treated as unknown (0)"),
            (.epoch(EpochMetrics(epoch: 2, loss: 0.9, durationSeconds: 1e300)), .epoch(EpochMetrics(epoch: 2, loss: 0.9)),
             "epoch.durationSeconds is 1e+300, beyond 10000000 s; treated as unknown (0)"),
            (.heartbeat(Heartbeat(secondsSinceProgress: .infinity)), .heartbeat(Heartbeat()),
             "heartbeat.secondsSinceProgress is inf, beyond 10000000 s; treated as unknown (0)"),
            (.heartbeat(Heartbeat(secondsSinceProgress: -1)), .heartbeat(Heartbeat()),
             "heartbeat.secondsSinceProgress is -1.0, negative; treated as unknown (0)"),
            (.exited(JobExited(exitCode: 1, runtimeSeconds: -.infinity)), .exited(JobExited(exitCode: 1)),
             "exited.runtimeSeconds is -inf, negative; treated as unknown (0)"),
        ]
        for (hostile, expected, reason) in table {
            let (clean, problems) = Self.sanitized(hostile)
            #expect(clean == expected)
            #expect(problems == [reason])
        }
        // The longest believed duration is kept: it is a real (if slow) epoch.
        #expect(Self.sanitized(.epoch(EpochMetrics(epoch: 2, loss: 0.9, durationSeconds: 1e7))).1 == [])
    }

    @Test func gaugesAreClampedOrUnknown() {
        var sample = Self.resources
        sample.cpuCores = .nan
        sample.gpuUtilization = 1.5
        var (clean, problems) = Self.sanitized(.resources(sample))
        sample.cpuCores = 0
        sample.gpuUtilization = 1
        #expect(clean == .resources(sample))
        #expect(problems == [
            "resources.cpuCores is nan; treated as unknown (0)",
            "resources.gpuUtilization is 1.5, outside 0...1; clamped to 1",
        ])

        var status = Self.nodeStatus
        status.usage.cpuUtilization = -0.25
        status.usage.gpuUtilization = .infinity
        (clean, problems) = Self.sanitized(.nodeStatus(status))
        status.usage.cpuUtilization = 0
        status.usage.gpuUtilization = 0
        #expect(clean == .nodeStatus(status))
        #expect(problems == [
            "nodeStatus.usage.cpuUtilization is -0.25, outside 0...1; clamped to 0",
            "nodeStatus.usage.gpuUtilization is inf; treated as unknown (0)",
        ])

        (clean, problems) = Self.sanitized(.step(StepProgress(step: 1, loss: 0.5, samplesPerSecond: 1e300)))
        #expect(clean == .step(StepProgress(step: 1, loss: 0.5, samplesPerSecond: 1e9)))
        #expect(problems == ["step.samplesPerSecond is 1e+300, outside 0...1000000000; clamped to 1000000000"])

        (clean, problems) = Self.sanitized(.epoch(EpochMetrics(epoch: 1, loss: 0.5, validation: Validation(loss: 0.6, accuracy: 87.5))))
        #expect(clean == .epoch(EpochMetrics(epoch: 1, loss: 0.5, validation: Validation(loss: 0.6, accuracy: 1))))
        #expect(problems == ["epoch.validation.accuracy is 87.5, outside 0...1; clamped to 1"])
    }

    @Test func learningRatesThatAreNotANumberBecomeUnknown() {
        var (clean, problems) = Self.sanitized(.epoch(EpochMetrics(epoch: 1, loss: 0.5, learningRate: .nan)))
        #expect(clean == .epoch(EpochMetrics(epoch: 1, loss: 0.5)))
        #expect(problems == ["epoch.learningRate is nan; treated as unknown (0)"])
        (clean, problems) = Self.sanitized(.step(StepProgress(step: 1, learningRate: -0.1)))
        #expect(clean == .step(StepProgress(step: 1)))
        #expect(problems == ["step.learningRate is -0.1, negative; treated as unknown (0)"])
        // A blown-up schedule is still a learning rate.
        #expect(Self.sanitized(.step(StepProgress(step: 1, learningRate: 1e300))).1 == [])
    }

    @Test func negativeCountsBecomeZero() {
        var (clean, problems) = Self.sanitized(.checkpoint(CheckpointWritten(path: "/c", epoch: -1, step: .min)))
        #expect(clean == .checkpoint(CheckpointWritten(path: "/c", epoch: 0, step: 0)))
        #expect(problems == [
            "checkpoint.epoch is -1, negative; clamped to 0",
            "checkpoint.step is \(Int.min), negative; clamped to 0",
        ])

        var status = Self.nodeStatus
        status.capacity.cpuCores = .max
        status.capacity.gpus[1].index = -3
        status.usage.runningJobs = -1
        (clean, problems) = Self.sanitized(.nodeStatus(status))
        status.capacity.cpuCores = 100_000
        status.capacity.gpus[1].index = 0
        status.usage.runningJobs = 0
        #expect(clean == .nodeStatus(status))
        #expect(problems == [
            "nodeStatus.capacity.cpuCores is \(Int.max), above 100000; clamped to 100000",
            "nodeStatus.capacity.gpus[1].index is -3, negative; clamped to 0",
            "nodeStatus.usage.runningJobs is -1, negative; clamped to 0",
        ])

        let (event, envelopeProblems) = EventSanitizer.sanitize(Self.event(.started(JobStarted(pid: -1)), attempt: -2), at: t0)
        #expect(event == Self.event(.started(JobStarted(pid: 0)), attempt: 0))
        #expect(envelopeProblems == ["attempt is -2, negative; clamped to 0", "started.pid is -1, negative; clamped to 0"])
    }

    @Test func absurdTimesBecomeTheControllersTime() {
        for time in [Int64.min, -1, t0 + hour + 1, .max] {
            let (event, problems) = EventSanitizer.sanitize(Self.event(.heartbeat(Heartbeat()), timeMs: time), at: t0)
            #expect(event.timeMs == t0, "\(time)")
            #expect(problems.count == 1 && problems[0].hasPrefix("timeMs is \(time), "), "\(time)")
            #expect(problems[0].hasSuffix("; treated as the controller's time"))
        }
        #expect(EventSanitizer.sanitize(Self.event(.heartbeat(Heartbeat()), timeMs: .max), at: t0).problems
            == ["timeMs is \(Int64.max), more than 1h after the controller's time 2026-01-01T00:00:00Z; treated as the controller's time"])
        // An agent clock a little ahead, and an agent that sends no time, are believed.
        for time in [0, t0 - hour, t0 + hour] {
            #expect(EventSanitizer.sanitize(Self.event(.heartbeat(Heartbeat()), timeMs: time), at: t0).problems == [], "\(time)")
        }

        var status = Self.nodeStatus
        status.startedAtMs = .min
        let (clean, problems) = Self.sanitized(.nodeStatus(status))
        status.startedAtMs = 0
        #expect(clean == .nodeStatus(status))
        #expect(problems == ["nodeStatus.startedAtMs is \(Int64.min), before 1970; treated as unknown (0)"])
    }

    @Test func byteCountsIdentifiersAndExitStatusesAreKept() {
        let bodies: [TrainingEvent.Body] = [
            .accepted(JobAccepted(fencingEpoch: .max)),
            .started(JobStarted(pid: .max, memoryLimitBytes: .max)),
            .checkpoint(CheckpointWritten(path: "/c", epoch: .max, step: .max, sizeBytes: .max)),
            .resources(ResourceSample(
                memoryUsedBytes: .max, memoryLimitBytes: .max, gpuMemoryUsedBytes: .max, gpuMemoryTotalBytes: .max, diskUsedBytes: .max, diskTotalBytes: .max)),
            .exited(JobExited(exitCode: .min, signal: .max)),
            .nodeStatus(NodeStatus(
                nodeID: "n1",
                capacity: NodeCapacity(memoryBytes: .max, gpus: [GPU(index: 0, name: "", gpuClass: "x", memoryBytes: .max)], diskBytes: .max),
                usage: NodeUsage(memoryReservedBytes: .max, memoryUsedBytes: .max, gpuMemoryUsedBytes: .max, diskUsedBytes: .max))),
        ]
        for body in bodies {
            let raw = TrainingEvent(jobID: "job-1", nodeID: "n1", attempt: 1, sequence: .max, timeMs: t0, body: body)
            let (clean, problems) = EventSanitizer.sanitize(raw, at: t0)
            #expect(clean == raw)
            #expect(problems == [])
        }
    }

    @Test func sanitizedAnEndlessSilenceIsNoHangButTheCoresOwnDeadlineStillFindsOne() {
        var fleet = Self.runningFleet()
        let raw = TrainingEvent(jobID: "job-1", nodeID: "n1", attempt: 1, sequence: 100, timeMs: fleet.now, body: .heartbeat(Heartbeat(runningJobs: 1, secondsSinceProgress: .infinity)))
        let (clean, problems) = EventSanitizer.sanitize(raw, at: fleet.now)
        #expect(problems.count == 1)
        #expect(decisions(fleet.controller.eventReceived(clean, subjectNode: "n1", at: fleet.now)) == [])
        #expect(fleet.job("job-1").status == .running)
        fleet.advance(10 * minute)
        #expect(decisions(fleet.tick()).first == "stop job-1#1 on n1")
        #expect(fleet.job("job-1").history.first?.symptom == .hang)
    }

    /// Draws hostile and ordinary numbers, in turn, from index lists a property check generates.
    struct Draws {
        static let doubles = HostileEventTests.doubles + [0.5, 60, 1e6, 2e7]
        static let ints = HostileEventTests.ints + [1, 3, 200]
        static let bytes = HostileEventTests.byteCounts + [8 * gib]
        static let times = HostileEventTests.int64s + [t0, t0 + 2 * hour]
        var picks: [Int]
        var next = 0

        mutating func pick(_ count: Int) -> Int {
            defer { next += 1 }
            return picks.isEmpty ? 0 : picks[next % picks.count] % count
        }
        mutating func double() -> Double { Self.doubles[pick(Self.doubles.count)] }
        mutating func int() -> Int { Self.ints[pick(Self.ints.count)] }
        mutating func int32() -> Int32 { Int32(clamping: int()) }
        mutating func bytes() -> UInt64 { Self.bytes[pick(Self.bytes.count)] }
        mutating func time() -> Int64 { Self.times[pick(Self.times.count)] }

        /// One body of each kind, every number in it drawn.
        mutating func bodies() -> [TrainingEvent.Body] {
            [
                .accepted(JobAccepted(fencingEpoch: bytes())),
                .started(JobStarted(pid: int32(), memoryLimitBytes: bytes())),
                .epoch(EpochMetrics(
                    epoch: int(), totalEpochs: int(), loss: double(), learningRate: double(), durationSeconds: double(), step: int(),
                    validation: Validation(loss: double(), accuracy: double()))),
                .step(StepProgress(step: int(), epoch: int(), loss: double(), learningRate: double(), samplesPerSecond: double())),
                .checkpoint(CheckpointWritten(path: "/ckpt/x", epoch: int(), step: int(), sizeBytes: bytes(), sha256: HostileEventTests.sha)),
                .resources(ResourceSample(
                    memoryUsedBytes: bytes(), memoryLimitBytes: bytes(), cpuCores: double(), gpuMemoryUsedBytes: bytes(),
                    gpuMemoryTotalBytes: bytes(), gpuUtilization: double(), diskUsedBytes: bytes(), diskTotalBytes: bytes())),
                .heartbeat(Heartbeat(runningJobs: int(), secondsSinceProgress: double())),
                .nodeStatus(NodeStatus(
                    nodeID: "n1",
                    capacity: NodeCapacity(
                        cpuCores: int(), memoryBytes: bytes(),
                        gpus: [GPU(index: int(), name: "A100", gpuClass: "a100-40gb", memoryBytes: bytes()), GPU(index: int(), name: "A100", gpuClass: "a100-40gb", memoryBytes: bytes())],
                        diskBytes: bytes()),
                    usage: NodeUsage(
                        memoryReservedBytes: bytes(), memoryUsedBytes: bytes(), cpuUtilization: double(), gpuMemoryUsedBytes: bytes(),
                        gpuUtilization: double(), diskUsedBytes: bytes(), runningJobs: int()),
                    startedAtMs: time())),
                .exited(JobExited(exitCode: int32(), signal: int32(), runtimeSeconds: double(), epochsCompleted: int())),
            ]
        }
    }

    /// Any mix of hostile numbers in every field at once: the core survives the raw events; the sanitizer gives
    /// a reason for every change and none without one, leaves nothing for a second pass, and keeps the losses.
    @Test func anyMixOfHostileNumbers() async {
        await propertyCheck(count: 100, input: Gen.int(in: 0...9_999).array(of: 1...80)) { picks in
            var draws = Draws(picks: picks)
            var fleet = Self.runningFleet()
            var sequence: UInt64 = 100
            for body in draws.bodies() {
                sequence += 1
                let node = if case .nodeStatus = body { true } else { false }
                let raw = TrainingEvent(
                    jobID: node ? "" : "job-1", nodeID: "n1", attempt: node ? 0 : 1, sequence: sequence, timeMs: draws.time(), body: body)
                let (clean, problems) = EventSanitizer.sanitize(raw, at: fleet.now)
                #expect(problems.isEmpty == ("\(clean)" == "\(raw)"), "\(problems) for \(raw)")
                let again = EventSanitizer.sanitize(clean, at: fleet.now)
                #expect(again.problems == [] && "\(again.event)" == "\(clean)")
                if case .epoch(let a) = raw.body, case .epoch(let b) = clean.body {
                    #expect(a.loss.bitPattern == b.loss.bitPattern && a.validation?.loss.bitPattern == b.validation?.loss.bitPattern)
                }
                if case .step(let a) = raw.body, case .step(let b) = clean.body {
                    #expect(a.loss.bitPattern == b.loss.bitPattern)
                }
                _ = fleet.controller.eventReceived(raw, subjectNode: "n1", at: fleet.now)
                fleet.advance(3 * minute)
                _ = fleet.tick()
            }
            #expect(fleet.controller.job("job-1") != nil)
        }
    }
}
