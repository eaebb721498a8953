public import ArchonModel

/// One thing wrong with a job spec, and what to change.
public struct SpecProblem: Codable, Sendable, Hashable, CustomStringConvertible {
    /// Path in the spec, e.g. `config.batchSize`.
    public var field: String
    public var message: String

    public init(field: String, message: String) {
        self.field = field
        self.message = message
    }

    /// "config.batchSize: must be >= 1, got 0".
    public var description: String { "\(field): \(message)" }
}

/// The runbook's "validate before training": every problem of a spec at once, each one a person can act on.
public struct SpecValidator: Sendable {
    /// About 115 days: longer timeouts are typing errors, and the core computes deadlines from them.
    public static let maxTimeoutSeconds = 10_000_000
    /// The largest count a spec may give (batch size, epochs, steps, …): the wire's 32 bits, and no product of two
    /// overflows.
    public static let maxCount = Int(Int32.max)

    /// The checks' limits.
    public var policy: ValidationPolicy

    /// A validator with the policy's limits (the runbook's by default).
    public init(policy: ValidationPolicy = ValidationPolicy()) {
        self.policy = policy
    }

    /// - Parameters:
    ///   - datasets: the registry; a named dataset must be in it, ready, and readable by the spec's team.
    ///   - nodes: the fleet; once any node is known, one (cordoned or not) must have the capacity for the request.
    public func problems(in spec: JobSpec, datasets: some Collection<DatasetRecord>, nodes: some Collection<NodeRecord>) -> [SpecProblem] {
        var out: [SpecProblem] = []
        func fail(_ field: String, _ message: String) { out.append(SpecProblem(field: field, message: message)) }

        if spec.id.isEmpty {
            fail("id", "required")
        } else if spec.id.utf8.count > 64 || !spec.id.utf8.allSatisfy(Self.isIDByte) {
            fail("id", "must be 1-64 characters of A-Z, a-z, 0-9, '_' or '-' (it names NATS subjects and KV keys), got \"\(spec.id)\"")
        }
        // What the job may run is judged here, at submission, as well as by the agent at launch.
        let rules = policy.executionRules
        if let refusal = rules.entrypointRefusal(spec.command) { fail("command", refusal) }
        for (name, message) in rules.environmentProblems(spec.env) { fail("env.\(name)", message) }

        let c = spec.config
        let max = Self.maxCount
        for (name, value) in [("batchSize", c.batchSize), ("gradientAccumulationSteps", c.gradientAccumulationSteps), ("epochs", c.epochs)]
        where !(1...max).contains(value) {
            fail("config.\(name)", "must be 1...\(max), got \(value)")
        }
        if !(c.learningRate > 0 && c.learningRate < policy.maxLearningRate) {
            fail("config.learningRate", "must be > 0 and < \(policy.maxLearningRate.compact), got \(c.learningRate)")
        }
        if !(c.dataSubset >= 0 && c.dataSubset <= 1) {
            fail("config.dataSubset", "must be between 0 (all data) and 1, got \(c.dataSubset)")
        }
        if !(c.lrSchedule.decayRate >= 0 && c.lrSchedule.decayRate <= 1) {
            fail("config.lrSchedule.decayRate", "must be between 0 and 1, got \(c.lrSchedule.decayRate)")
        }
        if !(0...max).contains(c.lrSchedule.decaySteps) { fail("config.lrSchedule.decaySteps", "must be 0...\(max), got \(c.lrSchedule.decaySteps)") }
        switch c.lrSchedule.kind {
        case .constant, .cosine:
            break
        case .exponential, .step:
            if !(c.lrSchedule.decayRate > 0 && c.lrSchedule.decayRate <= 1) {
                fail("config.lrSchedule.decayRate", "must be > 0 and <= 1 for a \(c.lrSchedule.kind.rawValue) schedule, got \(c.lrSchedule.decayRate)")
            }
            if c.lrSchedule.decaySteps < 1 {
                fail("config.lrSchedule.decaySteps", "must be >= 1 for a \(c.lrSchedule.kind.rawValue) schedule, got \(c.lrSchedule.decaySteps)")
            }
        }
        if !(c.gradientClipping.maxNorm >= 0 && c.gradientClipping.maxNorm.isFinite) {
            fail("config.gradientClipping.maxNorm", "must be >= 0, got \(c.gradientClipping.maxNorm)")
        } else if c.gradientClipping.enabled, c.gradientClipping.maxNorm == 0 {
            fail("config.gradientClipping.maxNorm", "must be > 0 when clipping is enabled, got 0")
        }
        for (name, value) in [("perEpochSeconds", c.timeouts.perEpochSeconds), ("totalSeconds", c.timeouts.totalSeconds), ("heartbeatSeconds", c.timeouts.heartbeatSeconds)]
        where value < 0 || value > Self.maxTimeoutSeconds {
            fail("config.timeouts.\(name)", "must be 0...\(Self.maxTimeoutSeconds) seconds (0 = the policy default), got \(value)")
        }
        for (name, value) in [("everyEpochs", c.checkpoint.everyEpochs), ("everySteps", c.checkpoint.everySteps), ("keepLast", c.checkpoint.keepLast),
                             ("stopGraceSeconds", c.checkpoint.stopGraceSeconds)] where !(0...max).contains(value) {
            fail("config.checkpoint.\(name)", "must be 0...\(max), got \(value)")
        }
        if !c.checkpoint.sharedRoot.isEmpty, let problem = CheckpointStorage.rootProblem(c.checkpoint.sharedRoot) {
            fail("config.checkpoint.sharedRoot", "\(problem), got \"\(c.checkpoint.sharedRoot.prefix(200))\"")
        }
        // JSON integers past Int64 are not portable (the API's schema, most clients): none of these needs them.
        for (name, value) in [("seed", c.seed), ("resources.memoryBytes", c.resources.memoryBytes), ("resources.diskBytes", c.resources.diskBytes)]
        where value > UInt64(Int64.max) {
            fail("config.\(name)", "must be at most \(Int64.max), got \(value)")
        }
        let r = c.resources
        if !(r.cpuCores >= 0 && r.cpuCores.isFinite) { fail("config.resources.cpuCores", "must be >= 0, got \(r.cpuCores)") }
        if !(0...max).contains(r.gpuCount) { fail("config.resources.gpuCount", "must be 0...\(max), got \(r.gpuCount)") }
        if r.gpuCount > 0, r.gpuClass.isEmpty { fail("config.resources.gpuClass", "required when gpuCount is \(r.gpuCount)") }
        if !r.gpuClass.isEmpty, r.gpuCount == 0 { fail("config.resources.gpuCount", "must be >= 1 when gpuClass is \"\(r.gpuClass)\"") }

        let ready = datasets.filter { $0.status == .ready }.map(\.id).sorted()
        let readyText = ready.isEmpty ? "none" : ready.joined(separator: ", ")
        if c.dataset.isEmpty {
            if policy.requireDataset { fail("config.dataset", "required; ready datasets: \(readyText)") }
        } else if let dataset = datasets.first(where: { $0.id == c.dataset }) {
            if dataset.status != .ready {
                fail("config.dataset", "dataset '\(c.dataset)' is \(dataset.status.rawValue); ready datasets: \(readyText)")
            }
            let teams = dataset.dataset.allowedTeams
            if !teams.isEmpty, !teams.contains(spec.team) {
                let who = spec.team.isEmpty ? "a job without a team" : "team '\(spec.team)'"
                fail("team", "\(who) may not read dataset '\(c.dataset)' (allowed: \(teams.sorted().joined(separator: ", ")))")
            }
        } else {
            fail("config.dataset", "dataset '\(c.dataset)' not found; ready datasets: \(readyText)")
        }

        if policy.requireCapacity, !nodes.isEmpty,
            // Capacity, not availability: a job waits out a cordon or a busy node, but not a fleet too small.
            !nodes.contains(where: { Placement.fits(r, capacity: $0.capacity, reserved: Reservation()) })
        {
            let largest = nodes.max { ($0.capacity.memoryBytes, $1.id) < ($1.capacity.memoryBytes, $0.id) }  // ties: smallest id
            let hint = largest.map { "; largest node: \($0.id) (\(Placement.describe($0.capacity)))" } ?? ""
            fail("config.resources", "no node in the fleet can run this job: it needs \(Placement.describe(r))\(hint)")
        }
        return out
    }

    private static func isIDByte(_ b: UInt8) -> Bool {
        (0x30...0x39).contains(b) || (0x41...0x5A).contains(b) || (0x61...0x7A).contains(b) || b == 0x5F || b == 0x2D
    }
}
