public import ArchonModel
import ArchonNATS
import ArchonWire
import Foundation
public import Logging
public import ServiceLifecycle

/// The node agent: supervises this machine's training processes and reconciles them to the desired
/// state the controller writes in KV `archon_desired` (keys `<node>.<job>`).
///
/// Level-triggered: after its own restart, or a NATS outage, it reads the desired state again and
/// converges; processes a previous agent started are re-adopted (or stopped), never started twice.
public actor Agent: Service {
    public let config: AgentConfig
    let logger: Logger
    let outbox: EventOutbox
    let enforcer: MemoryEnforcer
    let gpuSampler: GPUSampler
    /// Renewed on every NATS acknowledgement; the shims fence trainers when it grows old (``NodeLease``).
    let lease: LeaseRenewer
    let startedAtMs = UnixTime.nowMillis()

    /// Running (or stopping) attempts by job id.
    private var jobs: [String: JobProcess] = [:]
    /// Latest desired assignment per job; nil entry = not desired.
    private var desired: [String: JobAssignment] = [:]
    /// Newest fencing epoch seen: assignments from older controllers' leases are ignored.
    private var fencingEpoch: UInt64
    /// Assignments refused (bad or missing signature, epoch beyond the lease) since this agent started.
    public private(set) var rejectedAssignments = 0
    private var lastViolationReportMs: Int64 = 0
    /// Until the first full read of the desired state, nothing is stopped for lack of an assignment.
    private var desiredStateLoaded = false
    /// Attempts (`<job>#<attempt>`) that ended before a process started: not tried again here even when a full disk
    /// kept their `state.json` from saying so.
    private var endedBeforeStart: Set<String> = []
    private var fencingFile: String { "\(config.workDirectory)/fencing-epoch" }
    /// Assignments whose fencing epoch was beyond the lease as last read, by job id: a lease read can come from a
    /// replica that lags (a server cut from its peers), so they are read against the lease again until it reaches them
    /// (see ``confirmEpochs``). A newer entry for the job replaces its own.
    private var unconfirmed: [String: Unconfirmed] = [:]
    /// When the supervision loop last ran: a tick much later than that means the agent itself stood still.
    private var lastTickMs: Int64?

    struct Unconfirmed {
        let key: String
        let assignment: JobAssignment
        let sinceMs: Int64
        var reported = false
    }

    public init(config: AgentConfig, logger: Logger) throws {
        var logger = logger
        logger[metadataKey: "node.id"] = "\(config.nodeID)"
        self.config = config
        self.logger = logger
        try FileManager.default.createDirectory(atPath: "\(config.workDirectory)/jobs", withIntermediateDirectories: true)
        let work = config.workDirectory
        outbox = try EventOutbox(directory: "\(work)/outbox", sequenceFile: { job, attempt in
            job.isEmpty ? "\(work)/node-sequence" : JobPaths(workDirectory: work, jobID: job).sequence(attempt)
        }, logger: logger)
        enforcer = MemoryEnforcer(mode: config.memoryMode, nodeID: config.nodeID, delegated: config.cgroupDelegated, logger: logger)
        gpuSampler = GPUSampler(logger: logger)
        lease = LeaseRenewer(NodeLease(workDirectory: config.workDirectory))
        fencingEpoch = (try? String(contentsOfFile: "\(config.workDirectory)/fencing-epoch", encoding: .utf8))
            .flatMap { UInt64($0.trimmingCharacters(in: .whitespacesAndNewlines)) } ?? 0
    }

    /// How this node's shims fence their trainers; nil when fencing is off.
    private var fence: Fence? {
        config.fenceAfter.map { Fence(leasePath: lease.lease.path, afterMs: $0.millis, graceMs: config.gracePeriod.millis) }
    }

    /// How memory limits are enforced here (also in NodeStatus).
    public var enforcement: EnforcementCapabilities { enforcer.capabilities }

    /// Events spooled and not yet acknowledged by JetStream.
    public var pendingEvents: Int { outbox.pendingCount }

    /// Jobs with a live process, by id → attempt.
    public var runningJobs: [String: Int] { jobs.mapValues(\.attempt) }

    public func run() async throws {
        logger.info("agent.starting", metadata: ["agent.work_dir": "\(config.workDirectory)",
                                                 "agent.memory_enforcement": "\(enforcer.capabilities.memory.rawValue)",
                                                 "agent.run_as": "\(config.runAs?.description ?? "the agent's user")",
                                                 "agent.checkpoint_storage": "\(config.checkpointStorage)"])
        if config.checkpointStorage.shared, !FileManager.default.fileExists(atPath: config.checkpointStorage.root) {
            logger.error("agent.checkpoint_storage.missing", metadata: [
                "reason": "shared checkpoint root \(config.checkpointStorage.root) does not exist (not mounted?): jobs placed here fail as a node fault until it does",
            ])
        }
        if !config.assignments.checksSignatures {
            logger.critical("agent.assignments.unsigned_accepted", metadata: [
                "reason": "--insecure-unsigned-assignments: anyone who can write archon_desired can run any command on this node",
            ])
        }
        if config.runAs == nil, geteuid() == 0 {
            logger.warning("agent.trainers_run_as_root", metadata: [
                "hint": "the agent runs as root and no --run-as-user is set: every trainer runs as root; set --run-as-user and --run-as-group",
            ])
        }
        adoptPreviousProcesses()
        var options = config.nats
        options.retryOnFailedConnect = true
        if options.name == "archon" { options.name = "archon-agent-\(config.nodeID)" }
        // A node's credential may receive replies only under its own inbox prefix.
        options.inboxPrefix = FleetPermissions.inboxPrefix(node: config.nodeID)
        let connection = try await NATSConnection.connect(options, logger: logger)
        let js = try connection.jetStream()
        // The first status already names the GPUs (bounded by nvidia-smi's timeout).
        await gpuSampler.refreshOffPool()
        publishNodeStatus()

        // Each task returns whether it is the shutdown signal; the others run until cancelled.
        await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                guard let publisher = try? AsyncPublisher(connection: connection) else {
                    self.logger.critical("agent.outbox.no_publisher", metadata: ["reason": "cannot make a JetStream context"])
                    return false
                }
                await self.outbox.run { events in
                    let done = await publisher.publish(events, timeout: .seconds(5))
                    // An acknowledgement is contact with NATS: the node's lease holds.
                    if done > 0 { self.lease.renewIfDue() }
                    return done
                }
                return false
            }
            group.addTask { await self.watchDesiredState(js); return false }
            group.addTask { await self.confirmEpochs(js); return false }
            group.addTask {
                for await event in connection.events where event.isPermissionViolation { await self.permissionViolated(event) }
                return false
            }
            group.addTask { await self.serveLogs(connection); return false }
            group.addTask { await self.heartbeatLoop(); return false }
            group.addTask { await self.superviseLoop(); return false }
            group.addTask { await self.gpuSampler.run(every: self.config.sampleInterval); return false }
            // Graceful shutdown (SIGTERM through the ServiceGroup) or cancellation ends the agent.
            group.addTask {
                try? await gracefulShutdown()
                return true
            }
            while let isShutdown = await group.next() {
                if isShutdown { break }
            }
            group.cancelAll()
        }
        await shutdown()
        connection.close()
    }

    private func shutdown() async {
        guard config.stopJobsOnExit else {
            logger.info("agent.stopping.jobs_left_running", metadata: ["agent.jobs": "\(jobs.keys.sorted())"])
            for job in jobs.values { job.detach() }
            jobs.removeAll()
            return
        }
        let now = UnixTime.nowMillis()
        for job in jobs.values { job.stop(.stopRequested, nowMs: now) }
        let deadline = ContinuousClock.now + config.gracePeriod + .seconds(5)
        while !jobs.isEmpty, ContinuousClock.now < deadline {
            tick()
            try? await Task.sleep(for: .milliseconds(50))
        }
        // Give the outbox a moment to send the exits.
        let flushDeadline = ContinuousClock.now + .seconds(3)
        while outbox.pendingCount > 0, ContinuousClock.now < flushDeadline {
            try? await Task.sleep(for: .milliseconds(50))
        }
    }

    // MARK: Desired state

    private func watchDesiredState(_ js: JetStream) async {
        var failures = 0
        while !Task.isCancelled {
            do {
                // The controller creates the bucket; until it has, there is nothing to run.
                let kv = try await js.existingKeyValue(bucket: Fleet.desiredBucket)
                let watch = try await kv.watch("\(config.nodeID).>")
                failures = 0
                watching: for await event in watch {
                    // What the watch delivers came from the server: contact with NATS, so the node's lease holds. It
                    // must hold before a trainer starts from this entry: a shim that finds no lease fences at once.
                    lease.renewIfDue()
                    switch event {
                    case .entry(let entry):
                        // An entry that could not be judged now is read again with the rest by a new watch.
                        guard await desiredChanged(entry, js) else { break watching }
                    case .initialValuesDone:
                        desiredStateLoaded = true
                        reconcileAll()
                    }
                }
            } catch {
                // Retried every second: the first failure of a streak is the one worth a warning.
                failures += 1
                logger.log(level: failures == 1 ? .warning : .debug, "agent.desired.watch_failed", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: .seconds(1))
        }
    }

    /// False when the entry could not be judged (the lease was unreadable): the caller watches again.
    private func desiredChanged(_ entry: KVEntry, _ js: JetStream) async -> Bool {
        let jobID = String(entry.key.dropFirst(config.nodeID.count + 1))
        unconfirmed[jobID] = nil
        guard entry.operation == .put else {
            desired[jobID] = nil
            reconcile(jobID)
            return true
        }
        let assignment: JobAssignment
        do {
            assignment = try config.assignments.open(entry.value)
        } catch {
            reject(entry.key, because: "\(error)")
            return true
        }
        guard assignment.spec.id == jobID, assignment.nodeID == config.nodeID else {
            logger.error("agent.desired.mismatch", metadata: ["kv.key": "\(entry.key)", "job.id": "\(assignment.spec.id)",
                                                             "assignment.node": "\(assignment.nodeID)"])
            return true
        }
        if assignment.fencingEpoch > fencingEpoch {
            // An epoch is a revision of the leadership lease: none can be newer than the lease's newest.
            let lease: UInt64
            do {
                lease = try await leaseRevision(js)
            } catch {
                logger.warning("agent.desired.lease_unreadable", metadata: ["kv.key": "\(entry.key)", "error": "\(error)"])
                return false
            }
            guard assignment.fencingEpoch <= lease else {
                unconfirmed[jobID] = Unconfirmed(key: entry.key, assignment: assignment, sinceMs: UnixTime.nowMillis())
                logger.warning("agent.desired.epoch_unconfirmed", metadata: [
                    "kv.key": "\(entry.key)", "assignment.epoch": "\(assignment.fencingEpoch)", "lease.revision": "\(lease)",
                ])
                return true
            }
        }
        accept(assignment)
        return true
    }

    private func leaseRevision(_ js: JetStream) async throws -> UInt64 {
        try await js.streamBounds("KV_\(Fleet.leaderBucket)").last
    }

    /// Runs an assignment whose epoch the lease allows, unless a newer leader's epoch has been seen since.
    private func accept(_ assignment: JobAssignment) {
        let jobID = assignment.spec.id
        guard assignment.fencingEpoch >= fencingEpoch else {
            logger.warning("agent.desired.fenced", metadata: [
                "job.id": "\(jobID)", "assignment.epoch": "\(assignment.fencingEpoch)", "agent.epoch": "\(fencingEpoch)",
            ])
            return
        }
        if assignment.fencingEpoch > fencingEpoch {
            fencingEpoch = assignment.fencingEpoch
            try? "\(fencingEpoch)".write(toFile: fencingFile, atomically: true, encoding: .utf8)
        }
        desired[jobID] = assignment
        reconcile(jobID)
    }

    /// Reads the lease again for assignments it did not yet allow: each runs once a read reaches its epoch. One that
    /// no read has reached for `unconfirmedEpochGrace` is refused and reported (a controller bug or a stolen key),
    /// and still read again: nothing of it runs until the lease allows it.
    private func confirmEpochs(_ js: JetStream) async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(1))
            guard !unconfirmed.isEmpty, let lease = try? await leaseRevision(js) else { continue }
            let now = UnixTime.nowMillis()
            for (jobID, pending) in unconfirmed {
                if pending.assignment.fencingEpoch <= lease {
                    unconfirmed[jobID] = nil
                    logger.info("agent.desired.epoch_confirmed", metadata: ["kv.key": "\(pending.key)", "lease.revision": "\(lease)"])
                    accept(pending.assignment)
                } else if !pending.reported, now - pending.sinceMs >= config.unconfirmedEpochGrace.millis {
                    unconfirmed[jobID]?.reported = true
                    reject(pending.key, because: "fencing epoch \(pending.assignment.fencingEpoch) is beyond the leadership lease's newest revision \(lease)")
                }
            }
        }
    }

    /// Counted, logged, and reported to the controller as a security alert; whatever ran before keeps running.
    private func reject(_ key: String, because reason: String) {
        rejectedAssignments += 1
        logger.error("agent.desired.rejected", metadata: ["kv.key": "\(key)", "reason": "\(reason)"])
        emitNode(.securityAlert(SecurityAlert(kind: .assignmentRejected, detail: "assignment at \(Fleet.desiredBucket)/\(key) rejected: \(reason)", subject: key)))
    }

    /// NATS refused something this node's credential does not allow: reported at most once a minute.
    private func permissionViolated(_ event: NATSConnectionEvent) {
        guard case .error(let message, let subject) = event else { return }
        let now = UnixTime.nowMillis()
        guard now - lastViolationReportMs >= 60_000 else { return }
        lastViolationReportMs = now
        emitNode(.securityAlert(SecurityAlert(kind: .permissionViolation, detail: message, subject: subject ?? "")))
    }

    private func reconcileAll() {
        for jobID in Set(desired.keys).union(jobs.keys) { reconcile(jobID) }
    }

    /// Makes the processes of one job match its desired state.
    private func reconcile(_ jobID: String) {
        let now = UnixTime.nowMillis()
        let want = desired[jobID]
        if let running = jobs[jobID] {
            guard let want, want.desiredState == .running else {
                // Not desired (deleted or stopped). Before the first full read, keep what runs. A stop that names a
                // grace (a drain, a move, an operator stop) gives the trainer that long to save a checkpoint.
                if let want, want.desiredState == .stopped, want.attempt == running.attempt, want.stopGraceSeconds > 0 {
                    running.stop(.stopRequested, nowMs: now, graceMs: Int64(want.stopGraceSeconds) * 1000)
                } else if desiredStateLoaded || want?.desiredState == .stopped {
                    running.stop(.stopRequested, nowMs: now)
                }
                return
            }
            if running.attempt < want.attempt { running.stop(.stopRequested, nowMs: now) }
            return  // the newer attempt starts once this one has exited (see tick)
        }
        guard let want, want.desiredState == .running else { return }
        let paths = JobPaths(workDirectory: config.workDirectory, jobID: jobID)
        if let record = JobPaths.load(paths.record), record.assignment.attempt >= want.attempt, record.finished {
            return  // this attempt already ran here
        }
        guard !endedBeforeStart.contains("\(jobID)#\(want.attempt)") else { return }
        start(want, nowMs: now)
    }

    private func start(_ assignment: JobAssignment, nowMs: Int64) {
        do {
            let job = try JobProcess.start(
                assignment, workDirectory: config.workDirectory, nodeID: config.nodeID, enforcer: enforcer, outbox: outbox,
                defaultHangSeconds: config.defaultHangSeconds, checkpointStorage: config.checkpointStorage,
                allowedCheckpointRoots: config.allowedCheckpointRoots, memoryCeiling: config.memoryCeilingBytes,
                rules: config.executionRules, runAs: config.runAs, fence: fence, logger: logger, nowMs: nowMs)
            jobs[assignment.spec.id] = job
            publishNodeStatus()
        } catch {
            // The node could not run it: say so as the attempt's exit, so the controller can re-place it. A refusal
            // is no node fault: another node would refuse too, and it is a security concern, never retried. A node
            // resource problem's detail names the fault first: the controller reports the node and moves the job.
            let refused = error is JobProcess.Refused
            let resource = error as? JobProcess.NodeResourceProblem
            let unavailable = error as? JobProcess.CheckpointUnavailable
            let metadata: Logger.Metadata = ["job.id": "\(assignment.spec.id)", "error": "\(error)"]
            if refused {
                logger.error("agent.job.refused", metadata: metadata)
            } else if unavailable != nil {
                logger.warning("agent.job.checkpoint_unavailable", metadata: metadata)
            } else if resource != nil {
                logger.error("agent.job.node_resource_fault", metadata: metadata)
            } else {
                logger.error("agent.job.spawn_failed", metadata: metadata)
            }
            endedBeforeStart.insert("\(assignment.spec.id)#\(assignment.attempt)")
            let paths = JobPaths(workDirectory: config.workDirectory, jobID: assignment.spec.id)
            try? FileManager.default.createDirectory(atPath: paths.attempt(assignment.attempt), withIntermediateDirectories: true)
            let exited = refused
                ? JobExited(exitCode: 126, failureClass: .permissionDenied, detail: "agent refused to run the job: \(error)")
                : unavailable.map { JobExited(exitCode: 66, failureClass: .checkpointUnavailable, detail: "agent did not start the job: \($0)") }
                ?? resource.map { JobExited(exitCode: 127, failureClass: .nodeFault, detail: $0.fault.detail("agent could not start the job: \($0.what)")) }
                ?? JobExited(exitCode: 127, failureClass: .nodeFault, detail: "agent could not start the process: \(error)")
            outbox.append(jobID: assignment.spec.id, attempt: assignment.attempt, nodeID: config.nodeID, timeMs: nowMs, body: .exited(exited))
            paths.save(JobRecord(assignment: assignment, shimPID: 0, shimStartTime: 0, trainerPID: 0, startedAtMs: nowMs, cgroup: nil,
                                 oomKillsAtStart: 0, memoryEnforcement: enforcer.capabilities.memory, memoryLimitBytes: nil,
                                 finished: true, exit: exited))
        }
    }

    /// Finds the attempts a previous agent process left: adopts the live ones, reports the ones that ended.
    private func adoptPreviousProcesses() {
        let root = "\(config.workDirectory)/jobs"
        let now = UnixTime.nowMillis()
        for jobID in (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [] {
            let paths = JobPaths(workDirectory: config.workDirectory, jobID: jobID)
            guard let record = JobPaths.load(paths.record), !record.finished else { continue }
            let job = JobProcess.adopt(record, paths: paths, nodeID: config.nodeID, outbox: outbox,
                                       defaultHangSeconds: config.defaultHangSeconds, logger: logger, nowMs: now)
            jobs[jobID] = job
            if !JobProcess.isAlive(record) {
                logger.info("agent.job.ended_while_away", metadata: ["job.id": "\(jobID)"])
            }
        }
    }

    // MARK: Supervision

    private func superviseLoop() async {
        while !Task.isCancelled {
            tick()
            try? await Task.sleep(for: config.tickInterval)
        }
    }

    /// One pass over the jobs: exits, limits, stop grace periods, resource samples.
    func tick(nowMs now: Int64 = UnixTime.nowMillis()) {
        var changed = false
        if let last = lastTickMs, now - last > 1000 + config.tickInterval.millis {
            // The agent stood still (stopped, starved): the lines its trainers wrote meanwhile wait unread in their
            // FIFOs. Time it did not watch is no time without progress: each window is pushed back by the stall.
            let stalled = now - last - config.tickInterval.millis
            logger.warning("agent.stalled", metadata: ["agent.stalled_ms": "\(stalled)"])
            for job in jobs.values { job.agentStalled(forMs: stalled) }
        }
        lastTickMs = now
        let gpu = gpuFacts
        for (jobID, job) in jobs {
            if let status = job.exitStatus() {
                _ = job.finish(code: status.code, signal: status.signal, fenced: status.fenced, nowMs: now)
                jobs[jobID] = nil
                changed = true
                reconcile(jobID)
                continue
            }
            if job.isStopping {
                job.tickStop(nowMs: now, defaultGraceMs: config.gracePeriod.millis)
            } else if let violation = job.violation(nowMs: now) {
                job.stop(violation, nowMs: now)
            }
            job.sampleIfDue(nowMs: now, intervalMs: config.sampleInterval.millis, gpu: gpu)
        }
        if changed { publishNodeStatus() }
    }

    /// GPU facts fresh enough to report: a sampler that stopped answering reports none, not old numbers.
    private var gpuFacts: GPUFacts? { gpuSampler.facts(maxAge: config.sampleInterval * 3 + .seconds(10)) }

    // MARK: Node status, heartbeats, logs

    private func heartbeatLoop() async {
        var lastStatus = ContinuousClock.now
        while !Task.isCancelled {
            try? await Task.sleep(for: config.heartbeatInterval)
            emitNode(.heartbeat(Heartbeat(runningJobs: jobs.count)))
            if ContinuousClock.now - lastStatus >= config.statusInterval {
                publishNodeStatus()
                lastStatus = ContinuousClock.now
            }
        }
    }

    func nodeStatus() -> NodeStatus {
        var capacity = NodeProbe.capacity(workDirectory: config.workDirectory, gpus: gpuSampler.gpus)
        if let memory = config.advertisedMemoryBytes { capacity.memoryBytes = memory }
        let disk = NodeProbe.disk(config.workDirectory)
        let reserved = jobs.values.reduce(UInt64(0)) { $0 + $1.config.resources.memoryBytes }
        let gpu = gpuFacts?.node
        return NodeStatus(
            nodeID: config.nodeID,
            hostname: ProcessInfo.processInfo.hostName,
            agentVersion: "0.1.0",
            capacity: capacity,
            usage: NodeUsage(memoryReservedBytes: reserved, memoryUsedBytes: NodeProbe.memoryUsed(),
                             gpuMemoryUsedBytes: gpu?.memoryUsedBytes ?? 0, gpuUtilization: gpu?.utilization ?? 0,
                             diskUsedBytes: disk.used, runningJobs: jobs.count),
            labels: config.labels,
            enforcement: enforcer.capabilities,
            startedAtMs: startedAtMs,
            runningJobs: jobs.keys.sorted(),
            unsignedAssignmentsAccepted: !config.assignments.checksSignatures, checkpointStorage: config.checkpointStorage)
    }

    private func publishNodeStatus() {
        emitNode(.nodeStatus(nodeStatus()))
    }

    private func emitNode(_ body: TrainingEvent.Body) {
        outbox.append(jobID: "", attempt: 0, nodeID: config.nodeID, timeMs: UnixTime.nowMillis(), body: body)
    }

    private func serveLogs(_ connection: NATSConnection) async {
        do {
            let subscription = try connection.subscribe(Fleet.logsSubject(node: config.nodeID))
            for await batch in subscription {
                for message in batch {
                    guard let reply = message.reply else { continue }
                    let answer = logReply(for: message.payload)
                    do {
                        try connection.publish(reply, answer.encoded())
                    } catch {
                        logger.warning("agent.logs.reply_failed", metadata: ["error": "\(error)"])
                    }
                }
            }
        } catch {
            logger.error("agent.logs.subscribe_failed", metadata: ["error": "\(error)"])
        }
    }

    func logReply(for payload: [UInt8]) -> LogReply {
        let request: LogRequest
        do {
            request = try LogRequest.decode(payload)
        } catch {
            return LogReply(error: "malformed log request: \(error)")
        }
        let paths = JobPaths(workDirectory: config.workDirectory, jobID: request.jobID)
        guard !request.jobID.contains("/"), !request.jobID.contains(".."), let record = JobPaths.load(paths.record) else {
            return LogReply(error: "job '\(request.jobID)' has never run on node \(config.nodeID)")
        }
        let count = request.tail > 0 ? min(request.tail, 10_000) : 100
        return LogReply(lines: LogTail.lines(of: paths.log(record.assignment.attempt), count: count))
    }
}
