public import ArchonModel

/// The event stream of a fleet at work, made up: `archon sim` publishes it to load-test a deployment, and the
/// benchmarks fill their streams with it. Deterministic for a seed.
///
/// Every job runs one attempt on its node and reports what the agent reports for a trainer: heartbeats, resource
/// samples, steps, an epoch every `stepsPerEpoch` steps and a checkpoint after each epoch. With a failure rate, an
/// event is instead, with that probability, the attempt's exit with a failure class drawn from the runbook's
/// (out of memory, diverging loss, crash, hang, timeout, data corruption); the job then starts a new attempt.
/// Node heartbeats (`_node` subject) come at `nodeHeartbeatShare` of the events.
public struct EventSimulator: Sendable {
    /// One job as the simulator runs it.
    public struct Placement: Sendable, Hashable {
        public var jobID: String
        public var nodeID: String
        public var attempt: Int
        /// The sequence number the next event of this attempt gets.
        public var nextSequence: UInt64

        public init(jobID: String, nodeID: String, attempt: Int = 1, nextSequence: UInt64 = 1) {
            self.jobID = jobID
            self.nodeID = nodeID
            self.attempt = attempt
            self.nextSequence = nextSequence
        }
    }

    public struct Options: Sendable {
        /// Probability that a job's event is a failure (its attempt's exit), 0...1.
        public var failureRate: Double
        public var stepsPerEpoch: Int
        /// Share of events that are node heartbeats rather than job events.
        public var nodeHeartbeatShare: Double
        public var seed: UInt64

        public init(failureRate: Double = 0, stepsPerEpoch: Int = 20, nodeHeartbeatShare: Double = 0.02, seed: UInt64 = 1) {
            self.failureRate = min(max(failureRate, 0), 1)
            self.stepsPerEpoch = max(1, stepsPerEpoch)
            self.nodeHeartbeatShare = min(max(nodeHeartbeatShare, 0), 1)
            self.seed = seed
        }
    }

    /// The failure classes a simulated attempt ends with, as the runbook knows them.
    public static let failureClasses: [FailureClass] = [.outOfMemory, .divergingLoss, .crash, .hang, .timeout, .dataCorruption]

    public private(set) var jobs: [Placement]
    private var steps: [Int]
    private var nodeSequences: [String: UInt64] = [:]
    private let nodes: [String]
    private let options: Options
    private var random: SplitMix64
    public private(set) var produced = 0
    public private(set) var failures = 0

    public init(jobs: [Placement], options: Options = Options()) {
        precondition(!jobs.isEmpty, "a simulation needs at least one job")
        self.jobs = jobs
        self.steps = Array(repeating: 0, count: jobs.count)
        self.nodes = Array(Set(jobs.map(\.nodeID))).sorted()
        self.options = options
        self.random = SplitMix64(seed: options.seed)
    }

    /// `jobs` jobs spread over `nodes` nodes (`job-<i>` on `node-<i mod nodes>`), each on its first attempt.
    public static func placements(jobs: Int, nodes: Int) -> [Placement] {
        (0..<max(1, jobs)).map { Placement(jobID: "job-\($0)", nodeID: "node-\($0 % max(1, nodes))") }
    }

    /// The next event and the subject an agent publishes it on; `timeMs` stamps it.
    public mutating func next(timeMs: Int64) -> (subject: String, event: TrainingEvent) {
        produced += 1
        if options.nodeHeartbeatShare > 0, random.unit() < options.nodeHeartbeatShare {
            let node = nodes[Int(random.next() % UInt64(nodes.count))]
            let sequence = (nodeSequences[node] ?? 0) + 1
            nodeSequences[node] = sequence
            let event = TrainingEvent(jobID: "", nodeID: node, attempt: 0, sequence: sequence, timeMs: timeMs,
                                      body: .heartbeat(Heartbeat(runningJobs: jobs.count / max(1, nodes.count))))
            return ("archon.v1.events.\(node)._node", event)
        }
        let index = Int(random.next() % UInt64(jobs.count))
        let job = jobs[index]
        jobs[index].nextSequence += 1
        let body: TrainingEvent.Body
        if options.failureRate > 0, random.unit() < options.failureRate {
            failures += 1
            let failure = Self.failureClasses[Int(random.next() % UInt64(Self.failureClasses.count))]
            body = .exited(JobExited(exitCode: failure == .divergingLoss ? 3 : 1, failureClass: failure,
                                     detail: "simulated \(failure.rawValue)", runtimeSeconds: 60,
                                     epochsCompleted: steps[index] / options.stepsPerEpoch))
            // The job comes back as its next attempt, from the start of its sequence.
            jobs[index].attempt += 1
            jobs[index].nextSequence = 1
            steps[index] = 0
        } else {
            switch random.next() % 20 {
            case 0..<6:
                body = .heartbeat(Heartbeat(runningJobs: 1, secondsSinceProgress: 1))
            case 6..<10:
                body = .resources(ResourceSample(memoryUsedBytes: 6 << 30, memoryLimitBytes: 16 << 30, cpuCores: 3.5,
                                                 gpuMemoryUsedBytes: 40 << 30, gpuMemoryTotalBytes: 80 << 30, gpuUtilization: 0.9))
            default:
                steps[index] += 1
                let step = steps[index]
                let epoch = step / options.stepsPerEpoch
                if step % options.stepsPerEpoch == 0 {
                    let loss = 2.0 / Double(epoch + 1)
                    body = .epoch(EpochMetrics(epoch: epoch, totalEpochs: 1000, loss: loss, learningRate: 0.001, durationSeconds: 600,
                                               step: step, validation: Validation(loss: loss * 1.1, accuracy: 0.5)))
                } else {
                    body = .step(StepProgress(step: step, epoch: epoch + 1, loss: 2.0 / Double(epoch + 1), learningRate: 0.001,
                                              samplesPerSecond: 900))
                }
            }
        }
        let event = TrainingEvent(jobID: job.jobID, nodeID: job.nodeID, attempt: job.attempt, sequence: job.nextSequence,
                                  timeMs: timeMs, body: body)
        return ("archon.v1.events.\(job.nodeID).\(job.jobID)", event)
    }
}

/// A small, fast, seedable generator (Steele, Lea and Flood's SplitMix64): the same seed, the same stream.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }
}
