import ArchonModel

extension Policy {
    /// Every rule a policy's values break, with the dotted path of each value (lines are filled in by the loader).
    public func validate() -> [PolicyIssue] {
        var check = PolicyChecker()
        let d = detection
        check.positive(d.queueTimeout, "detection.queueTimeout")
        check.positive(d.heartbeatWindow, "detection.heartbeatWindow")
        check.positive(d.epochTimeout, "detection.epochTimeout")
        check.positive(d.totalTimeout, "detection.totalTimeout")
        check.positive(d.nodeSilence, "detection.nodeSilence")
        check.positive(retention.finished, "retention.finished")
        check.positive(remediation.avoidNodesFor, "remediation.avoidNodesFor")
        check.positive(remediation.stopGrace, "remediation.stopGrace")
        check.nonNegative(escalation.ackTimeout, "escalation.ackTimeout")
        check.nonNegative(escalation.resolveAfterHealthy, "escalation.resolveAfterHealthy")
        check.nonNegative(escalation.groupWait, "escalation.groupWait")
        check.nonNegative(remediation.checkpointNodeWait, "remediation.checkpointNodeWait")
        check.nonNegative(remediation.restartBudgetResetAfter, "remediation.restartBudgetResetAfter")
        check.range(remediation.minLearningRate, "remediation.minLearningRate", atLeast: 0, below: 1)
        check.range(d.divergence.minRelativeRise, "detection.divergence.minRelativeRise", atLeast: 0)
        if remediation.checkpointNodeWait >= d.queueTimeout {
            check.fail("remediation.checkpointNodeWait", "must be shorter than detection.queueTimeout (\(d.queueTimeout)), got \(remediation.checkpointNodeWait): a job waiting for its checkpoint's node would be reported stuck")
        }
        check.range(d.memoryLimitFraction, "detection.memoryLimitFraction", above: 0, atMost: 1)
        check.range(d.resourcePressureThreshold, "detection.resourcePressureThreshold", above: 0, atMost: 1)
        check.atLeast(d.divergence.risingEpochs, 0, "detection.divergence.risingEpochs")
        check.range(d.divergence.spikeFactor, "detection.divergence.spikeFactor", above: 1, atMost: .infinity)
        check.atLeast(d.divergence.spikeWindow, 1, "detection.divergence.spikeWindow")
        check.atLeast(d.divergence.spikeMinSamples, 1, "detection.divergence.spikeMinSamples")
        check.range(d.poorPerformance.minImprovement, "detection.poorPerformance.minImprovement", atLeast: 0)
        check.atLeast(d.poorPerformance.patienceEpochs, 1, "detection.poorPerformance.patienceEpochs")
        check.range(d.poorPerformance.validationGapRatio, "detection.poorPerformance.validationGapRatio", above: 1, atMost: .infinity)

        let r = remediation
        check.atLeast(r.maxRestartsPerJob, 0, "remediation.maxRestartsPerJob")
        check.nonNegative(r.backoff.initial, "remediation.backoff.initial")
        check.range(r.backoff.multiplier, "remediation.backoff.multiplier", atLeast: 1)
        if r.backoff.max < r.backoff.initial {
            check.fail("remediation.backoff.max", "must be >= backoff.initial (\(r.backoff.initial)), got \(r.backoff.max)")
        }
        if r.defaultMemoryRequest.bytes == 0 {
            check.fail("remediation.defaultMemoryRequest", "must be > 0")
        }
        var upgradeSources: Set<String> = []
        for (i, upgrade) in r.gpuUpgrades.enumerated() {
            let path = "remediation.gpuUpgrades[\(i)]"
            if upgrade.from.isEmpty || upgrade.to.isEmpty {
                check.fail(path, "from and to must both name a GPU class")
            } else if upgrade.from == upgrade.to {
                check.fail(path, "upgrades \"\(upgrade.from)\" to itself")
            }
            if !upgradeSources.insert(upgrade.from).inserted {
                check.fail("\(path).from", "\"\(upgrade.from)\" is upgraded twice")
            }
        }
        for symptom in Symptom.allCases {
            guard let ladder = r.ladders.ladder(for: symptom) else { continue }
            let path = "remediation.ladders.\(symptom.rawValue)"
            if (symptom == .datasetNotFound || symptom == .permissionDenied) && !ladder.steps.isEmpty {
                check.fail("\(path).steps", "must be empty: retrying cannot help with \(symptom.title)")
            }
            for (i, step) in ladder.steps.enumerated() {
                check.remedy(step, "\(path).steps[\(i)]")
            }
        }

        let c = correlation
        check.atLeast(c.badNode.minDistinctJobs, 1, "correlation.badNode.minDistinctJobs")
        check.positive(c.badNode.window, "correlation.badNode.window")
        check.atLeast(c.badDataset.minDistinctJobs, 1, "correlation.badDataset.minDistinctJobs")
        check.positive(c.badDataset.window, "correlation.badDataset.window")
        check.range(c.systemResource.threshold, "correlation.systemResource.threshold", above: 0, atMost: 1)
        check.range(c.systemResource.nodeFraction, "correlation.systemResource.nodeFraction", atLeast: 0, below: 1)
        check.atLeast(c.systemResource.minNodes, 1, "correlation.systemResource.minNodes")
        check.atLeast(c.systemResource.minDistinctNodes, 1, "correlation.systemResource.minDistinctNodes")
        check.positive(c.systemResource.window, "correlation.systemResource.window")
        check.range(c.systemResource.failureNodeFraction, "correlation.systemResource.failureNodeFraction", atLeast: 0, below: 1)
        check.range(c.multiAgent.nodeFraction, "correlation.multiAgent.nodeFraction", atLeast: 0, below: 1)
        check.atLeast(c.multiAgent.minDistinctNodes, 2, "correlation.multiAgent.minDistinctNodes")
        check.positive(c.multiAgent.window, "correlation.multiAgent.window")
        check.atLeast(c.security.permissionDeniedJobs, 1, "correlation.security.permissionDeniedJobs")
        check.positive(c.security.window, "correlation.security.window")

        for level in EscalationLevel.allCases {
            check.positive(escalation.levels[level].responseTime, "escalation.levels.\(level.rawValue).responseTime")
            if escalation.levels[level].contact.isEmpty {
                check.fail("escalation.levels.\(level.rawValue).contact", "must name who answers at \(level.rawValue)")
            }
        }
        check.atLeast(escalation.logTailLines, 0, "escalation.logTailLines")
        check.range(validation.maxLearningRate, "validation.maxLearningRate", above: 0, atMost: .infinity)
        for (i, entry) in validation.entrypoints.enumerated() {
            if let problem = ExecutionRules.entrypointEntryProblem(entry) { check.fail("validation.entrypoints[\(i)]", problem) }
        }
        for (i, pattern) in validation.deniedEnvironment.enumerated() {
            if let problem = ExecutionRules.environmentPatternProblem(pattern) { check.fail("validation.deniedEnvironment[\(i)]", problem) }
        }
        return check.issues
    }
}

/// Collects the issues of ``Policy/validate()``.
struct PolicyChecker {
    var issues: [PolicyIssue] = []

    mutating func fail(_ path: String, _ message: String) {
        issues.append(PolicyIssue(path: path, message: message))
    }

    mutating func positive(_ value: PolicyDuration, _ path: String) {
        if value.milliseconds <= 0 { fail(path, "must be longer than 0, got \(value)") }
    }

    mutating func nonNegative(_ value: PolicyDuration, _ path: String) {
        if value.milliseconds < 0 { fail(path, "must not be negative, got \(value)") }
    }

    mutating func atLeast(_ value: Int, _ minimum: Int, _ path: String) {
        if value < minimum { fail(path, "must be >= \(minimum), got \(value)") }
    }

    mutating func range(_ value: Double, _ path: String, above low: Double, atMost high: Double) {
        if !(value > low && value <= high) {
            fail(path, high.isInfinite ? "must be > \(low.compact), got \(value.compact)" : "must be > \(low.compact) and <= \(high.compact), got \(value.compact)")
        }
    }

    mutating func range(_ value: Double, _ path: String, atLeast low: Double, below high: Double = .infinity) {
        if !(value >= low && value < high) {
            fail(path, high.isInfinite ? "must be >= \(low.compact), got \(value.compact)" : "must be >= \(low.compact) and < \(high.compact), got \(value.compact)")
        }
    }

    mutating func remedy(_ remedy: Remedy, _ path: String) {
        switch remedy {
        case .restart, .replace, .halveBatch, .mixedPrecision, .dataQualityCheck:
            break
        case .raiseMemory(let factor):
            range(factor, "\(path).factor", above: 1, atMost: .infinity)
        case .scaleLearningRate(let factor):
            range(factor, "\(path).factor", above: 0, atMost: 1)
            if factor == 1 { fail("\(path).factor", "must change the learning rate, got 1") }
        case .exponentialDecay(let rate, let steps):
            range(rate, "\(path).decayRate", above: 0, atMost: 1)
            atLeast(steps, 1, "\(path).decaySteps")
        case .gradientClipping(let norm):
            range(norm, "\(path).maxNorm", above: 0, atMost: .infinity)
        case .extendTimeouts(let factor, let epoch, let total):
            range(factor, "\(path).factor", above: 1, atMost: .infinity)
            positive(epoch, "\(path).maxPerEpoch")
            positive(total, "\(path).maxTotal")
        }
    }
}
