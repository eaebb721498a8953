import ArchonModel
import ArchonWire
import Testing

/// Decoding what we encode gives back the same value, for every message and every event body.
@Suite struct RoundTripTests {
    @Test(arguments: Fixtures.events)
    func trainingEvent(_ event: TrainingEvent) throws {
        try expectRoundTrip(event)
    }

    @Test func everyBodyArmHasAFixture() {
        let arms = Set(Fixtures.events.map { Fixtures.armName($0.body) })
        #expect(arms == ["accepted", "started", "epoch", "step", "checkpoint", "resources", "exited", "heartbeat", "nodeStatus", "securityAlert"])
    }

    @Test func nanLossStaysNaN() throws {
        let bytes = Fixtures.nanEpoch.encoded()
        let decoded = try TrainingEvent.decode(bytes)
        guard case .epoch(let metrics) = decoded.body, case .epoch(let original) = Fixtures.nanEpoch.body else {
            Issue.record("decoded body is \(decoded.body), expected .epoch")
            return
        }
        #expect(metrics.loss.isNaN)
        #expect(metrics.loss.bitPattern == original.loss.bitPattern)
        // Every other field, compared with the NaN taken out.
        var withoutNaN = metrics
        withoutNaN.loss = 0
        var expected = original
        expected.loss = 0
        #expect(withoutNaN == expected)
        #expect(decoded.jobID == Fixtures.nanEpoch.jobID && decoded.sequence == Fixtures.nanEpoch.sequence)
        #expect(decoded.encoded() == bytes)
    }

    @Test func infinitiesAndExtremeDoubles() throws {
        for value in [Double.infinity, -.infinity, .greatestFiniteMagnitude, -.greatestFiniteMagnitude, .leastNonzeroMagnitude, 1e-300] {
            try expectRoundTrip(Fixtures.event(1, .step(StepProgress(step: 1, loss: value, learningRate: value, samplesPerSecond: value))))
        }
    }

    @Test func jobSpec() throws { try expectRoundTrip(Fixtures.spec) }
    @Test func trainingConfig() throws { try expectRoundTrip(Fixtures.config) }
    @Test func jobAssignment() throws { try expectRoundTrip(Fixtures.assignment) }
    @Test func nodeStatus() throws { try expectRoundTrip(Fixtures.nodeStatus) }
    @Test func logRequest() throws { try expectRoundTrip(Fixtures.logRequest) }
    @Test func logReply() throws { try expectRoundTrip(Fixtures.logReply) }
    @Test func incident() throws { try expectRoundTrip(Fixtures.incident) }
    @Test func escalation() throws { try expectRoundTrip(Fixtures.escalation) }

    @Test func everyEnumCaseRoundTrips() throws {
        for failureClass in FailureClass.allCases {
            try expectRoundTrip(Fixtures.event(1, .exited(JobExited(exitCode: 1, failureClass: failureClass))))
        }
        for enforcement in Enforcement.allCases {
            try expectRoundTrip(NodeStatus(nodeID: "n", enforcement: EnforcementCapabilities(memory: enforcement, cpu: enforcement, pids: enforcement)))
        }
        for kind in LRSchedule.Kind.allCases {
            try expectRoundTrip(TrainingConfig(lrSchedule: LRSchedule(kind: kind, decayRate: 0.5, decaySteps: 10)))
        }
        for state in JobAssignment.DesiredState.allCases {
            try expectRoundTrip(JobAssignment(spec: JobSpec(id: "j"), attempt: 1, fencingEpoch: 1, desiredState: state, nodeID: "n"))
        }
        for cause in IncidentCause.allCases {
            for level in EscalationLevel.allCases {
                for severity in Severity.allCases {
                    for status in IncidentStatus.allCases {
                        try expectRoundTrip(Incident(id: "i", dedupKey: "k", cause: cause, level: level, severity: severity, status: status, subject: "s"))
                    }
                }
            }
        }
        for kind in Escalation.Kind.allCases {
            try expectRoundTrip(Escalation(kind: kind, incident: Fixtures.incident, timeMs: 1))
        }
    }

    /// Zero values and model defaults survive, including sub-messages that are all zero.
    @Test func defaultsAndZeros() throws {
        try expectRoundTrip(TrainingConfig())
        try expectRoundTrip(TrainingConfig(
            batchSize: 0, gradientAccumulationSteps: 0, learningRate: 0, epochs: 0,
            checkpoint: CheckpointPolicy(everyEpochs: 0, everySteps: 0, keepLast: 0)
        ))
        try expectRoundTrip(JobSpec(id: ""))
        try expectRoundTrip(LogRequest(jobID: "", tail: 0))
        try expectRoundTrip(LogReply())
        try expectRoundTrip(NodeStatus(nodeID: ""))
        try expectRoundTrip(Fixtures.event(0, .epoch(EpochMetrics(epoch: 0, loss: 0, validation: nil))))
        try expectRoundTrip(Fixtures.event(0, .epoch(EpochMetrics(epoch: 0, loss: 0, validation: Validation(loss: 0)))))
        try expectRoundTrip(Fixtures.event(0, .heartbeat(Heartbeat())))
    }

    @Test func extremeIntegers() throws {
        try expectRoundTrip(TrainingEvent(
            jobID: "j", nodeID: "n", attempt: Int(UInt32.max), sequence: .max, timeMs: .min,
            body: .started(JobStarted(pid: .min, memoryLimitBytes: .max))
        ))
        try expectRoundTrip(Fixtures.event(1, .exited(JobExited(exitCode: .max, signal: .min))))
        try expectRoundTrip(Fixtures.event(1, .step(StepProgress(step: Int.max, epoch: Int(UInt32.max)))))
        try expectRoundTrip(Incident(id: "i", dedupKey: "k", cause: .job, level: .l1, severity: .info, subject: "s", failureTimeMs: .min, respondByMs: .max))
    }

    /// Map entries are written sorted by key: equal values give equal bytes however the dictionary was built.
    @Test func encodingIsDeterministic() {
        var forward: [String: String] = [:]
        var backward: [String: String] = [:]
        let keys = (0..<50).map { "key-\($0)" }
        for key in keys { forward[key] = "v" + key }
        for key in keys.reversed() { backward[key] = "v" + key }
        let a = JobSpec(id: "j", env: forward, config: TrainingConfig(hyperparameters: backward), labels: forward)
        let b = JobSpec(id: "j", env: backward, config: TrainingConfig(hyperparameters: forward), labels: backward)
        #expect(a.encoded() == b.encoded())
        #expect(Fixtures.nodeStatus.encoded() == Fixtures.nodeStatus.encoded())
    }

    @Test func largeMessages() throws {
        let lines = (0..<5000).map { "line \($0): " + String(repeating: "x", count: $0 % 100) }
        try expectRoundTrip(LogReply(lines: lines))
        let labels = Dictionary(uniqueKeysWithValues: (0..<1000).map { ("label-\($0)", "value-\($0)") })
        try expectRoundTrip(NodeStatus(nodeID: "n", labels: labels, runningJobs: (0..<500).map { "job-\($0)" }))
    }
}

func expectRoundTrip<Message: WireMessage & Equatable>(
    _ value: Message,
    sourceLocation: SourceLocation = #_sourceLocation
) throws {
    let bytes = value.encoded()
    let decoded = try Message.decode(bytes)
    #expect(decoded == value, sourceLocation: sourceLocation)
    #expect(decoded.encoded() == bytes, sourceLocation: sourceLocation)
}
