public import ArchonModel

// Job lifecycle: submission, placement, events of attempts, failure, remediation.
extension FleetController {
    // MARK: - Submission and placement

    mutating func submit(_ spec: JobSpec, at now: Int64, _ out: inout [ControllerAction]) {
        if let existing = state.jobs[spec.id] {
            if existing.spec == spec { return }  // the same submission again: already done
            let problem = SpecProblem(field: "id", message: "job '\(spec.id)' already exists (\(existing.status.rawValue)); choose another id")
            out.append(.rejectJob(jobID: spec.id, problems: [problem], reason: Reason(symptom: "invalid job spec", evidence: problem.description, rule: "job ids are unique")))
            return
        }
        let problems = validate(spec)
        if !problems.isEmpty {
            out.append(.rejectJob(
                jobID: spec.id, problems: problems,
                reason: Reason(symptom: "invalid job spec", evidence: problems.map(\.description).joined(separator: "; "), rule: "validate before training")))
            return
        }
        let config = effectiveConfig(spec.config)
        state.jobs[spec.id] = JobRecord(spec: spec, config: config, at: now)
        let plan = PendingAttempt(
            config: config, action: "initial placement", configChange: "",
            reason: Reason(symptom: "job submitted", evidence: "job '\(spec.id)' needs \(Placement.describe(config.resources))", rule: "placement: least loaded schedulable node with room"),
            symptom: nil, dueMs: now, excludeNodes: [], preferNode: "", resumeBeforeEpoch: nil)
        queueAttempt(spec.id, plan, at: now, &out)
    }

    /// The spec's config with the policy's time limits filled in where it sets none, so the agent enforces
    /// what the core expects.
    func effectiveConfig(_ config: TrainingConfig) -> TrainingConfig {
        var c = config
        let d = policy.detection
        if c.timeouts.perEpochSeconds == 0 { c.timeouts.perEpochSeconds = Int(d.epochTimeout.seconds) }
        if c.timeouts.totalSeconds == 0 { c.timeouts.totalSeconds = Int(d.totalTimeout.seconds) }
        if c.timeouts.heartbeatSeconds == 0 { c.timeouts.heartbeatSeconds = Int(d.heartbeatWindow.seconds) }
        return c
    }

    /// Records the next attempt; places it now, or when its backoff is over.
    mutating func queueAttempt(_ jobID: String, _ plan: PendingAttempt, at now: Int64, _ out: inout [ControllerAction]) {
        guard var job = state.jobs[jobID] else { return }
        var plan = plan
        if !plan.excludeNodes.isEmpty, plan.excludeUntilMs == nil {
            plan.excludeUntilMs = now + policy.remediation.avoidNodesFor.milliseconds
        }
        job.pending = plan
        job.status = .queued
        job.nodeID = ""
        if plan.dueMs > now {
            job.statusDetail = "restart due at \(Timestamp.iso8601(plan.dueMs)) (backoff)"
            state.jobs[jobID] = job
            state.deadlines.set(.restartDue(jobID: jobID), at: plan.dueMs, &out)
            return
        }
        job.queuedSinceMs = now
        state.jobs[jobID] = job
        tryPlace(jobID, at: now, &out)
        state.deadlines.set(.startDeadline(jobID: jobID), at: now + policy.detection.queueTimeout.milliseconds, &out)
    }

    /// Places the job's pending attempt if a node has room, on a node that can read the checkpoint it resumes from
    /// (``resumePlacement(_:_:at:)``). What each node holds comes from the job index, which the placement itself
    /// updates.
    @discardableResult
    mutating func tryPlace(_ jobID: String, at now: Int64, _ out: inout [ControllerAction]) -> Bool {
        guard var job = state.jobs[jobID], let plan = job.pending, job.hold == nil, job.status == .queued else { return false }
        // Nothing starts on a paused dataset: a new submission, a restart after an unrelated failure, a job that
        // waited for room — each is held like the failed ones, until the dataset is resumed.
        if !plan.config.dataset.isEmpty, let dataset = state.datasets[plan.config.dataset], dataset.retriesPaused {
            hold(jobID, .dataset(dataset.id), plan: plan, at: now, &out)
            noteFleetIncident(dataset.pausedByIncident, "job \(jobID) held before it started: retries on \(dataset.id) are paused", at: now)
            return false
        }
        switch resumePlacement(job, plan, at: now) {
        case .noRoom:
            let avoided = plan.excluded(at: now).sorted()
            let avoiding = avoided.isEmpty ? "" : " (avoiding \(avoided.joined(separator: ", ")) until \(Timestamp.iso8601(plan.excludeUntilMs ?? now)))"
            job.statusDetail = "waiting for a node with room for \(Placement.describe(plan.config.resources))\(avoiding)"
            state.jobs[jobID] = job
            if !avoided.isEmpty, let until = plan.excludeUntilMs, until > now {
                // When the avoid list expires the avoided nodes are candidates again: try then.
                state.deadlines.set(.restartDue(jobID: jobID), at: until, &out)
            }
            return false
        case .waitForNode(let node, let since, let detail):
            let until = since + policy.remediation.checkpointNodeWait.milliseconds
            job.pending?.checkpointWaitSinceMs = since
            job.statusDetail = "waiting until \(Timestamp.iso8601(until)) for \(node), whose local storage holds the newest checkpoint (\(detail)); then it resumes from an older checkpoint or from scratch"
            state.jobs[jobID] = job
            state.deadlines.set(.restartDue(jobID: jobID), at: until, &out)
            return false
        case .place(let node, let choice):
            startAttempt(&job, on: node, plan: plan, choice: choice, at: now, &out)
        }
        state.jobs[jobID] = job
        if state.deadlines.due[.startDeadline(jobID: jobID)] == nil {
            state.deadlines.set(.startDeadline(jobID: jobID), at: now + policy.detection.queueTimeout.milliseconds, &out)
        }
        return true
    }

    /// Where the pending attempt can run and what it resumes from.
    enum ResumePlacement {
        /// No node the attempt may use has room.
        case noRoom
        /// The newest checkpoint is on `node`'s local storage and `node` may take the job soon: wait for it (since
        /// `since`, for `remediation.checkpointNodeWait`) rather than lose the progress. `detail` says why it cannot now.
        case waitForNode(String, since: Int64, detail: String)
        case place(String, ResumeChoice)
    }

    /// The best candidate checkpoint (``CheckpointPlanner/candidates(_:beforeEpoch:)`` of the attempt's line) that a
    /// node with room can read, placed on such a node; the newest is worth a wait for its node when it is local; when
    /// no candidate is readable anywhere with room, a start from scratch on any node with room.
    func resumePlacement(_ job: JobRecord, _ plan: PendingAttempt, at now: Int64) -> ResumePlacement {
        let excluded = plan.excluded(at: now)
        let sharedRoot = plan.config.checkpoint.sharedRoot
        func place(readable checkpoint: CheckpointRecord?) -> String? {
            Placement.choose(plan.config.resources, nodes: state.nodes.values, reservations: state.jobs.reserved,
                             prefer: plan.preferNode, exclude: excluded) { node in
                checkpoint.map { CheckpointPlanner.isReadable($0, on: node, jobSharedRoot: sharedRoot) } ?? true
            }
        }
        guard let anywhere = place(readable: nil) else { return .noRoom }
        let line = CheckpointPlanner.lineage(job.checkpoints, history: job.history)
        let candidates = CheckpointPlanner.candidates(line, beforeEpoch: plan.resumeBeforeEpoch)
        let wait = policy.remediation.checkpointNodeWait.milliseconds
        var passedOver: [String] = []
        // Just reported missing or changed by its node (and dropped): say so.
        if let last = job.history.last, last.failureClass == .checkpointUnavailable, let lost = last.resumeCheckpoint {
            passedOver.append("\(CheckpointPlanner.name(lost)) was unavailable on \(last.nodeID)")
        }
        for (rank, checkpoint) in candidates.enumerated() {
            if let node = place(readable: checkpoint) {
                var choice = CheckpointPlanner.explain(checkpoint, checkpoints: job.checkpoints, line: line, beforeEpoch: plan.resumeBeforeEpoch, passedOver: passedOver)
                if rank == 0, let since = plan.checkpointWaitSinceMs {
                    choice.why = (choice.why ?? "") + " (waited \(Timestamp.duration(now - since)) for \(node))"
                }
                return .place(node, choice)
            }
            let local = checkpoint.storage?.shared != true
            let holder = state.nodes[checkpoint.nodeID]
            let unavailable = unavailability(of: holder, id: checkpoint.nodeID, excluded: excluded)
            if rank == 0, local, unavailable.mayComeBack, wait > 0 {
                let since = plan.checkpointWaitSinceMs ?? now
                if now < since + wait { return .waitForNode(checkpoint.nodeID, since: since, detail: unavailable.why) }
                passedOver.append("\(CheckpointPlanner.name(checkpoint)) is on \(CheckpointPlanner.location(checkpoint)) and \(unavailable.why) after a wait of \(Timestamp.duration(wait))")
            } else {
                let why = local ? unavailable.why : "no node that mounts it has room"
                passedOver.append("\(CheckpointPlanner.name(checkpoint)) is on \(CheckpointPlanner.location(checkpoint)) and \(why)")
            }
        }
        return .place(anywhere, CheckpointPlanner.explain(nil, checkpoints: job.checkpoints, line: line, beforeEpoch: plan.resumeBeforeEpoch, passedOver: passedOver))
    }

    /// Why the node holding a local checkpoint cannot take the attempt now, and whether it may soon (it only lacks
    /// room, or is not heard from) rather than never (cordoned, avoided, unknown).
    private func unavailability(of node: NodeRecord?, id: String, excluded: Set<String>) -> (why: String, mayComeBack: Bool) {
        guard let node else { return ("\(id) is not a known node", false) }
        if node.cordoned { return ("\(id) is out of service (\(node.cordonReason.isEmpty ? "cordoned" : String(node.cordonReason.prefix(120))))", false) }
        if excluded.contains(id) { return ("the attempt avoids \(id)", false) }
        if node.health != .online { return ("\(id) is not heard from", true) }
        return ("\(id) has no room", true)
    }

    private mutating func startAttempt(_ job: inout JobRecord, on node: String, plan: PendingAttempt, choice: ResumeChoice, at now: Int64, _ out: inout [ControllerAction]) {
        let attempt = job.attempt + 1
        if !job.desiredNode.isEmpty, job.desiredNode != node {
            out.append(.stop(
                jobID: job.spec.id, nodeID: job.desiredNode, attempt: job.attempt,
                reason: Reason(symptom: "job moved", evidence: "attempt \(attempt) runs on \(node)", rule: "one node runs a job")))
        }
        let resume = choice.checkpoint?.path ?? ""
        // Checkpoints exist but none may be resumed from: the agent must not fall back to its newest one.
        let freshStart = choice.freshStart
        var reason = plan.reason
        if let why = choice.why { reason.rule = reason.rule.isEmpty ? why : "\(reason.rule); \(why)" }
        job.history.append(AttemptRecord(
            attempt: attempt, nodeID: node, action: plan.action, configChange: plan.configChange,
            resumeFrom: resume, freshStart: freshStart, resumeCheckpoint: choice.checkpoint, resumeChoice: choice.why, assignedAtMs: now))
        job.attempt = attempt
        job.nodeID = node
        job.desiredNode = node
        job.config = plan.config
        job.pending = nil
        job.status = .queued
        job.statusDetail = "assigned to \(node); waiting for it to start"
        var spec = job.spec
        spec.config = plan.config
        let assignment = JobAssignment(
            spec: spec, attempt: attempt, fencingEpoch: state.fencingEpoch, desiredState: .running, nodeID: node,
            resumeFrom: resume, assignedAtMs: now, reason: reason.description, freshStart: freshStart,
            resumeSHA256: choice.checkpoint?.sha256 ?? "")
        out.append(.assign(assignment, reason: reason))
    }

    /// Places every job waiting for room, oldest first.
    mutating func placeWaitingJobs(at now: Int64, _ out: inout [ControllerAction]) {
        let waiting = state.jobs.waiting.compactMap { state.jobs[$0] }
            .filter { ($0.pending?.dueMs ?? .max) <= now }
            .sorted { ($0.queuedSinceMs, $0.submittedAtMs, $0.spec.id) < ($1.queuedSinceMs, $1.submittedAtMs, $1.spec.id) }
        for job in waiting {
            tryPlace(job.spec.id, at: now, &out)
        }
    }

    // MARK: - Events

    /// Why an event must not be believed, or nil: it claims another node than the subject it came on, or it is
    /// about a job attempt assigned to another node. Such an event is never applied; it opens (or updates) the
    /// node's security incident. `reason` is a metric label.
    public func authenticityProblem(of event: TrainingEvent, subjectNode: String) -> (reason: String, evidence: String)? {
        guard event.nodeID == subjectNode else {
            return ("node_mismatch", "events published on node \(subjectNode)'s subject claim to come from node '\(event.nodeID)'; rejected")
        }
        guard !event.jobID.isEmpty, let job = state.jobs[event.jobID], let index = job.attemptIndex(event.attempt),
              job.history[index].nodeID != event.nodeID
        else { return nil }
        return ("job_not_assigned", "node \(event.nodeID) sent events for job \(event.jobID) attempt \(event.attempt), which is assigned to \(job.history[index].nodeID); rejected")
    }

    mutating func receive(_ event: TrainingEvent, subjectNode: String, at now: Int64, _ out: inout [ControllerAction]) {
        if let problem = authenticityProblem(of: event, subjectNode: subjectNode) {
            raiseSecurity(node: subjectNode, evidence: problem.evidence, at: now, &out)
            return
        }
        touchNode(event.nodeID, at: now, &out)
        if case .nodeStatus(let status) = event.body {
            var status = status
            status.nodeID = event.nodeID
            applyNodeStatus(status, eventTimeMs: event.timeMs, at: now, &out)
            return
        }
        if case .securityAlert(let alert) = event.body {
            let about = alert.subject.isEmpty ? "" : " (\(alert.subject))"
            raiseSecurity(
                node: event.nodeID,
                evidence: "the agent on node \(event.nodeID) reports \(alert.kind.rawValue)\(about): \(alert.detail)",
                at: now, &out)
            return
        }
        guard !event.jobID.isEmpty, let index = state.jobs[event.jobID]?.attemptIndex(event.attempt) else { return }
        // In place: most events change nothing else of the record, and a copy of it per event is most of their cost.
        guard state.jobs.modifyAttempt(event.jobID, index, { $0.sequences.insert(event.sequence) }) == true else { return }  // redelivered
        let live = isCurrent(event.jobID, index: index)
        switch event.body {
        case .checkpoint(let written):
            guard var job = state.jobs[event.jobID] else { return }
            recordCheckpoint(&job, written, attempt: event.attempt, node: event.nodeID, at: now)
            if job.history[index].drain?.isActive == true, let saved = job.checkpoints.last(where: { $0.path == written.path }) {
                job.history[index].drain?.checkpoint = saved  // saved during its stop grace: the next attempt starts here
            }
            state.jobs[event.jobID] = job
        case .exited(let exit) where !live:
            state.jobs.modifyAttempt(event.jobID, index) { $0.lastExit = exit }
        case .accepted, .started, .epoch, .step, .resources, .exited, .heartbeat, .nodeStatus, .securityAlert:
            break
        }
        if case .exited = event.body, state.jobs[event.jobID]?.history[index].drain?.isActive == true {
            gracefulStopEnded(event.jobID, attempt: event.attempt, exited: true, at: now, &out)
            return
        }
        guard live else { return }  // old attempts never trigger remediation of the current one

        let jobID = event.jobID
        let failureTime = event.timeMs > 0 ? event.timeMs : now
        switch event.body {
        case .accepted:
            update(jobID) { $0.history[index].acceptedAtMs = now }
        case .started(let started):
            jobStarted(jobID, index: index, started, at: now, &out)
        case .epoch(let metrics):
            epochEnded(jobID, index: index, metrics, failureTime: failureTime, at: now, &out)
        case .step(let step):
            progressed(jobID, index: index, at: now, &out)
            if !step.loss.isFinite {
                fail(jobID, Finding(symptom: .divergingLoss, evidence: "step \(step.step) (epoch \(step.epoch)) loss is \(step.loss)", failureTimeMs: failureTime, badEpoch: max(1, step.epoch)), processMayBeAlive: true, at: now, &out)
            }
        case .checkpoint:
            progressed(jobID, index: index, at: now, &out)
        case .resources(let sample):
            resourcesSampled(jobID, index: index, sample, failureTime: failureTime, at: now, &out)
        case .heartbeat(let beat):
            heartbeat(jobID, index: index, beat, failureTime: failureTime, at: now, &out)
        case .exited(let exit):
            exited(jobID, index: index, exit, failureTime: failureTime, at: now, &out)
        case .nodeStatus, .securityAlert:
            break
        }
    }

    /// Whether attempt `index` is the job's current one, not over, of a job not finished: only such an attempt's
    /// events lead to remediation.
    private func isCurrent(_ jobID: String, index: Int) -> Bool {
        guard let job = state.jobs[jobID] else { return false }
        return index == job.history.count - 1 && !job.history[index].isOver && !job.status.isTerminal
    }

    mutating func update(_ jobID: String, _ change: (inout JobRecord) -> Void) {
        guard var job = state.jobs[jobID] else { return }
        change(&job)
        state.jobs[jobID] = job
    }

    private mutating func recordCheckpoint(_ job: inout JobRecord, _ written: CheckpointWritten, attempt: Int, node: String, at now: Int64) {
        guard !job.checkpoints.contains(where: { $0.path == written.path && $0.sha256 == written.sha256 }) else { return }
        // Rewritten: the agent replaces its record too. The same path on the same shared root is the same file,
        // whichever node wrote it.
        let shared = written.storage?.shared == true ? written.storage?.root : nil
        job.checkpoints.removeAll { old in
            old.path == written.path && (old.nodeID == node || (shared != nil && old.storage?.shared == true && old.storage?.root == shared))
        }
        job.checkpoints.append(CheckpointRecord(
            path: written.path, epoch: written.epoch, step: written.step, sha256: written.sha256,
            sizeBytes: written.sizeBytes, attempt: attempt, nodeID: node, writtenAtMs: now, storage: written.storage))
        job.checkpoints = CheckpointPlanner.retention(job.checkpoints, keepLast: job.config.checkpoint.keepLast).keep
    }

    private mutating func jobStarted(_ jobID: String, index: Int, _ started: JobStarted, at now: Int64, _ out: inout [ControllerAction]) {
        guard var job = state.jobs[jobID] else { return }
        job.history[index].startedAtMs = now
        job.history[index].memoryLimitBytes = started.memoryLimitBytes
        job.history[index].signals.epochStartMs = now
        job.status = .running
        job.statusDetail = "running on \(job.nodeID) (attempt \(job.attempt))"
        state.jobs[jobID] = job
        state.deadlines.cancel(.startDeadline(jobID: jobID), &out)
        let budget = policy.remediation.restartBudgetResetAfter.milliseconds
        if budget > 0, job.restarts > 0 || !job.ladderSteps.isEmpty {
            state.deadlines.set(.restartBudgetReset(jobID: jobID, attempt: job.attempt), at: now + budget, &out)
        }
        let total = Int64(job.config.timeouts.totalSeconds) * 1000
        if total > 0 {
            state.deadlines.set(.attemptDeadline(jobID: jobID, attempt: job.attempt), at: now + total, &out)
        }
        // After failures, this attempt carries the fix: once it has run healthy, the series is fixed (and the job's
        // incident resolves itself).
        let healthy = policy.escalation.resolveAfterHealthy.milliseconds
        if healthy > 0, job.firstFailureMs > 0 { state.deadlines.set(.healthyFor(jobID: jobID, attempt: job.attempt), at: now + healthy, &out) }
        guard !job.incidentID.isEmpty, state.incidents[job.incidentID]?.status != .resolved else { return }
        if job.history.allSatisfy({ $0.symptom == nil || $0.symptom == .stuckQueued }) {
            // Stuck queued was all that was wrong: it is not any more.
            autoResolveJob(jobID, because: "job \(jobID) started on \(job.nodeID) (attempt \(job.attempt)); no longer stuck queued", notices: false, at: now, &out)
            return
        }
        updateJobIncident(jobID, status: "attempt \(job.attempt) running on \(job.nodeID)", at: now, &out)
    }

    /// An epoch, step or checkpoint: the attempt is alive and reporting. The first report arms the hang and
    /// epoch checks (jobs that never report are judged by exit status and resources only).
    private mutating func progressed(_ jobID: String, index: Int, at now: Int64, _ out: inout [ControllerAction]) {
        let first = state.jobs.modifyAttempt(jobID, index) { attempt -> Bool in
            let first = attempt.signals.lastProgressMs == 0
            attempt.signals.lastProgressMs = now
            if attempt.signals.epochStartMs == 0 { attempt.signals.epochStartMs = now }
            return first
        }
        guard first == true, let job = state.jobs[jobID] else { return }
        let attempt = job.attempt
        state.deadlines.set(.progressDeadline(jobID: jobID, attempt: attempt), at: now + heartbeatWindow(job), &out)
        let epochLimit = Int64(job.config.timeouts.perEpochSeconds) * 1000
        if epochLimit > 0 {
            state.deadlines.set(.epochDeadline(jobID: jobID, attempt: attempt), at: job.history[index].signals.epochStartMs + epochLimit, &out)
        }
    }

    func heartbeatWindow(_ job: JobRecord) -> Int64 {
        job.config.timeouts.heartbeatSeconds > 0 ? Int64(job.config.timeouts.heartbeatSeconds) * 1000 : policy.detection.heartbeatWindow.milliseconds
    }

    private mutating func epochEnded(_ jobID: String, index: Int, _ m: EpochMetrics, failureTime: Int64, at now: Int64, _ out: inout [ControllerAction]) {
        progressed(jobID, index: index, at: now, &out)
        guard var job = state.jobs[jobID] else { return }
        job.history[index].lastMetrics = m
        job.maxEpochSeen = max(job.maxEpochSeen, m.epoch)
        let signals = job.history[index].signals.loss.observe(m, policy: policy.detection)
        state.jobs[jobID] = job
        for signal in signals {
            if case .diverging(let evidence, let badEpoch) = signal {
                fail(jobID, Finding(symptom: .divergingLoss, evidence: evidence, failureTimeMs: failureTime, badEpoch: badEpoch), processMayBeAlive: true, at: now, &out)
                return
            }
        }
        let epochLimit = Int64(job.config.timeouts.perEpochSeconds) * 1000
        let took = Int64(millisecondsSaturating: m.durationSeconds)
        if epochLimit > 0, took > epochLimit {
            fail(jobID, Finding(symptom: .timeout, evidence: "epoch \(m.epoch) took \(Timestamp.duration(took)), limit \(Timestamp.duration(epochLimit))", failureTimeMs: failureTime), processMayBeAlive: true, at: now, &out)
            return
        }
        job.history[index].signals.epochStartMs = now
        state.jobs[jobID] = job
        state.correlation.recordHealthy(
            HealthyObservation(jobID: jobID, nodeID: job.nodeID, kind: job.kind, timeMs: now),
            keepSince: now - correlationHorizon)
        for signal in signals {
            switch signal {
            case .diverging:
                break
            case .plateau(let evidence):
                notice(jobID, symptom: .poorPerformance, key: "plateau", evidence: evidence, rule: "detection.poorPerformance: notify, no restart", at: now, &out)
            case .validationGap(let evidence):
                notice(jobID, symptom: .poorPerformance, key: "validation-gap", evidence: evidence, rule: "detection.poorPerformance.validationGapRatio: notify, no restart", at: now, &out)
            }
        }
    }

    private mutating func resourcesSampled(_ jobID: String, index: Int, _ sample: ResourceSample, failureTime: Int64, at now: Int64, _ out: inout [ControllerAction]) {
        guard let limit = state.jobs.modifyAttempt(jobID, index, { attempt in
            if sample.memoryLimitBytes > 0 { attempt.memoryLimitBytes = sample.memoryLimitBytes }
            return attempt.memoryLimitBytes
        }) else { return }
        if limit > 0, Double(sample.memoryUsedBytes) >= policy.detection.memoryLimitFraction * Double(limit) {
            fail(jobID, Finding(
                symptom: .outOfMemory,
                evidence: "memory \(ByteCount.human(sample.memoryUsedBytes)) reached the limit of \(ByteCount.human(limit))",
                failureTimeMs: failureTime), processMayBeAlive: true, at: now, &out)
            return
        }
        let threshold = policy.detection.resourcePressureThreshold
        let pressure = ResourcePressure.of(sample, memoryLimit: limit, threshold: threshold)
        for (kind, evidence) in pressure {
            notice(jobID, symptom: .resourcePressure, key: "pressure-\(kind.rawValue)", evidence: evidence, rule: "detection.resourcePressureThreshold: notify before the OOM, no restart", at: now, &out)
        }
        for kind in ResourcePressure.measured(sample, memoryLimit: limit) where !pressure.contains(where: { $0.0 == kind }) {
            autoResolveNotice(jobID, key: "pressure-\(kind.rawValue)",
                              because: "\(kind.rawValue) of job \(jobID) back at or below \(Int(threshold * 100))% in the sample of \(Timestamp.iso8601(now))", at: now, &out)
        }
    }

    private mutating func heartbeat(_ jobID: String, index: Int, _ beat: Heartbeat, failureTime: Int64, at now: Int64, _ out: inout [ControllerAction]) {
        let silent = Int64(millisecondsSaturating: beat.secondsSinceProgress)
        // The last sign of life the beat vouches for: a trainer's own heartbeat says "now".
        state.jobs.modifyAttempt(jobID, index) { $0.signals.lastHeartbeatMs = max($0.signals.lastHeartbeatMs, now.subtractingSaturated(max(0, silent))) }
        guard let job = state.jobs[jobID] else { return }
        let window = heartbeatWindow(job)
        if job.status == .running, job.history[index].signals.lastProgressMs > 0, silent >= window {
            fail(jobID, Finding(
                symptom: .hang,
                evidence: "the agent reports no progress for \(Timestamp.duration(silent)) while the process is alive (window \(Timestamp.duration(window)))",
                failureTimeMs: failureTime.subtractingSaturated(silent)), processMayBeAlive: true, at: now, &out)
        }
    }

    private mutating func exited(_ jobID: String, index: Int, _ exit: JobExited, failureTime: Int64, at now: Int64, _ out: inout [ControllerAction]) {
        guard var job = state.jobs[jobID] else { return }
        job.history[index].lastExit = exit
        state.jobs[jobID] = job
        if exit.failureClass == .checkpointUnavailable, !exit.stopRequested, checkpointUnavailable(jobID, index: index, exit, at: now, &out) {
            return
        }
        switch ExitClassifier.classify(exit, at: failureTime, expectedEpochs: job.config.epochs, epochsReached: job.maxEpochSeen,
                                       nodeID: job.history[index].nodeID) {
        case .completed:
            complete(jobID, at: now, &out)
        case .stopped:
            endAttempt(jobID, outcome: "stopped outside the controller (the agent reported a stop request)", at: now, &out)
            update(jobID) { job in
                job.status = .stopped
                job.statusDetail = "stopped outside the controller"
                job.desiredNode = ""
            }
            jobFinished(jobID, Reason(symptom: "job stopped", evidence: "the agent reported a stop request", rule: "a finished job leaves the desired state"), at: now, &out)
            placeWaitingJobs(at: now, &out)
        case .failed(var finding):
            if finding.symptom == .divergingLoss, finding.badEpoch == nil {
                // The trainer, not the epoch metrics, says it diverged: resume from before the loss began to rise.
                // Without metrics only the line up to where this attempt resumed is trusted.
                let record = job.history[index]
                let rise = record.signals.loss.riseStartAtExit() ?? record.resumeCheckpoint.map { $0.epoch.addingSaturated(1) } ?? 1
                finding.badEpoch = rise
                finding.evidence += "; checkpoints from epoch \(rise) on are suspect"
            }
            fail(jobID, finding, processMayBeAlive: false, at: now, &out)
        }
    }

    /// The agent could not find, or verify, the checkpoint the attempt was told to resume from (deleted, changed, or
    /// on storage the node does not have). That checkpoint is dropped, never resumed from again, and the job is placed
    /// again with the same config from the next valid checkpoint of its line or from scratch: not charged a restart,
    /// not counted against the node or the dataset. Each report drops one checkpoint, so it ends. False when the
    /// attempt resumed from no checkpoint the core chose (then it is an ordinary failure).
    private mutating func checkpointUnavailable(_ jobID: String, index: Int, _ exit: JobExited, at now: Int64, _ out: inout [ControllerAction]) -> Bool {
        guard let record = state.jobs[jobID]?.history[index], let lost = record.resumeCheckpoint else { return false }
        let (attempt, node) = (record.attempt, record.nodeID)
        let evidence = "attempt \(attempt) on \(node): \(exit.detail)"
        endAttempt(jobID, outcome: "checkpoint unavailable — \(exit.detail)", at: now, &out)
        guard var job = state.jobs[jobID] else { return true }
        job.history[index].failureClass = .checkpointUnavailable
        job.checkpoints.removeAll { $0.path == lost.path && $0.nodeID == lost.nodeID && $0.sha256 == lost.sha256 }
        job.status = .queued
        job.nodeID = ""
        job.statusDetail = "attempt \(attempt) could not start: checkpoint \(CheckpointPlanner.name(lost)) unavailable on \(node)"
        let plan = PendingAttempt(
            config: job.config, action: "resume from another checkpoint: \(CheckpointPlanner.name(lost)) unavailable on \(node)", configChange: "",
            reason: Reason(symptom: "checkpoint unavailable", evidence: evidence,
                           rule: "a checkpoint its node cannot find or verify is never resumed from again: the next valid checkpoint of the line, or a fresh start, not charged a restart"),
            symptom: nil, dueMs: now, excludeNodes: [], preferNode: node, resumeBeforeEpoch: nil)
        job.remediation.append(RemediationStep(timeMs: now, jobID: jobID, attempt: attempt + 1, failureClass: .checkpointUnavailable, action: plan.action))
        state.jobs[jobID] = job
        queueAttempt(jobID, plan, at: now, &out)
        placeWaitingJobs(at: now, &out)
        return true
    }

    private mutating func complete(_ jobID: String, at now: Int64, _ out: inout [ControllerAction]) {
        endAttempt(jobID, outcome: "completed", at: now, &out)
        endFailureSeries(jobID, .fixed, fixedAtMs: state.jobs[jobID]?.current.map { $0.startedAtMs > 0 ? $0.startedAtMs : now } ?? now, &out)
        guard var job = state.jobs[jobID] else { return }
        job.status = .completed
        job.statusDetail = job.attempt == 1 ? "completed" : "completed on attempt \(job.attempt)"
        state.jobs[jobID] = job
        state.correlation.recordHealthy(
            HealthyObservation(jobID: jobID, nodeID: job.nodeID, kind: job.kind, timeMs: now),
            keepSince: now - correlationHorizon)
        autoResolveJob(jobID, because: "job \(jobID) completed on attempt \(job.attempt)", notices: true, at: now, &out)
        // A bad node an operator put back into service is healthy again once a job completes there.
        if let node = state.nodes[job.nodeID], !node.cordoned, let badNode = state.incidents.open(forKey: "bad_node:\(node.id)"),
           job.history.last?.assignedAtMs ?? 0 >= node.evidenceSinceMs ?? .max {
            resolveIncident(badNode.id, by: Self.automatic,
                            rootCause: "auto-resolved: node \(node.id) healthy again: job \(jobID) completed there after it was put back into service", at: now, &out)
        }
        jobFinished(jobID, Reason(symptom: "job completed", evidence: "job \(jobID) completed on attempt \(job.attempt)", rule: "a finished job leaves the desired state"), at: now, &out)
        placeWaitingJobs(at: now, &out)
    }

    /// Closes the current attempt: its outcome, the outcome of the step that created it, its timers.
    mutating func endAttempt(_ jobID: String, outcome: String, symptom: Symptom? = nil, at now: Int64, _ out: inout [ControllerAction]) {
        guard var job = state.jobs[jobID], let index = job.history.indices.last, !job.history[index].isOver else { return }
        let attempt = job.history[index].attempt
        job.history[index].endedAtMs = now
        job.history[index].outcome = outcome
        if let symptom {
            job.history[index].symptom = symptom
            job.history[index].failureClass = symptom.failureClass
        }
        for i in job.remediation.indices where job.remediation[i].attempt == attempt && job.remediation[i].outcome.isEmpty {
            job.remediation[i].outcome = symptom.map { "failed again: \($0.title)" } ?? outcome
        }
        state.jobs[jobID] = job
        state.deadlines.cancel(.startDeadline(jobID: jobID), &out)
        state.deadlines.cancel(.progressDeadline(jobID: jobID, attempt: attempt), &out)
        state.deadlines.cancel(.epochDeadline(jobID: jobID, attempt: attempt), &out)
        state.deadlines.cancel(.attemptDeadline(jobID: jobID, attempt: attempt), &out)
        state.deadlines.cancel(.healthyFor(jobID: jobID, attempt: attempt), &out)
        state.deadlines.cancel(.restartBudgetReset(jobID: jobID, attempt: attempt), &out)
    }

    // MARK: - Failure and remediation

    /// The current attempt failed: record it, let the fleet rules see it, then decide the job's next step.
    mutating func fail(_ jobID: String, _ finding: Finding, processMayBeAlive: Bool, at now: Int64, _ out: inout [ControllerAction]) {
        guard let before = state.jobs[jobID], let record = before.current, !record.isOver, !before.status.isTerminal else { return }
        let node = record.nodeID
        endAttempt(jobID, outcome: "failed: \(finding.symptom.title) — \(finding.evidence)", symptom: finding.symptom, at: now, &out)
        guard var job = state.jobs[jobID] else { return }
        if job.firstFailureMs == 0 { job.firstFailureMs = finding.failureTimeMs }
        if processMayBeAlive, !job.desiredNode.isEmpty {
            out.append(.stop(
                jobID: jobID, nodeID: job.desiredNode, attempt: record.attempt,
                reason: Reason(finding.symptom, evidence: "attempt \(record.attempt) on \(node): \(finding.evidence)", rule: "a failed attempt is stopped before its next step is decided")))
            job.desiredNode = ""
        }
        job.status = .queued
        job.nodeID = ""
        job.statusDetail = "attempt \(record.attempt) failed: \(finding.symptom.title)"
        state.jobs[jobID] = job

        let observation = FailureObservation(
            jobID: jobID, attempt: record.attempt, nodeID: node, dataset: job.config.dataset, kind: job.kind,
            symptom: finding.symptom, timeMs: now)
        state.correlation.record(observation, keepSince: now - correlationHorizon)
        if let fault = finding.nodeResource {
            nodeResourceRule(fault, finding, jobID: jobID, node: node, at: now, &out)
        }
        correlate(observation, at: now, &out)
        remediate(jobID, finding, failedNode: node, attempt: record.attempt, at: now, &out)
        placeWaitingJobs(at: now, &out)
    }

    private mutating func remediate(_ jobID: String, _ finding: Finding, failedNode: String, attempt: Int, at now: Int64, _ out: inout [ControllerAction]) {
        guard var job = state.jobs[jobID] else { return }
        let symptom = finding.symptom
        let evidence = "attempt \(attempt) on \(failedNode.isEmpty ? "no node" : failedNode): \(finding.evidence)"
        func sameConfig(_ action: String, _ rule: String, exclude: [String]) -> PendingAttempt {
            PendingAttempt(
                config: job.config, action: action, configChange: "", reason: Reason(symptom, evidence: evidence, rule: rule),
                symptom: symptom, dueMs: now, excludeNodes: exclude, preferNode: "", resumeBeforeEpoch: finding.badEpoch)
        }

        // The fleet explains the failure: act on the cause, not on the job's config.
        // A node resource fault blames the node whatever the bad-node rule's symptoms: the job moves without using a
        // rung or a restart, avoiding every node whose storage failed it.
        let resourceFault = finding.nodeResource != nil && policy.correlation.nodeResource.enabled
        if let badNode = state.incidents.open(forKey: "bad_node:\(failedNode)"), resourceFault || policy.correlation.badNode.symptoms.contains(symptom) {
            let exclude = resourceFault
                ? orderedUnique(job.history.filter { $0.symptom == .nodeFault && $0.nodeID != "" }.map(\.nodeID) + [failedNode])
                : [failedNode]
            let rule = resourceFault
                ? "correlation.nodeResource: a job whose node's storage failed it moves to another node, not charged a restart"
                : "correlation.badNode: re-place the jobs of a bad node"
            let plan = sameConfig("re-place: node \(failedNode) is a bad node (\(badNode.id))", rule, exclude: exclude)
            job.remediation.append(RemediationStep(timeMs: now, jobID: jobID, attempt: job.attempt + 1, failureClass: symptom.failureClass, action: plan.action))
            state.jobs[jobID] = job
            queueAttempt(jobID, plan, at: now, &out)
            return
        }
        if !job.config.dataset.isEmpty, let dataset = state.datasets[job.config.dataset], dataset.retriesPaused {
            let plan = sameConfig("resume after dataset \(dataset.id) is resumed", "correlation.badDataset: retries of jobs on \(dataset.id) are paused (\(dataset.pausedByIncident))", exclude: [])
            hold(jobID, .dataset(dataset.id), plan: plan, at: now, &out)
            noteFleetIncident(dataset.pausedByIncident, "job \(jobID) failed (\(symptom.title)) and is held: retries on \(dataset.id) are paused", at: now)
            return
        }
        if let freeze = freezingIncident(for: symptom) {
            let plan = sameConfig("restart after \(freeze) is resolved", "correlation.systemResource: config changes for \(symptom.rawValue) are frozen fleet-wide (\(freeze))", exclude: [])
            hold(jobID, .frozen(symptom), plan: plan, at: now, &out)
            noteFleetIncident(freeze, "job \(jobID) failed (\(symptom.title)) and is held until this incident is resolved", at: now)
            return
        }

        guard let ladderPolicy = policy.remediation.ladders.ladder(for: symptom) else { return }
        let ladderName = "remediation.ladders.\(symptom.rawValue)"
        if job.restarts >= policy.remediation.maxRestartsPerJob {
            giveUp(jobID, finding, level: ladderPolicy.escalateTo, severity: ladderPolicy.severity,
                   status: "failed: restart budget of \(policy.remediation.maxRestartsPerJob) used up; no automatic retries left",
                   rule: "remediation.maxRestartsPerJob exhausted → escalate to \(ladderPolicy.escalateTo.rawValue)", at: now, &out)
            return
        }
        let position = job.ladderSteps[symptom.rawValue] ?? 0
        guard let step = RemediationLadder.next(ladderPolicy, position: position, config: job.config, context: remediationContext(job)) else {
            if ladderPolicy.steps.isEmpty {
                giveUp(jobID, finding, level: ladderPolicy.escalateTo, severity: ladderPolicy.severity,
                       status: "failed: not retried — retrying cannot help with \(symptom.title)",
                       rule: "\(ladderName) has no steps → escalate to \(ladderPolicy.escalateTo.rawValue) at once", at: now, &out)
            } else {
                giveUp(jobID, finding, level: ladderPolicy.escalateTo, severity: ladderPolicy.severity,
                       status: "failed: \(symptom.title) ladder exhausted after \(ladderPolicy.steps.count) steps; no automatic retries left",
                       rule: "\(ladderName) exhausted → escalate to \(ladderPolicy.escalateTo.rawValue)", at: now, &out)
            }
            return
        }
        job.ladderSteps[symptom.rawValue] = step.index + 1
        let delay = step.remedy == .replace ? 0 : policy.remediation.backoff.delay(restartsSoFar: job.restarts)
        job.restarts += 1
        let skipped = step.skipped.isEmpty ? "" : " (skipped, nothing to change: \(step.skipped.map(\.description).joined(separator: "; ")))"
        let rule = "\(ladderName) step \(step.index + 1) of \(ladderPolicy.steps.count): \(step.remedy.description)\(skipped)"
        job.remediation.append(RemediationStep(
            timeMs: now, jobID: jobID, attempt: job.attempt + 1, failureClass: symptom.failureClass,
            action: step.remedy.description, configChange: step.change.summary))
        state.jobs[jobID] = job
        let isReplace = step.remedy == .replace
        // A re-placement avoids every node this job already failed on for the same symptom.
        let avoid = isReplace ? orderedUnique(job.history.filter { $0.symptom == symptom }.map(\.nodeID) + [failedNode]) : []
        let plan = PendingAttempt(
            config: step.change.config, action: "\(symptom.title): \(step.remedy.description)", configChange: step.change.summary,
            reason: Reason(symptom, evidence: evidence, rule: step.change.summary.isEmpty ? rule : "\(rule) — \(step.change.summary)"),
            symptom: symptom, dueMs: now + delay, excludeNodes: avoid,
            preferNode: isReplace ? "" : failedNode, resumeBeforeEpoch: finding.badEpoch)
        queueAttempt(jobID, plan, at: now, &out)
        if case .dataQualityCheck(let level) = step.remedy {
            escalateJob(jobID, finding, level: level, severity: ladderPolicy.severity,
                        status: "restarting as attempt \(job.attempt + 1) with a data-quality check; data quality suspected",
                        rule: "\(ladderName) step \(step.index + 1): request a data-quality check and escalate to \(level.rawValue)", at: now, &out)
        } else {
            updateJobIncident(jobID, status: "attempt \(attempt) failed (\(symptom.title)); attempt \(job.attempt + 1): \(step.remedy.description)", at: now, &out)
        }
    }

    /// No automatic step is left: the job fails and its incident says why.
    private mutating func giveUp(_ jobID: String, _ finding: Finding, level: EscalationLevel, severity: Severity, status: String, rule: String, at now: Int64, _ out: inout [ControllerAction]) {
        update(jobID) { job in
            job.status = .failed
            job.statusDetail = status
            job.pending = nil
        }
        state.deadlines.cancel(.restartDue(jobID: jobID), &out)
        state.deadlines.cancel(.startDeadline(jobID: jobID), &out)
        endFailureSeries(jobID, .failed, fixedAtMs: now, &out)
        escalateJob(jobID, finding, level: level, severity: severity, status: status, rule: rule, at: now, &out)
        jobFinished(jobID, Reason(finding.symptom, evidence: status, rule: "a failed job leaves the desired state"), at: now, &out)
    }

    /// The job reached a terminal status: no key of it stays in `archon_desired`, and it leaves the hot
    /// state once `retention.finished` has passed.
    mutating func jobFinished(_ jobID: String, _ reason: Reason, at now: Int64, _ out: inout [ControllerAction]) {
        guard var job = state.jobs[jobID], job.status.isTerminal else { return }
        if !job.desiredNode.isEmpty, !job.isDraining {  // a draining attempt's key goes once it has exited
            out.append(.stop(jobID: jobID, nodeID: job.desiredNode, attempt: job.attempt, reason: reason))
            job.desiredNode = ""
            state.jobs[jobID] = job
        }
        state.deadlines.set(.archiveJob(jobID: jobID), at: now + policy.retention.finished.milliseconds, &out)
    }

    /// Parks the job: its next attempt waits for an operator (dataset) or a resolution (freeze).
    mutating func hold(_ jobID: String, _ hold: JobHold, plan: PendingAttempt?, at now: Int64, _ out: inout [ControllerAction]) {
        guard var job = state.jobs[jobID] else { return }
        if let plan { job.pending = plan }
        job.hold = hold
        job.status = .paused
        job.nodeID = ""
        switch hold {
        case .dataset(let id): job.statusDetail = "paused: retries of jobs on dataset \(id) are paused"
        case .frozen(let symptom): job.statusDetail = "paused: config changes for \(symptom.title) are frozen fleet-wide"
        }
        state.jobs[jobID] = job
        state.deadlines.cancel(.restartDue(jobID: jobID), &out)
        state.deadlines.cancel(.startDeadline(jobID: jobID), &out)
    }

    /// Releases held jobs: their pending attempt is due now.
    mutating func release(where matches: (JobHold) -> Bool, at now: Int64, _ out: inout [ControllerAction]) {
        let held = state.jobs.held.compactMap { state.jobs[$0] }.filter { $0.hold.map(matches) ?? false }.sorted { $0.spec.id < $1.spec.id }
        for job in held {
            let id = job.spec.id
            update(id) { job in
                job.hold = nil
                job.status = .queued
                job.pending?.dueMs = now
            }
            if let plan = state.jobs[id]?.pending {
                queueAttempt(id, plan, at: now, &out)
            }
        }
    }

    func remediationContext(_ job: JobRecord) -> RemediationContext {
        let cap = policy.remediation.maxMemoryRequest.bytes > 0
            ? policy.remediation.maxMemoryRequest.bytes
            : (state.nodes.values.map(\.capacity.memoryBytes).max() ?? 0)
        return RemediationContext(
            defaultMemoryRequest: policy.remediation.defaultMemoryRequest.bytes,
            maxMemoryRequest: cap,
            observedMemoryLimit: job.current?.memoryLimitBytes ?? 0,
            gpuUpgrades: policy.remediation.gpuUpgrades,
            defaultEpochTimeout: policy.detection.epochTimeout,
            defaultTotalTimeout: policy.detection.totalTimeout, minLearningRate: policy.remediation.minLearningRate)
    }

    /// An operator stopped the job.
    /// An attempt still running gets its stop grace to save a checkpoint before it is killed.
    mutating func stopJob(_ jobID: String, by who: String, at now: Int64, _ out: inout [ControllerAction]) {
        guard let job = state.jobs[jobID], !job.status.isTerminal else { return }
        let reason = Reason(symptom: "operator action", evidence: "\(who) stopped job \(jobID)", rule: "operator stop")
        let wasRunning = !(job.current?.isOver ?? true)
        endAttempt(jobID, outcome: "stopped by \(who)", at: now, &out)
        // An attempt already draining (a move) keeps its grace; its key goes once it has exited.
        var graceful = job.isDraining
        if !graceful, !job.desiredNode.isEmpty {
            graceful = wasRunning && beginGracefulStop(jobID, why: "stopped by \(who)", reason: reason, at: now, &out)
            if !graceful { out.append(.stop(jobID: jobID, nodeID: job.desiredNode, attempt: job.attempt, reason: reason)) }
        }
        let grace = Timestamp.duration(stopGraceMs(job))
        update(jobID) { job in
            job.status = .stopped
            job.statusDetail = graceful ? "stopped by \(who); attempt \(job.attempt) has up to \(grace) to save a checkpoint and exit" : "stopped by \(who)"
            job.pending = nil
            job.hold = nil
            if !graceful { job.desiredNode = "" }
        }
        state.deadlines.cancel(.restartDue(jobID: jobID), &out)
        state.deadlines.cancel(.startDeadline(jobID: jobID), &out)
        endFailureSeries(jobID, .stopped, fixedAtMs: now, &out)
        autoResolveJob(jobID, because: "job \(jobID) stopped by \(who)", notices: true, at: now, &out)
        jobFinished(jobID, reason, at: now, &out)
        placeWaitingJobs(at: now, &out)
    }
}
