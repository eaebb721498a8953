import ArchonModel
import Testing

@testable import ArchonCore

/// Every number an agent sends is untrusted. A number the core traps on is a poison event: never acknowledged,
/// redelivered to every restarted controller, which dies on it again. The core must survive any value.
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
}
