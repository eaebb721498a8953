import ArchonModel

// Fleet correlation: what no single-job tool sees. Every rule counts distinct jobs or nodes, never events.
extension FleetController {
    /// The longest rule window: how far back failures are kept.
    var correlationHorizon: Int64 {
        let c = policy.correlation
        return [c.badNode.window, c.badDataset.window, c.systemResource.window, c.multiAgent.window, c.security.window]
            .map(\.milliseconds).max() ?? 0
    }

    /// When the cause behind a fleet rule's incident key (`bad_node:<n>`, `bad_dataset:<d>`, or a fleet-wide key) was
    /// last repaired (``clearEvidence(_:at:)``); nil = never: every failure in the window counts.
    func repairedAt(_ scope: String) -> Int64? {
        switch EvidenceScope(scope) {
        case .node(let id): state.nodes[id]?.evidenceSinceMs
        case .dataset(let id): state.datasets[id]?.evidenceSinceMs
        case .fleet(let key): state.evidenceSince[key]
        case nil: nil
        }
    }

    /// The first time failures count for the fleet rule whose incident key is `scope`: the window's start, or later
    /// when the cause was repaired since.
    func evidenceStart(_ scope: String, window: PolicyDuration, at now: Int64) -> Int64 {
        Swift.max(now - window.milliseconds, repairedAt(scope).map { $0 + 1 } ?? .min)
    }

    /// Nodes heard from: what fleet-relative thresholds are fractions of. O(nodes), like placement.
    var onlineNodeCount: Int { state.nodes.values.reduce(0) { $0 + ($1.health == .online ? 1 : 0) } }

    /// The distinct nodes a fleet-wide rule needs: its minimum, or `fraction` of the `online` nodes when more.
    func distinctNodesNeeded(minimum: Int, fraction: Double, online: Int) -> Int {
        let share = (fraction * Double(online)).rounded(.up)
        return Swift.max(minimum, share.isFinite ? Int(share) : minimum)
    }

    /// The cause behind a fleet rule's incident key was repaired (a node uncordoned, a dataset resumed, an incident
    /// resolved): the failures it answered no longer count, so the next failure is judged on new evidence only.
    mutating func clearEvidence(_ scope: String, at now: Int64) {
        switch EvidenceScope(scope) {
        case .node(let id):
            if var node = state.nodes[id] {
                node.evidenceSinceMs = now
                state.nodes[id] = node
            }
        case .dataset(let id):
            if var dataset = state.datasets[id] {
                dataset.evidenceSinceMs = now
                state.datasets[id] = dataset
            }
        case .fleet(let key):
            state.evidenceSince[key] = now  // a handful of keys, never one per node or job
        case nil:
            break
        }
    }

    /// Runs every rule on a new failure, most specific first; the multi-agent rule sees only what the others
    /// left unexplained.
    mutating func correlate(_ failure: FailureObservation, at now: Int64, _ out: inout [ControllerAction]) {
        badNodeRule(failure, at: now, &out)
        badDatasetRule(failure, at: now, &out)
        systemResourceRule(failure, at: now, &out)
        permissionRule(failure, at: now, &out)
        multiAgentRule(at: now, &out)
    }

    private func describe(_ failures: [FailureObservation]) -> String {
        var seen: Set<String> = []
        var parts: [String] = []
        for f in failures where seen.insert(f.jobID).inserted {
            parts.append("\(f.jobID) (\(f.symptom.title) on \(f.nodeID.isEmpty ? "no node" : f.nodeID))")
        }
        return parts.joined(separator: ", ")
    }

    // MARK: Bad node

    private mutating func badNodeRule(_ failure: FailureObservation, at now: Int64, _ out: inout [ControllerAction]) {
        let rule = policy.correlation.badNode
        let node = failure.nodeID
        guard rule.enabled, !node.isEmpty, rule.symptoms.contains(failure.symptom) else { return }
        let since = now - rule.window.milliseconds
        let failures = state.correlation.failures(since: evidenceStart("bad_node:\(node)", window: rule.window, at: now)) {
            $0.nodeID == node && rule.symptoms.contains($0.symptom)
        }
        let jobs = Array(Set(failures.map(\.jobID))).sorted()
        guard jobs.count >= rule.minDistinctJobs else { return }
        let kinds = Array(Set(failures.map(\.kind))).sorted()
        var healthyNote = ""
        if rule.requireHealthyElsewhere {
            guard kinds.allSatisfy({ state.correlation.healthyElsewhere(kind: $0, excluding: node, since: since) }) else { return }
            let names = kinds.map { $0.isEmpty ? "unlabelled" : "'\($0)'" }.joined(separator: ", ")
            healthyNote = "; jobs of the same kind (\(names)) ran healthy on other nodes"
        }
        let evidence = "\(jobs.count) distinct jobs failed on \(node) within \(rule.window): \(describe(failures))\(healthyNote)"
        let reason = Reason(symptom: "bad node", evidence: evidence, rule: "correlation.badNode: ≥ \(rule.minDistinctJobs) distinct jobs fail on one node within \(rule.window) → cordon, re-place its jobs, escalate to \(rule.level.rawValue)")
        let key = "bad_node:\(node)"
        var steps: [RemediationStep] = []
        var moved = 0
        if state.incidents.open(forKey: key) == nil {
            if var record = state.nodes[node], !record.cordoned {
                record.cordoned = true
                record.cordonReason = "bad node: \(evidence)"
                state.nodes[node] = record
                out.append(.cordon(nodeID: node, reason: reason))
            }
            steps.append(RemediationStep(timeMs: now, jobID: "", attempt: 0, failureClass: .nodeFault, action: "cordoned node \(node)", outcome: "no new jobs placed on \(node)"))
            let active = state.jobs.active(on: node).sorted()
            for jobID in active {
                if let step = relocate(jobID, awayFrom: node, reason: reason, at: now, &out) {
                    steps.append(step)
                    moved += 1
                }
            }
        }
        let id = state.incidents.raise(
            IncidentDraft(
                dedupKey: key, cause: .badNode, level: rule.level, severity: rule.severity,
                subject: "Training Failure Escalation - node \(node)", nodes: [node], jobs: jobs,
                failureTimeMs: failures.first?.timeMs ?? now, symptoms: [evidence], steps: steps,
                currentStatus: "node \(node) cordoned; its jobs re-placed on other nodes; uncordon it once repaired",
                impact: "\(jobs.count) jobs failed on \(node)\(moved > 0 ? "; \(moved) jobs moved off it" : "")"),
            reason: reason, at: now, ladder: ladder, deadlines: &state.deadlines, out: &out)
        attachJobIncidents(jobs, to: id, at: now, &out)
    }

    // MARK: Node resource

    /// A job failed for its node's storage (disk full, checkpoint folder not writable): one job is evidence enough,
    /// because the agent saw the node's own resource fail. The node's bad-node incident reports it (and the cordon,
    /// per policy); `remediate` then moves the job. Other jobs on the node are not stopped: each that fails the same
    /// way is moved when it does.
    mutating func nodeResourceRule(_ fault: NodeResourceFault, _ finding: Finding, jobID: String, node: String, at now: Int64, _ out: inout [ControllerAction]) {
        let rule = policy.correlation.nodeResource
        guard rule.enabled, !node.isEmpty else { return }
        let evidence = finding.evidence
        let action = rule.cordon ? "cordon the node" : "report the node"
        let reason = Reason(
            symptom: "node resource fault (\(fault.rawValue))", evidence: "job \(jobID): \(evidence)",
            rule: "correlation.nodeResource: a job failed by its node's storage → \(action), move the job, escalate to \(rule.level.rawValue)")
        var steps: [RemediationStep] = []
        if rule.cordon, var record = state.nodes[node], !record.cordoned {
            record.cordoned = true
            record.cordonReason = "\(fault.rawValue): \(evidence)"
            state.nodes[node] = record
            out.append(.cordon(nodeID: node, reason: reason))
            steps.append(RemediationStep(timeMs: now, jobID: "", attempt: 0, failureClass: .nodeFault, action: "cordoned node \(node) (\(fault.rawValue))", outcome: "no new jobs placed on \(node)"))
        }
        let cordoned = state.nodes[node]?.cordoned == true
        let id = state.incidents.raise(
            IncidentDraft(
                dedupKey: "bad_node:\(node)", cause: .badNode, level: rule.level, severity: rule.severity,
                subject: "Training Failure Escalation - node \(node)", nodes: [node], jobs: [jobID],
                failureTimeMs: finding.failureTimeMs, symptoms: [evidence], steps: steps,
                currentStatus: cordoned
                    ? "node \(node) cordoned (\(fault.rawValue)); jobs that fail there are moved to other nodes; fix its storage, then uncordon it"
                    : "jobs that fail on node \(node) are moved to other nodes; fix its storage",
                impact: "jobs on \(node) cannot write their checkpoints", logTail: Array(finding.logTail.suffix(policy.escalation.logTailLines))),
            reason: reason, at: now, ladder: ladder, deadlines: &state.deadlines, out: &out)
        attachJobIncidents([jobID], to: id, at: now, &out)
    }

    /// Moves a job off a bad node with the same config: its attempt there gets its stop grace to save a checkpoint,
    /// and the next attempt, elsewhere, resumes from it.
    private mutating func relocate(_ jobID: String, awayFrom node: String, reason: Reason, at now: Int64, _ out: inout [ControllerAction]) -> RemediationStep? {
        guard let attempt = state.jobs[jobID]?.current?.attempt,
              move(jobID, off: node, outcome: "moved off \(node): bad node", action: "re-place: node \(node) is a bad node",
                   symptom: .nodeFault, reason: reason, at: now, &out),
              var moved = state.jobs[jobID]
        else { return nil }
        let step = RemediationStep(timeMs: now, jobID: jobID, attempt: attempt + 1, failureClass: .nodeFault, action: "re-placed off bad node \(node) with the same config")
        moved.remediation.append(step)
        state.jobs[jobID] = moved
        return step
    }

    // MARK: Bad dataset

    private mutating func badDatasetRule(_ failure: FailureObservation, at now: Int64, _ out: inout [ControllerAction]) {
        let rule = policy.correlation.badDataset
        let dataset = failure.dataset
        guard rule.enabled, !dataset.isEmpty, rule.symptoms.contains(failure.symptom) else { return }
        let failures = state.correlation.failures(since: evidenceStart("bad_dataset:\(dataset)", window: rule.window, at: now)) {
            $0.dataset == dataset && rule.symptoms.contains($0.symptom)
        }
        let jobs = Array(Set(failures.map(\.jobID))).sorted()
        guard jobs.count >= rule.minDistinctJobs else { return }
        let evidence = "\(jobs.count) distinct jobs reading \(dataset) failed with data-related or divergence symptoms within \(rule.window): \(describe(failures))"
        let reason = Reason(symptom: "bad dataset / data corruption suspected", evidence: evidence, rule: "correlation.badDataset: ≥ \(rule.minDistinctJobs) jobs on one dataset fail → pause retries on it, escalate to \(rule.level.rawValue)")
        let key = "bad_dataset:\(dataset)"
        var steps: [RemediationStep] = []
        let first = state.incidents.open(forKey: key) == nil
        if first {
            var record = state.datasets[dataset] ?? DatasetRecord(dataset: Dataset(id: dataset, status: .unavailable), registeredAtMs: now)
            if !record.retriesPaused {
                record.retriesPaused = true
                state.datasets[dataset] = record
                out.append(.pauseRetries(dataset: dataset, reason: reason))
            }
            steps.append(RemediationStep(timeMs: now, jobID: "", attempt: 0, failureClass: failure.symptom.failureClass, action: "paused retries of jobs on dataset \(dataset)", outcome: "failing jobs on \(dataset) are held until an operator resumes it"))
        }
        let id = state.incidents.raise(
            IncidentDraft(
                dedupKey: key, cause: .badDataset, level: rule.level, severity: rule.severity,
                subject: "Training Failure Escalation - dataset \(dataset)", nodes: Array(Set(failures.map(\.nodeID))).sorted(),
                jobs: jobs, dataset: dataset, failureTimeMs: failures.first?.timeMs ?? now, symptoms: [evidence], steps: steps,
                currentStatus: "retries of jobs on \(dataset) paused; check the data, then resume the dataset",
                impact: "\(jobs.count) jobs on \(dataset) failed; every job reading it is held instead of retried"),
            reason: reason, at: now, ladder: ladder, deadlines: &state.deadlines, out: &out)
        if first {
            if var record = state.datasets[dataset] {
                record.pausedByIncident = id
                state.datasets[dataset] = record
            }
            // Stop burning attempts: restarts already waiting, and jobs given up on for this dataset, wait for it.
            let candidates = state.jobs.live(on: dataset).union(jobs).compactMap { state.jobs[$0] }
            let waiting = candidates.filter { job in
                guard job.config.dataset == dataset, job.hold == nil else { return false }
                if job.status == .queued && job.nodeID.isEmpty && job.pending != nil { return true }
                return job.status == .failed && jobs.contains(job.spec.id) && (job.current?.symptom).map(rule.symptoms.contains) == true
            }.map(\.spec.id).sorted()
            for jobID in waiting {
                guard let job = state.jobs[jobID] else { continue }
                let plan = job.pending ?? PendingAttempt(
                    config: job.config, action: "resume after dataset \(dataset) is resumed", configChange: "", reason: reason,
                    symptom: job.current?.symptom, dueMs: now, excludeNodes: [], preferNode: "", resumeBeforeEpoch: nil)
                hold(jobID, .dataset(dataset), plan: plan, at: now, &out)
            }
        }
        attachJobIncidents(jobs, to: id, at: now, &out)
    }

    mutating func resumeDataset(_ id: String, by who: String, at now: Int64, _ out: inout [ControllerAction]) {
        clearEvidence("bad_dataset:\(id)", at: now)
        guard var record = state.datasets[id], record.retriesPaused else { return }
        let incident = record.pausedByIncident
        record.retriesPaused = false
        record.pausedByIncident = ""
        state.datasets[id] = record
        out.append(.resumeRetries(dataset: id, reason: Reason(symptom: "operator action", evidence: "\(who) resumed retries of jobs on \(id)", rule: "operator resume")))
        noteFleetIncident(incident, "\(who) resumed retries of jobs on \(id)", at: now)
        release(where: { $0 == .dataset(id) }, at: now, &out)
    }

    // MARK: System-wide resource issue

    private mutating func systemResourceRule(_ failure: FailureObservation, at now: Int64, _ out: inout [ControllerAction]) {
        let rule = policy.correlation.systemResource
        guard rule.enabled, rule.symptoms.contains(failure.symptom), let resource = ResourceKind.exhausted(by: failure.symptom) else { return }
        let failures = state.correlation.failures(since: evidenceStart("system_resource:\(resource.rawValue)", window: rule.window, at: now)) {
            $0.symptom == failure.symptom && !$0.nodeID.isEmpty
        }
        let nodes = Array(Set(failures.map(\.nodeID))).sorted()
        // One job failing on several nodes is one job: both nodes and jobs must reach the count.
        let online = onlineNodeCount
        let needed = distinctNodesNeeded(minimum: rule.minDistinctNodes, fraction: rule.failureNodeFraction, online: online)
        guard nodes.count >= needed, Set(failures.map(\.jobID)).count >= needed else { return }
        let evidence = "\(failure.symptom.title) on \(nodes.count) nodes (of \(online) online; \(needed) needed) within \(rule.window): \(describe(failures))"
        raiseSystemIncident(resource, evidence: evidence, nodes: nodes, jobs: Array(Set(failures.map(\.jobID))).sorted(),
                            freeze: [failure.symptom], ruleText: "≥ \(rule.minDistinctNodes) nodes fail with the same resource symptom", at: now, &out)
    }

    /// Re-evaluates node pressure across the fleet after a status.
    mutating func evaluateNodePressure(at now: Int64, _ out: inout [ControllerAction]) {
        let rule = policy.correlation.systemResource
        guard rule.enabled else { return }
        let online = onlineNodes
        guard !online.isEmpty else { return }
        for resource in [ResourceKind.memory, .gpuMemory, .disk] {
            let over = online.filter { $0.pressure.contains(resource) }.map(\.id)
            let fraction = Double(over.count) / Double(online.count)
            guard over.count >= rule.minNodes, fraction > rule.nodeFraction else { continue }
            let evidence = "\(over.count) of \(online.count) nodes (\(ResourcePressure.percent(fraction))) above \(ResourcePressure.percent(rule.threshold)) \(resource.rawValue): \(over.joined(separator: ", "))"
            raiseSystemIncident(resource, evidence: evidence, nodes: over, jobs: [], freeze: resource.frozenSymptom.map { [$0] } ?? [],
                                ruleText: "more than \(ResourcePressure.percent(rule.nodeFraction)) of nodes above \(ResourcePressure.percent(rule.threshold))", at: now, &out)
        }
    }

    private mutating func raiseSystemIncident(_ resource: ResourceKind, evidence: String, nodes: [String], jobs: [String], freeze: [Symptom], ruleText: String, at now: Int64, _ out: inout [ControllerAction]) {
        let rule = policy.correlation.systemResource
        let key = "system_resource:\(resource.rawValue)"
        let frozenText = freeze.isEmpty ? "no per-job config change applies" : "per-job config changes for \(freeze.map(\.title).joined(separator: ", ")) stopped fleet-wide"
        let reason = Reason(symptom: "system-wide resource issue (\(resource.rawValue))", evidence: evidence, rule: "correlation.systemResource: \(ruleText) → \(frozenText), escalate to \(rule.level.rawValue)")
        var steps: [RemediationStep] = []
        for symptom in freeze where freezingIncident(for: symptom) == nil {
            out.append(.freezeRemediation(symptom, reason: reason))
            steps.append(RemediationStep(timeMs: now, jobID: "", attempt: 0, failureClass: symptom.failureClass, action: "froze per-job config changes for \(symptom.title) fleet-wide", outcome: "failing jobs are held until this incident is resolved"))
        }
        let id = state.incidents.raise(
            IncidentDraft(
                dedupKey: key, cause: .systemResource, level: rule.level, severity: rule.severity,
                subject: "Training Failure Escalation - fleet \(resource.rawValue)", nodes: nodes, jobs: jobs,
                failureTimeMs: now, symptoms: [evidence], steps: steps,
                currentStatus: "\(frozenText); resolve this incident to lift it",
                impact: "\(nodes.count) nodes affected fleet-wide"),
            reason: reason, at: now, ladder: ladder, deadlines: &state.deadlines, out: &out)
        if !freeze.isEmpty {
            state.freezes[id] = Array(Set((state.freezes[id] ?? []) + freeze)).sorted()
            // Restarts already waiting with a config change for a frozen symptom wait for the resolution too.
            let waiting = state.jobs.waiting.compactMap { state.jobs[$0] }.filter { job in
                (job.pending?.symptom).map(freeze.contains) == true
            }.map(\.spec.id).sorted()
            for jobID in waiting {
                if let symptom = state.jobs[jobID]?.pending?.symptom { hold(jobID, .frozen(symptom), plan: nil, at: now, &out) }
            }
        }
        attachJobIncidents(jobs, to: id, at: now, &out)
    }

    /// The open system-resource incident freezing `symptom`, if any.
    func freezingIncident(for symptom: Symptom) -> String? {
        state.freezes.keys.sorted().first { id in
            state.freezes[id]?.contains(symptom) == true && state.incidents[id].map { $0.status != .resolved } == true
        }
    }

    /// Lifts the freezes of a resolved incident and restarts the jobs they held.
    mutating func liftFreezes(of incidentID: String, by who: String, at now: Int64, _ out: inout [ControllerAction]) {
        guard let symptoms = state.freezes.removeValue(forKey: incidentID) else { return }
        for symptom in symptoms where freezingIncident(for: symptom) == nil {
            out.append(.unfreezeRemediation(symptom, reason: Reason(symptom: "incident resolved", evidence: "\(who) resolved \(incidentID)", rule: "correlation.systemResource: the freeze lasts until its incident is resolved")))
            release(where: { $0 == .frozen(symptom) }, at: now, &out)
        }
    }

    // MARK: Security

    private mutating func permissionRule(_ failure: FailureObservation, at now: Int64, _ out: inout [ControllerAction]) {
        let rule = policy.correlation.security
        guard rule.enabled, failure.symptom == .permissionDenied else { return }
        let failures = state.correlation.failures(since: evidenceStart("security:permission_denied", window: rule.window, at: now)) { $0.symptom == .permissionDenied }
        let jobs = Array(Set(failures.map(\.jobID))).sorted()
        guard jobs.count >= rule.permissionDeniedJobs else { return }
        let evidence = "permission denied for \(jobs.count) distinct jobs within \(rule.window): \(describe(failures))"
        endStaleStorm("security:permission_denied", jobs: jobs, window: rule.window, at: now, &out)
        let id = state.incidents.raise(
            IncidentDraft(
                dedupKey: "security:permission_denied", cause: .security, level: rule.level, severity: rule.severity,
                subject: "Training Failure Escalation - security: permission denied across jobs",
                nodes: Array(Set(failures.map(\.nodeID))).sorted(), jobs: jobs, failureTimeMs: failures.first?.timeMs ?? now,
                symptoms: [evidence], currentStatus: "jobs not retried; check IAM roles, service accounts and API key scopes",
                impact: "\(jobs.count) jobs cannot read their data or write their results"),
            reason: Reason(symptom: "security concern", evidence: evidence, rule: "correlation.security: permission denied across ≥ \(rule.permissionDeniedJobs) jobs → \(rule.level.rawValue), \(rule.severity.rawValue)"),
            at: now, ladder: ladder, deadlines: &state.deadlines, out: &out)
        attachJobIncidents(jobs, to: id, at: now, &out)
    }

    /// Events that fail authenticity checks, or publishes the shell rejected.
    mutating func raiseSecurity(node: String, evidence: String, at now: Int64, _ out: inout [ControllerAction]) {
        let rule = policy.correlation.security
        guard rule.enabled else { return }
        state.incidents.raise(
            IncidentDraft(
                dedupKey: "security:node:\(node)", cause: .security, level: rule.level, severity: rule.severity,
                subject: "Training Failure Escalation - security: node \(node)", nodes: [node], failureTimeMs: now,
                symptoms: [evidence], currentStatus: "the events were rejected and not applied",
                impact: "a node's identity or credentials may be compromised"),
            reason: Reason(symptom: "security concern", evidence: evidence, rule: "correlation.security: events failing authenticity checks → \(rule.level.rawValue), \(rule.severity.rawValue)"),
            at: now, ladder: ladder, deadlines: &state.deadlines, out: &out)
    }

    // MARK: Multiple agents

    private mutating func multiAgentRule(at now: Int64, _ out: inout [ControllerAction]) {
        let rule = policy.correlation.multiAgent
        guard rule.enabled else { return }
        let failures = state.correlation.failures(since: evidenceStart("multi_agent", window: rule.window, at: now)) {
            !$0.nodeID.isEmpty && !isExplained($0) && !isAnswered($0)
        }
        let nodes = Array(Set(failures.map(\.nodeID))).sorted()
        let jobs = Array(Set(failures.map(\.jobID))).sorted()
        // "Multiple agents": never more than the fleet has (a two-node fleet with both failing qualifies), never one.
        let online = onlineNodeCount
        let needed = distinctNodesNeeded(minimum: Swift.max(2, Swift.min(rule.minDistinctNodes, online)), fraction: rule.nodeFraction, online: online)
        guard nodes.count >= needed, jobs.count >= needed else { return }
        let evidence = "failures on \(nodes.count) agents (of \(online) online; \(needed) needed) within \(rule.window) that no other rule explains: \(describe(failures))"
        endStaleStorm("multi_agent", jobs: jobs, window: rule.window, at: now, &out)
        let id = state.incidents.raise(
            IncidentDraft(
                dedupKey: "multi_agent", cause: .multiAgent, level: rule.level, severity: rule.severity,
                subject: "Training Failure Escalation - multiple agents affected", nodes: nodes, jobs: jobs,
                failureTimeMs: failures.first?.timeMs ?? now, symptoms: [evidence],
                currentStatus: "per-job remediation continues; the per-job incidents of these jobs are grouped here",
                impact: "\(jobs.count) jobs on \(nodes.count) agents failing at the same time"),
            reason: Reason(symptom: "multiple agents affected simultaneously", evidence: evidence, rule: "correlation.multiAgent: failures on ≥ \(rule.minDistinctNodes) agents within \(rule.window) → one grouped incident at \(rule.level.rawValue)"),
            at: now, ladder: ladder, deadlines: &state.deadlines, out: &out)
        attachJobIncidents(jobs, to: id, at: now, &out)
    }

    /// A storm incident (one key for the whole fleet) still open — often acknowledged and left so — while a new storm
    /// begins: when none of the jobs failing now within the rule's window is one of its jobs, the old storm is over.
    /// It resolves itself, so the new one is a new incident that pages, instead of a silent update of the old.
    private mutating func endStaleStorm(_ key: String, jobs: [String], window: PolicyDuration, at now: Int64, _ out: inout [ControllerAction]) {
        guard let open = state.incidents.open(forKey: key), Set(open.jobs).isDisjoint(with: jobs) else { return }
        resolveIncident(open.id, by: Self.automatic,
                        rootCause: "auto-resolved: storm over — none of its jobs failed within \(window) of a new storm (\(jobs.prefix(5).joined(separator: ", ")))",
                        repaired: false, at: now, &out)
    }

    /// A failure whose node, dataset or fleet-wide cause was repaired since (its evidence cleared): it was explained,
    /// and stays explained after that incident is resolved. Reads the records directly (no key strings): it runs for
    /// every failure in a window.
    private func isAnswered(_ f: FailureObservation) -> Bool {
        if let since = state.nodes[f.nodeID]?.evidenceSinceMs, f.timeMs <= since { return true }
        if !f.dataset.isEmpty, let since = state.datasets[f.dataset]?.evidenceSinceMs, f.timeMs <= since { return true }
        if let resource = ResourceKind.exhausted(by: f.symptom), let since = state.evidenceSince["system_resource:\(resource.rawValue)"], f.timeMs <= since {
            return true
        }
        if f.symptom == .permissionDenied, let since = state.evidenceSince["security:permission_denied"], f.timeMs <= since { return true }
        return false
    }

    /// A failure a more specific fleet incident already accounts for.
    private func isExplained(_ f: FailureObservation) -> Bool {
        if state.incidents.open(forKey: "bad_node:\(f.nodeID)") != nil { return true }
        if !f.dataset.isEmpty, state.incidents.open(forKey: "bad_dataset:\(f.dataset)") != nil { return true }
        if freezingIncident(for: f.symptom) != nil { return true }
        if f.symptom == .permissionDenied, state.incidents.open(forKey: "security:permission_denied") != nil { return true }
        return false
    }

    // MARK: Incident links

    /// Attaches the open per-job incidents of `jobs` to a fleet incident (their pages are inhibited).
    mutating func attachJobIncidents(_ jobs: [String], to parentID: String, at now: Int64, _ out: inout [ControllerAction]) {
        for jobID in jobs {
            guard let childID = state.jobs[jobID]?.incidentID, !childID.isEmpty else { continue }
            state.incidents.attach(childID, to: parentID, at: now, deadlines: &state.deadlines, out: &out)
        }
    }

    /// The first open fleet incident listing `jobID`.
    func coveringFleetIncident(for jobID: String) -> Incident? {
        state.incidents.openKeys.values.compactMap { state.incidents[$0] }
            .filter { incident in
                incident.parentID.isEmpty && incident.cause != .job && incident.cause != .notice && incident.jobs.contains(jobID)
            }
            .min { (IncidentBook.number($0.id), $0.id) < (IncidentBook.number($1.id), $1.id) }
    }

    mutating func noteFleetIncident(_ id: String, _ text: String, at now: Int64) {
        guard !id.isEmpty else { return }
        state.incidents.note(id, text, at: now)
    }
}

/// What a fleet rule's incident key names, as the cause whose evidence a repair clears: a node (`bad_node:<n>`), a
/// dataset (`bad_dataset:<d>`) or one of the few fleet-wide keys. The one place that reads those keys.
enum EvidenceScope: Equatable {
    case node(String)
    case dataset(String)
    case fleet(String)

    /// nil for a key no repair clears (a job's, a notice's, a node's security incident).
    init?(_ key: String) {
        if key.hasPrefix("bad_node:") {
            self = .node(String(key.dropFirst("bad_node:".count)))
        } else if key.hasPrefix("bad_dataset:") {
            self = .dataset(String(key.dropFirst("bad_dataset:".count)))
        } else if key == "multi_agent" || key == "security:permission_denied" || key.hasPrefix("system_resource:") {
            self = .fleet(key)
        } else {
            return nil
        }
    }
}
