import ArchonModel
import CArchonSpawn
import Foundation
import Logging

/// What the agent keeps on disk about one attempt, so that a restarted agent finds its processes again.
/// `<work>/jobs/<job>/state.json`.
struct JobRecord: Codable, Sendable {
    var assignment: JobAssignment
    var shimPID: Int32
    var shimStartTime: UInt64
    var trainerPID: Int32
    var startedAtMs: Int64
    var cgroup: MemoryEnforcer.JobCgroup?
    var oomKillsAtStart: Int
    var memoryEnforcement: Enforcement
    /// The memory limit in force (the job's request, capped by the node's ceiling); nil or 0 = none.
    var memoryLimitBytes: UInt64?
    /// The exit has been published: nothing runs for this attempt any more.
    var finished: Bool
    var exit: JobExited?
    /// Where this attempt writes its checkpoints, and on which storage; nil in records of agents that predate
    /// checkpoint storage (`jobs/<job>/checkpoints`, local).
    var checkpointDirectory: String? = nil
    var checkpointStorage: CheckpointStorage? = nil
    /// The checkpoint the trainer was started from; empty = from scratch.
    var resumedFrom: String? = nil
}

/// Paths of one job in the agent's work directory.
struct JobPaths: Sendable {
    let job: String

    init(workDirectory: String, jobID: String) {
        job = "\(workDirectory)/jobs/\(jobID)"
    }

    var record: String { "\(job)/state.json" }
    /// Where attempts wrote checkpoints before checkpoint storage existed: still read when an old record is adopted.
    var legacyCheckpoints: String { "\(job)/checkpoints" }
    func attempt(_ n: Int) -> String { "\(job)/attempt-\(n)" }
    func log(_ n: Int) -> String { "\(attempt(n))/output.log" }
    func fifo(_ n: Int) -> String { "\(attempt(n))/events.fifo" }
    func status(_ n: Int) -> String { "\(attempt(n))/exit-status" }
    func config(_ n: Int) -> String { "\(attempt(n))/config.json" }
    func sequence(_ n: Int) -> String { "\(attempt(n))/sequence" }

    static func load(_ path: String) -> JobRecord? {
        FileManager.default.contents(atPath: path).flatMap { try? JSONDecoder().decode(JobRecord.self, from: $0) }
    }

    func save(_ record: JobRecord) {
        if let data = try? JSONEncoder().encode(record) {
            try? data.write(to: URL(fileURLWithPath: self.record), options: .atomic)
        }
    }
}

/// One running attempt of a job: its processes, its events fd, its limits and timers.
///
/// Thread-safety: `state` is guarded by `lock`; the reader thread and the agent's tick both use it.
final class JobProcess: @unchecked Sendable {
    struct Progress {
        var lastProgressMs: Int64
        var epochStartedMs: Int64
        var epochsCompleted = 0
        var reportedLines = 0
        /// The trainer reported an epoch, a step or a checkpoint: it reports epochs, so the per-epoch limit applies
        /// (as the controller arms it on the same reports). A job that never does is bound by its total limit only.
        var reportsEpochs = false

        /// The first epoch is timed from the trainer's first report, not from its start: importing a framework and
        /// loading data is not an epoch, and counting it made the first epoch after every restart look slow (scenario
        /// 5 failed its raised limit on a loaded machine).
        mutating func startsReportingEpochs(at now: Int64) {
            if !reportsEpochs, epochsCompleted == 0 { epochStartedMs = now }
            reportsEpochs = true
        }
        var reportedError: FailureClass?
        /// The message of that `error` line: it came over the FIFO, so it is there even when a full disk kept the
        /// traceback out of `output.log`.
        var reportedMessage = ""
        var stopReason: AgentKill?
        var termSentMs: Int64?
        /// The stop's own grace (a drain, a move, an operator stop); nil = the agent's `--grace-period`.
        var stopGraceMs: Int64?
        /// When the trainer reported a checkpoint after SIGTERM.
        var checkpointWhileStoppingMs: Int64?
        var killSent = false
        var lastCPUSeconds = 0.0
        var lastSampleMs: Int64 = 0
    }

    let paths: JobPaths
    private(set) var record: JobRecord
    let nodeID: String
    let outbox: EventOutbox
    let checkpoints: CheckpointKeeper
    let logger: Logger
    /// Hang window when the job sets none but has shown it speaks the contract.
    let defaultHangSeconds: Int
    /// True when the shim is our child (we must reap it); false for adopted orphans.
    let isChild: Bool

    private let lock = NSLock()
    private var state: Progress
    private var readerDone: DispatchSemaphore?
    private var stopReading = false

    var jobID: String { record.assignment.spec.id }
    /// Where this attempt writes its checkpoints.
    var checkpointDirectory: String { record.checkpointDirectory ?? paths.legacyCheckpoints }
    var attempt: Int { record.assignment.attempt }
    var config: TrainingConfig { record.assignment.spec.config }

    private init(record: JobRecord, paths: JobPaths, nodeID: String, outbox: EventOutbox, checkpoints: CheckpointKeeper,
                 logger: Logger, defaultHangSeconds: Int, isChild: Bool, nowMs: Int64) {
        self.record = record
        self.paths = paths
        self.nodeID = nodeID
        self.outbox = outbox
        self.checkpoints = checkpoints
        self.defaultHangSeconds = defaultHangSeconds
        self.isChild = isChild
        var logger = logger
        logger[metadataKey: "job.id"] = "\(record.assignment.spec.id)"
        logger[metadataKey: "job.attempt"] = "\(record.assignment.attempt)"
        self.logger = logger
        state = Progress(lastProgressMs: nowMs, epochStartedMs: nowMs)
    }

    // MARK: Start and adopt

    struct SpawnError: Error, CustomStringConvertible {
        let description: String
    }

    /// The assignment asks for something this node's execution rules do not allow: it is never started.
    struct Refused: Error, CustomStringConvertible {
        let description: String
    }

    /// The checkpoint the assignment says to resume from is not on this node as the controller recorded it: missing,
    /// changed, or outside the storage this node reads. Never the dataset: the controller picks another checkpoint.
    struct CheckpointUnavailable: Error, CustomStringConvertible {
        let description: String
    }

    /// The node cannot give the attempt what it needs: its disk is full, or its checkpoint folder is not writable.
    struct NodeResourceProblem: Error, CustomStringConvertible {
        let fault: NodeResourceFault
        /// What failed, e.g. "cannot write /w/jobs/j/checkpoints/.archon-write-check: No space left on device (ENOSPC)".
        let what: String
        var description: String { fault.detail(what) }
    }

    /// Creates the job's checkpoint folder and writes (and syncs) a small file in it, so that a full disk or a
    /// read-only mount ends the attempt before a trainer starts and loses its work at its first checkpoint. Shared
    /// storage's root is never created: a root that does not exist is a network filesystem not mounted here, and
    /// checkpoints written to the local disk in its place would be unreadable from every other node.
    static func checkCheckpointDirectory(_ path: String, sharedRoot: String? = nil) -> NodeResourceProblem? {
        if let sharedRoot {
            var info = stat()
            guard stat(sharedRoot, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else {
                return NodeResourceProblem(fault: .checkpointDirectoryNotWritable, what: "shared checkpoint root \(sharedRoot) is not a folder on this node (not mounted?)")
            }
        }
        func problem(_ action: String, _ target: String, _ code: Int32) -> NodeResourceProblem {
            let fault: NodeResourceFault = (code == ENOSPC || code == EDQUOT) ? .diskFull : .checkpointDirectoryNotWritable
            let name = errnoName(code).map { " (\($0))" } ?? ""
            return NodeResourceProblem(fault: fault, what: "cannot \(action) \(target): \(String(cString: strerror(code)))\(name)")
        }
        var prefix = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            prefix += "/\(component)"
            var info = stat()
            if stat(prefix, &info) == 0, info.st_mode & S_IFMT == S_IFDIR { continue }  // (mkdir on a read-only mount fails even here)
            if mkdir(prefix, 0o755) != 0, errno != EEXIST { return problem("create", prefix, errno) }
        }
        let probe = "\(path)/.archon-write-check"
        let fd = open(probe, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return problem("write", probe, errno) }
        defer { unlink(probe) }
        let block = [UInt8](repeating: 0, count: 4096)
        let written = block.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        let writeError = written < 0 ? errno : (written < block.count ? ENOSPC : 0)
        let syncError = writeError == 0 && fsync(fd) != 0 ? errno : 0
        close(fd)
        if writeError != 0 { return problem("write", probe, writeError) }
        if syncError != 0 { return problem("sync", probe, syncError) }
        return nil
    }

    static func errnoName(_ code: Int32) -> String? {
        switch code {
        case ENOSPC: "ENOSPC"
        case EDQUOT: "EDQUOT"
        case EROFS: "EROFS"
        case EACCES: "EACCES"
        case EPERM: "EPERM"
        case EIO: "EIO"
        case ENOTDIR: "ENOTDIR"
        default: nil
        }
    }

    /// Where a job's checkpoints go on this node: its own shared root when it names one this node allows (under the
    /// node's checkpoint root or an `--allow-checkpoint-root` folder), else the node's storage.
    static func checkpointStorage(for spec: JobSpec, node: CheckpointStorage, allowedRoots: [String]) throws(Refused) -> CheckpointStorage {
        let root = spec.config.checkpoint.sharedRoot
        guard !root.isEmpty else { return node }
        if let problem = CheckpointStorage.rootProblem(root) {
            throw Refused(description: "config.checkpoint.sharedRoot: \(problem)")
        }
        let allowed = [node.root] + allowedRoots
        guard allowed.contains(where: { CheckpointStorage.path(root, isWithin: $0) }) else {
            throw Refused(description: "config.checkpoint.sharedRoot: \(root) is not under this node's checkpoint root or an --allow-checkpoint-root folder (\(allowed.joined(separator: ", ")))")
        }
        return CheckpointStorage(root: root, shared: true)
    }

    /// Checks the checkpoint an assignment resumes from before a trainer is started with it: inside storage this
    /// node reads, present, and with the SHA-256 the controller recorded.
    static func verifyResume(_ assignment: JobAssignment, storage: CheckpointStorage, node: CheckpointStorage, nodeID: String,
                             paths: JobPaths) throws(CheckpointUnavailable) {
        let path = assignment.resumeFrom
        guard !path.isEmpty, !assignment.freshStart else { return }
        let readable = [storage.root, node.root, paths.legacyCheckpoints]
        guard readable.contains(where: { CheckpointStorage.path(path, isWithin: $0) }) else {
            throw CheckpointUnavailable(description: "checkpoint \(path) is outside the checkpoint storage node \(nodeID) reads (\(Set(readable).sorted().joined(separator: ", ")))")
        }
        var info = stat()
        guard stat(path, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
            throw CheckpointUnavailable(description: "checkpoint \(path) does not exist on node \(nodeID)")
        }
        guard !assignment.resumeSHA256.isEmpty else { return }
        guard let sha = Checksum.sha256Hex(ofFile: path) else {
            throw CheckpointUnavailable(description: "checkpoint \(path) cannot be read on node \(nodeID): \(String(cString: strerror(errno)))")
        }
        guard sha == assignment.resumeSHA256 else {
            throw CheckpointUnavailable(description: "checkpoint \(path) on node \(nodeID) has SHA-256 \(sha), not the \(assignment.resumeSHA256) it was written with (changed or corrupt)")
        }
    }

    /// Starts an attempt: checks it against the node's execution rules, its checkpoint folder and the checkpoint it
    /// resumes from, prepares its folder, config file, FIFO and cgroup, then spawns it under a shim, as `runAs` when
    /// given.
    static func start(
        _ assignment: JobAssignment, workDirectory: String, nodeID: String, enforcer: MemoryEnforcer, outbox: EventOutbox,
        defaultHangSeconds: Int, checkpointStorage node: CheckpointStorage, allowedCheckpointRoots: [String] = [],
        memoryCeiling: UInt64? = nil, rules: ExecutionRules = ExecutionRules(), runAs: RunAsIdentity? = nil,
        fence: Fence? = nil, logger: Logger, nowMs: Int64
    ) throws -> JobProcess {
        let spec = assignment.spec
        // Whoever wrote the desired state, this node runs only what its own rules allow (names, never values: an
        // environment value may be a secret).
        var refusals = rules.entrypointRefusal(spec.command).map { ["command: \($0)"] } ?? []
        refusals += rules.environmentProblems(spec.env).map { "env.\($0.name): \($0.message)" }
        if !refusals.isEmpty { throw Refused(description: refusals.joined(separator: "; ")) }
        let paths = JobPaths(workDirectory: workDirectory, jobID: spec.id)
        let storage = try checkpointStorage(for: spec, node: node, allowedRoots: allowedCheckpointRoots)
        let checkpointDirectory = storage.directory(job: spec.id, attempt: assignment.attempt)
        if let problem = checkCheckpointDirectory(checkpointDirectory, sharedRoot: storage.shared ? storage.root : nil) { throw problem }
        try verifyResume(assignment, storage: storage, node: node, nodeID: nodeID, paths: paths)
        let attemptDir = paths.attempt(assignment.attempt)
        let fm = FileManager.default
        try fm.createDirectory(atPath: attemptDir, withIntermediateDirectories: true)
        try? fm.removeItem(atPath: paths.status(assignment.attempt))
        try? fm.removeItem(atPath: paths.fifo(assignment.attempt))
        guard mkfifo(paths.fifo(assignment.attempt), 0o600) == 0 else {
            throw SpawnError(description: "mkfifo \(paths.fifo(assignment.attempt)): \(String(cString: strerror(errno)))")
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(spec.config).write(to: URL(fileURLWithPath: paths.config(assignment.attempt)))

        let checkpoints = CheckpointKeeper(jobDirectory: paths.job)
        var resume = assignment.resumeFrom
        if resume.isEmpty, !assignment.freshStart {
            let (latest, skipped) = checkpoints.latestValid()
            for bad in skipped {
                logger.warning("agent.checkpoint.corrupt", metadata: [
                    "job.id": "\(spec.id)", "checkpoint.path": "\(bad.path)", "checkpoint.sha256": "\(bad.sha256)",
                ])
                appendAgentNote("checkpoint \(bad.path) no longer matches its checksum \(bad.sha256); skipped (possible corruption)",
                                to: paths.log(assignment.attempt))
            }
            resume = latest?.path ?? ""
        }

        guard let argv0 = spec.command.first, let executable = resolveExecutable(argv0) else {
            throw SpawnError(description: "command \(spec.command.first ?? "(empty)") not found in the agent's PATH")
        }
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("ARCHON_") }
        if let runAs {
            // The trainer's own user, not the agent's; it must be able to write its checkpoints.
            env["HOME"] = runAs.home ?? "/"
            if let name = runAs.userName { (env["USER"], env["LOGNAME"]) = (name, name) }
            for path in [checkpointDirectory, attemptDir] where chown(path, runAs.uid, runAs.gid) != 0 {
                throw SpawnError(description: "chown \(path) to \(runAs): \(String(cString: strerror(errno)))")
            }
        }
        for (k, v) in spec.env { env[k] = v }
        env["ARCHON_JOB_ID"] = spec.id
        env["ARCHON_ATTEMPT"] = "\(assignment.attempt)"
        env["ARCHON_NODE_ID"] = nodeID
        env["ARCHON_CONFIG"] = paths.config(assignment.attempt)
        env["ARCHON_CHECKPOINT_DIR"] = checkpointDirectory
        env["ARCHON_RESUME_FROM"] = resume
        env["ARCHON_EVENTS_FD"] = "3"
        env["PYTHONUNBUFFERED"] = env["PYTHONUNBUFFERED"] ?? "1"

        var resources = spec.config.resources
        if let ceiling = memoryCeiling, resources.memoryBytes == 0 || resources.memoryBytes > ceiling {
            resources.memoryBytes = ceiling
        }
        let cgroup = enforcer.prepare(jobID: spec.id, attempt: assignment.attempt, resources: resources)
        let (memory, memoryNote) = MemoryEnforcer.enforcement(forJob: resources, node: enforcer.capabilities.memory)
        if let memoryNote {
            logger.info("agent.job.memory_enforcement", metadata: [
                "job.id": "\(spec.id)", "job.memory_enforcement": "\(memory.rawValue)", "reason": "\(memoryNote)",
            ])
            appendAgentNote("memory limit enforced by the agent's RSS watchdog: \(memoryNote)", to: paths.log(assignment.attempt))
        }
        let rlimit: UInt64 = (memory == .rlimit && resources.memoryBytes > 0) ? resources.memoryBytes : 0
        let oomBefore = cgroup.map(MemoryEnforcer.oomKills) ?? 0

        var trainerPID: pid_t = 0
        let result = withCStrings(spec.command) { argv in
            withCStrings(env.map { "\($0.key)=\($0.value)" }.sorted()) { envp in
                executable.withCString { path in
                    paths.log(assignment.attempt).withCString { log in
                        paths.fifo(assignment.attempt).withCString { fifo in
                            paths.status(assignment.attempt).withCString { status in
                                withOptionalCString(cgroup?.procs) { procs in
                                  withOptionalCString(fence?.leasePath) { lease in
                                    // cwd nil: the trainer runs where the agent runs, so relative commands resolve alike.
                                    (runAs?.groups ?? []).withUnsafeBufferPointer { groups in
                                        var request = archon_spawn_request(
                                            path: path, argv: argv, envp: envp, cwd: nil,
                                            cgroup_procs: procs, log_path: log, events_fifo: fifo, status_path: status,
                                            rlimit_as: rlimit, run_as: runAs == nil ? 0 : 1, uid: runAs?.uid ?? 0,
                                            gid: runAs?.gid ?? 0, groups: groups.baseAddress, ngroups: Int32(groups.count),
                                            lease_path: lease, lease_timeout_ms: fence?.afterMs ?? 0, fence_grace_ms: fence?.graceMs ?? 0)
                                        return archon_spawn(&request, &trainerPID)
                                    }
                                  }
                                }
                            }
                        }
                    }
                }
            }
        }
        guard result > 0 else {
            if let cgroup { MemoryEnforcer.remove(cgroup) }
            throw SpawnError(description: "spawn \(executable): \(String(cString: strerror(-result)))")
        }
        if let cgroup { enforcer.join(cgroup, pid: trainerPID) }
        let record = JobRecord(
            assignment: assignment, shimPID: result, shimStartTime: NodeProbe.startTime(pid: result) ?? 0, trainerPID: trainerPID,
            startedAtMs: nowMs, cgroup: cgroup, oomKillsAtStart: oomBefore, memoryEnforcement: memory, memoryLimitBytes: resources.memoryBytes,
            finished: false, exit: nil, checkpointDirectory: checkpointDirectory, checkpointStorage: storage, resumedFrom: resume)
        paths.save(record)
        let job = JobProcess(record: record, paths: paths, nodeID: nodeID, outbox: outbox, checkpoints: checkpoints,
                             logger: logger, defaultHangSeconds: defaultHangSeconds, isChild: true, nowMs: nowMs)
        job.logger.info("agent.job.started", metadata: ["job.pid": "\(trainerPID)", "job.resume_from": "\(resume)"])
        job.emit(.accepted(JobAccepted(fencingEpoch: assignment.fencingEpoch, resumeFrom: resume)), nowMs: nowMs)
        job.emit(.started(JobStarted(pid: trainerPID, resumeFrom: resume, memoryLimitBytes: resources.memoryBytes,
                                     memoryEnforcement: memory)), nowMs: nowMs)
        job.startReader()
        return job
    }

    /// Takes over an attempt a previous agent process started (its shim still alive).
    static func adopt(_ record: JobRecord, paths: JobPaths, nodeID: String, outbox: EventOutbox, defaultHangSeconds: Int,
                      logger: Logger, nowMs: Int64) -> JobProcess {
        let job = JobProcess(record: record, paths: paths, nodeID: nodeID, outbox: outbox,
                             checkpoints: CheckpointKeeper(jobDirectory: paths.job), logger: logger,
                             defaultHangSeconds: defaultHangSeconds, isChild: false, nowMs: nowMs)
        job.logger.info("agent.job.adopted", metadata: ["job.pid": "\(record.trainerPID)"])
        job.startReader()
        return job
    }

    /// Is the record's shim still this process (not a reused pid)?
    static func isAlive(_ record: JobRecord) -> Bool {
        kill(record.shimPID, 0) == 0 && NodeProbe.startTime(pid: record.shimPID) == record.shimStartTime
    }

    // MARK: Events

    /// Publishes an event about this attempt with its next sequence number (see ``EventOutbox``: numbers survive
    /// restarts, so a restarted agent never reuses one — the stream would drop the new event as a duplicate).
    func emit(_ body: TrainingEvent.Body, nowMs: Int64) {
        outbox.append(jobID: jobID, attempt: attempt, nodeID: nodeID, timeMs: nowMs, body: body)
    }

    private func startReader() {
        let done = DispatchSemaphore(value: 0)
        readerDone = done
        let fifo = paths.fifo(attempt)
        let thread = Thread { [self] in
            readLoop(fifo: fifo)
            done.signal()
        }
        thread.name = "archon-events-\(jobID)"
        thread.start()
    }

    /// Reads JSON lines from the FIFO until told to stop and drained.
    private func readLoop(fifo: String) {
        // Read-write so that open never blocks and we never see EOF between writers.
        let fd = open(fifo, O_RDWR | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else {
            logger.error("agent.events.open_failed", metadata: ["events.fifo": "\(fifo)", "error": "\(String(cString: strerror(errno)))"])
            return
        }
        defer { close(fd) }
        var pending: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&pfd, 1, 100)
            var gotData = false
            if ready > 0 {
                let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n > 0 {
                    gotData = true
                    pending.append(contentsOf: buffer[0..<n])
                    while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                        let line = String(decoding: pending[..<newline], as: UTF8.self)
                        pending.removeSubrange(...newline)
                        handle(line: line)
                    }
                    if pending.count > 1 << 20 {
                        logger.warning("agent.events.line_too_long", metadata: ["bytes": "\(pending.count)"])
                        pending.removeAll()
                    }
                }
            }
            if !gotData && lock.withLock({ stopReading }) { return }
        }
    }

    private func handle(line: String) {
        let trimmed = line.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty else { return }
        let now = UnixTime.nowMillis()
        let parsed: TrainerLine
        do {
            parsed = try TrainerLine.parse(trimmed)
        } catch {
            logger.warning("agent.events.bad_line", metadata: ["error": "\(error)"])
            return
        }
        lock.withLock {
            state.lastProgressMs = now
            state.reportedLines += 1
        }
        switch parsed {
        case .epoch(let metrics):
            lock.withLock {
                state.epochsCompleted = max(state.epochsCompleted, metrics.epoch)
                state.epochStartedMs = now
                state.reportsEpochs = true
            }
            emit(.epoch(metrics), nowMs: now)
        case .step(let progress):
            lock.withLock { state.startsReportingEpochs(at: now) }
            emit(.step(progress), nowMs: now)
        case .checkpoint(let path, let epoch, let step):
            lock.withLock { state.startsReportingEpochs(at: now) }
            do {
                let (written, deleted) = try checkpoints.written(path: path, in: checkpointDirectory, storage: record.checkpointStorage,
                                                                 epoch: epoch, step: step, attempt: attempt, keepLast: config.checkpoint.keepLast)
                if !deleted.isEmpty { logger.info("agent.checkpoint.pruned", metadata: ["checkpoint.deleted": "\(deleted)"]) }
                let stopping = lock.withLock { () -> Bool in
                    guard state.stopReason != nil else { return false }
                    state.checkpointWhileStoppingMs = now
                    return true
                }
                if stopping { logger.info("agent.job.checkpoint_while_stopping", metadata: ["checkpoint.path": "\(written.path)"]) }
                emit(.checkpoint(written), nowMs: now)
            } catch {
                logger.warning("agent.checkpoint.rejected", metadata: ["error": "\(error)"])
                appendAgentNote("\(error)", to: paths.log(attempt))
            }
        case .error(let failureClass, let message):
            lock.withLock {
                state.reportedError = failureClass
                state.reportedMessage = String(message.prefix(2000))
            }
            logger.info("agent.job.reported_error", metadata: ["job.error_class": "\(failureClass.rawValue)", "job.error": "\(message)"])
        case .heartbeat:
            emit(.heartbeat(Heartbeat(runningJobs: 1, secondsSinceProgress: 0)), nowMs: now)
        }
    }

    // MARK: Supervision

    /// The agent did not watch for this long: the hang and epoch windows do not count it.
    func agentStalled(forMs ms: Int64) {
        lock.withLock {
            state.lastProgressMs += ms
            state.epochStartedMs += ms
        }
    }

    /// Checks limits; returns why the agent must end the process, if it must.
    func violation(nowMs: Int64) -> AgentKill? {
        let s = lock.withLock { state }
        guard s.stopReason == nil else { return nil }
        let timeouts = config.timeouts
        if timeouts.totalSeconds > 0, nowMs - record.startedAtMs > Int64(timeouts.totalSeconds) * 1000 {
            return .totalTimeout
        }
        if timeouts.perEpochSeconds > 0, s.reportsEpochs, nowMs - s.epochStartedMs > Int64(timeouts.perEpochSeconds) * 1000 {
            return .epochTimeout
        }
        // Hang detection needs a job that speaks the contract: an explicit window, or lines seen.
        let window = timeouts.heartbeatSeconds > 0 ? timeouts.heartbeatSeconds : (s.reportedLines > 0 ? defaultHangSeconds : 0)
        if window > 0, nowMs - s.lastProgressMs > Int64(window) * 1000 {
            return .hang
        }
        if record.memoryEnforcement == .watchdog || record.memoryEnforcement == .rlimit,
           let limit = record.memoryLimitBytes, limit > 0,
           NodeProbe.rss(processGroup: record.trainerPID) > limit {
            return .memoryWatchdog
        }
        return nil
    }

    /// Ends the process: SIGTERM to its process group now, SIGKILL once the grace has passed (see ``tickStop``).
    /// `graceMs` is the stop's own grace (time to save a checkpoint); nil = the agent's default.
    func stop(_ reason: AgentKill, nowMs: Int64, graceMs: Int64? = nil) {
        let first = lock.withLock { () -> Bool in
            guard state.stopReason == nil else { return false }
            state.stopReason = reason
            state.termSentMs = nowMs
            state.stopGraceMs = graceMs
            return true
        }
        guard first else { return }
        logger.info("agent.job.stopping", metadata: ["job.reason": "\(reason.rawValue)", "job.stop_grace_ms": "\(graceMs.map(String.init) ?? "default")"])
        if reason == .memoryWatchdog {
            lock.withLock { state.killSent = true }
            kill(-record.trainerPID, SIGKILL)
        } else {
            kill(-record.trainerPID, SIGTERM)
        }
    }

    /// Sends SIGKILL when a stop's grace has passed: the stop's own grace, else `defaultGraceMs`. A trainer that
    /// reported its checkpoint after SIGTERM has saved what a drain waits for: it gets `defaultGraceMs` more to exit.
    func tickStop(nowMs: Int64, defaultGraceMs: Int64) {
        let due = lock.withLock { () -> Bool in
            guard let sent = state.termSentMs, !state.killSent else { return false }
            var deadline = sent + (state.stopGraceMs ?? defaultGraceMs)
            if let saved = state.checkpointWhileStoppingMs { deadline = min(deadline, saved + defaultGraceMs) }
            guard nowMs >= deadline else { return false }
            state.killSent = true
            return true
        }
        if due {
            logger.warning("agent.job.kill_after_grace")
            kill(-record.trainerPID, SIGKILL)
        }
    }

    var isStopping: Bool { lock.withLock { state.stopReason != nil } }

    /// The trainer's end as the shim recorded it, or nil while it runs.
    func exitStatus() -> (code: Int32?, signal: Int32?, fenced: Bool)? {
        if isChild {
            var status: Int32 = 0
            _ = waitpid(record.shimPID, &status, WNOHANG)  // reap the shim once it is done
        }
        if let text = try? String(contentsOfFile: paths.status(attempt), encoding: .utf8) {
            let parts = text.split(separator: " ")
            guard parts.count == 2, let value = Int32(parts[1].trimmingCharacters(in: .whitespacesAndNewlines)) else {
                return (nil, nil, false)
            }
            switch parts[0] {
            case "exited": return (value, nil, false)
            case "signaled": return (nil, value, false)
            case "fenced": return value > 128 ? (nil, value - 128, true) : (value, nil, true)
            default: return (127, nil, false)  // spawn-error
            }
        }
        if !Self.isAlive(record) {
            // The shim is gone without writing a status (killed itself): the trainer's fate is unknown.
            return (nil, 9, false)
        }
        return nil
    }

    /// A resource sample of the process tree, every `intervalMs`; GPU fields from `gpu` (nil: no GPU facts, zeros).
    func sampleIfDue(nowMs: Int64, intervalMs: Int64, gpu: GPUFacts? = nil) {
        let (due, lastCPU, lastMs) = lock.withLock { () -> (Bool, Double, Int64) in
            (nowMs - state.lastSampleMs >= intervalMs, state.lastCPUSeconds, state.lastSampleMs)
        }
        guard due else { return }
        let cpu = NodeProbe.cpuSeconds(processGroup: record.trainerPID)
        let memory = record.cgroup.flatMap(MemoryEnforcer.memoryUsed) ?? NodeProbe.rss(processGroup: record.trainerPID)
        let disk = NodeProbe.disk(paths.job)
        let cores = lastMs > 0 ? max(0, cpu - lastCPU) / (Double(nowMs - lastMs) / 1000) : 0
        lock.withLock {
            state.lastSampleMs = nowMs
            state.lastCPUSeconds = cpu
        }
        let gpuUsage = gpu.flatMap { facts in facts.apps.isEmpty ? nil : facts.job(pids: processes()) }
        emit(.resources(ResourceSample(memoryUsedBytes: memory, memoryLimitBytes: record.memoryLimitBytes ?? 0, cpuCores: cores,
                                       gpuMemoryUsedBytes: gpuUsage?.memoryUsedBytes ?? 0, gpuMemoryTotalBytes: gpuUsage?.memoryTotalBytes ?? 0,
                                       gpuUtilization: gpuUsage?.utilization ?? 0,
                                       diskUsedBytes: disk.used, diskTotalBytes: disk.total)), nowMs: nowMs)
    }

    /// The job's processes: its process group, and its cgroup's members (a worker may have left the group).
    private func processes() -> Set<Int32> {
        var pids = NodeProbe.pids(processGroup: record.trainerPID)
        if let procs = record.cgroup?.procs, let text = try? String(contentsOfFile: procs, encoding: .utf8) {
            pids.formUnion(text.split(whereSeparator: \.isNewline).compactMap { Int32($0) })
        }
        return pids
    }

    /// Stops reading the events FIFO and leaves the process running: what is still unread stays in the FIFO
    /// for the next agent that adopts the job.
    func detach() {
        lock.withLock { stopReading = true }
        readerDone?.wait()
    }

    /// After the trainer ended: drains its last event lines, classifies the exit, publishes it, cleans up.
    func finish(code: Int32?, signal: Int32?, fenced: Bool = false, nowMs: Int64) -> JobExited {
        lock.withLock { stopReading = true }
        readerDone?.wait()
        var s = lock.withLock { state }
        if fenced, s.stopReason == nil { s.stopReason = .fenced }
        let cgroupOOM = record.cgroup.map { MemoryEnforcer.oomKills($0) > record.oomKillsAtStart } ?? false
        let tail = LogTail.lines(of: paths.log(attempt), count: 100)
        let observation = ExitObservation(exitCode: code, signal: signal, cgroupOOMKill: cgroupOOM, killedByAgent: s.stopReason,
                                          reportedErrorClass: s.reportedError, reportedErrorMessage: s.reportedMessage, logTail: tail,
                                          checkpointDirectory: checkpointDirectory, resumePath: record.resumedFrom ?? record.assignment.resumeFrom)
        let (failureClass, detail) = ProcessExitClassifier().classify(observation)
        let exited = JobExited(
            exitCode: code ?? -1, signal: signal ?? 0, oomKilled: cgroupOOM && signal == 9, failureClass: failureClass,
            detail: detail, logTail: Array(tail.suffix(50)), runtimeSeconds: Double(nowMs - record.startedAtMs) / 1000,
            epochsCompleted: s.epochsCompleted, stopRequested: s.stopReason == .stopRequested)
        emit(.exited(exited), nowMs: nowMs)
        record.finished = true
        record.exit = exited
        paths.save(record)
        if let cgroup = record.cgroup { MemoryEnforcer.remove(cgroup) }
        try? FileManager.default.removeItem(atPath: paths.fifo(attempt))
        logger.info("agent.job.exited", metadata: [
            "job.failure_class": "\(failureClass.rawValue)", "job.detail": "\(detail)", "job.epochs": "\(s.epochsCompleted)",
        ])
        return exited
    }
}

/// How a trainer's shim fences it (see ``NodeLease``).
struct Fence: Sendable {
    let leasePath: String
    let afterMs: Int64
    let graceMs: Int64
}

/// The last lines of a log file, reading at most its last 256 KiB.
enum LogTail {
    static func lines(of path: String, count: Int) -> [String] {
        guard count > 0, let handle = FileHandle(forReadingAtPath: path) else { return [] }
        defer { try? handle.close() }
        let size = (try? handle.seekToEnd()) ?? 0
        let start = size > 262_144 ? size - 262_144 : 0
        try? handle.seek(toOffset: start)
        let data = (try? handle.readToEnd()) ?? Data()
        var lines = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if lines.last == "" { lines.removeLast() }
        if start > 0, !lines.isEmpty { lines.removeFirst() }  // partial first line
        return Array(lines.suffix(count))
    }
}

/// Writes a line of the agent's own into a job's log, where people reading the job's output see it.
func appendAgentNote(_ text: String, to path: String) {
    let line = "archon-agent: \(text)\n"
    if let handle = FileHandle(forWritingAtPath: path) {
        _ = try? handle.seekToEnd()
        try? handle.write(contentsOf: Data(line.utf8))
        try? handle.close()
    } else {
        try? line.write(toFile: path, atomically: false, encoding: .utf8)
    }
}

func resolveExecutable(_ name: String) -> String? {
    if name.contains("/") { return FileManager.default.isExecutableFile(atPath: name) ? name : nil }
    // The agent's PATH, never the job's: the allowlist names a program, and the job must not choose which file it is.
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
    for dir in path.split(separator: ":") {
        let candidate = "\(dir)/\(name)"
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
    }
    return nil
}

/// A NULL-terminated `char *const *` of `strings`, valid inside `body`.
func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
    let pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) } + [nil]
    defer { for p in pointers { free(p) } }
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}

func withOptionalCString<R>(_ string: String?, _ body: (UnsafePointer<CChar>?) -> R) -> R {
    guard let string else { return body(nil) }
    return string.withCString { body($0) }
}
