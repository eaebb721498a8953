import ArchonController
import ArchonCore
import ArchonModel
import ArchonNATS
import ArchonWire
import Foundation
import Logging
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// What `archon chaos` runs: the shipped 3-server NATS cluster, two controllers and three agents as real processes
/// with real trainers, a workload that fails in the runbook's ways, and — unless `faults` is 0 — a schedule of faults
/// drawn from `seed`. Afterwards the invariants are checked from what the system recorded (streams, KV history, the
/// stored state, the process table), never from the daemons' own opinion.
public struct ChaosOptions: Sendable {
    public var seed: UInt64
    /// Faults injected, one after the other (0: the fault-free run every seeded run is compared with).
    public var faults: Int
    /// Run folder (removed first).
    public var directory: String
    /// The `archon` binary the daemons run as.
    public var archon: String
    /// The repository: `deploy/nats/cluster`, `deploy/dev/policy.yaml`, `examples/trainers`.
    public var repository: String

    public init(seed: UInt64, faults: Int, directory: String, archon: String, repository: String) {
        self.seed = seed
        self.faults = faults
        self.directory = directory
        self.archon = archon
        self.repository = repository
    }
}

/// One fault of a schedule.
public struct ChaosFault: Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable, CaseIterable {
        case killController = "SIGKILL controller"
        case freezeController = "SIGSTOP controller past its lease"
        case killAgent = "SIGKILL agent"
        case freezeAgent = "SIGSTOP agent past its fence"
        case killNATS = "SIGKILL nats-server"
        case cutNATS = "cut nats-server from its peers"
    }

    public var kind: Kind
    /// Seconds after the workload was submitted.
    public var at: Double
    /// How long the fault lasts: until the restart, the SIGCONT, the heal.
    public var hold: Double
    /// Which one: 0 = the leader (controllers) or the stream leader (NATS), else a fixed index (1-based).
    public var target: Int

    public var description: String {
        let who: String
        switch kind {
        case .killController, .freezeController: who = target == 0 ? "leader" : "standby"
        case .killAgent, .freezeAgent: who = "n\(target)"
        case .killNATS, .cutNATS: who = target == 0 ? "stream leader" : "nats-\(target)"
        }
        return String(format: "t=%5.1fs %@ (%@) for %.1fs", at, kind.rawValue, who, hold)
    }

    /// The schedule of a seed: `count` faults between 2 s and 32 s into the run, never two at once.
    public static func schedule(seed: UInt64, count: Int) -> [ChaosFault] {
        var random = SplitMix64(seed: seed)
        var faults: [ChaosFault] = []
        var at = 2.0
        for _ in 0..<count {
            at += Double.random(in: 0...(30.0 / Double(max(count, 1))), using: &random)
            let kind = Kind.allCases.randomElement(using: &random)!
            let hold: Double
            let target: Int
            switch kind {
            case .killController: hold = .random(in: 1...3, using: &random); target = Int.random(in: 0...1, using: &random)
            case .freezeController: hold = ChaosFleet.lease + .random(in: 1...3, using: &random); target = 0
            case .killAgent: hold = .random(in: 1...3, using: &random); target = Int.random(in: 1...3, using: &random)
            case .freezeAgent: hold = ChaosFleet.fenceAfter + .random(in: 1...3, using: &random); target = Int.random(in: 1...3, using: &random)
            case .killNATS: hold = .random(in: 2...5, using: &random); target = Int.random(in: 0...3, using: &random)
            case .cutNATS: hold = .random(in: 3...8, using: &random); target = Int.random(in: 0...3, using: &random)
            }
            faults.append(ChaosFault(kind: kind, at: at, hold: hold, target: target))
            at += hold + 1
        }
        return faults
    }
}

/// Where each job ended, as an operator reads it: compared between a faulty run and the fault-free one.
public struct ChaosJobOutcome: Codable, Sendable, Equatable, CustomStringConvertible {
    public var status: String
    /// Failure class of each failed attempt, in order, without `node_fault` (what a killed or frozen node adds).
    public var failures: [String]
    /// The config changes, in order ("batchSize 32 -> 16, …").
    public var configChanges: [String]
    /// Attempts that ended as a node fault (killed by a fence, or on a node that went silent).
    public var nodeFaults: Int

    public init(status: String, failures: [String], configChanges: [String], nodeFaults: Int = 0) {
        self.status = status
        self.failures = failures
        self.configChanges = configChanges
        self.nodeFaults = nodeFaults
    }

    public var description: String {
        "\(status); failures [\(failures.joined(separator: ", "))]; changes [\(configChanges.joined(separator: "; "))]"
            + (nodeFaults > 0 ? "; \(nodeFaults) node fault(s)" : "")
    }

    /// Ended as `expected` (the fault-free run's) did. An attempt a node fault ended before its own failure came (a
    /// fence stopping a trainer that was about to hang; the runbook's once-only faults then do not recur) takes
    /// that failure, and the change it would have led to, with it: what is left must still come in the same order.
    public func matches(_ expected: ChaosJobOutcome) -> Bool {
        guard status == expected.status else { return false }
        if failures == expected.failures { return configChanges == expected.configChanges }
        let preempted = expected.failures.count - failures.count
        return preempted > 0 && preempted <= nodeFaults && Self.isSubsequence(failures, of: expected.failures)
            && Self.isSubsequence(configChanges, of: expected.configChanges)
    }

    static func isSubsequence(_ part: [String], of whole: [String]) -> Bool {
        var rest = whole[...]
        for item in part {
            guard let index = rest.firstIndex(of: item) else { return false }
            rest = rest[rest.index(after: index)...]
        }
        return true
    }
}

/// A run's result.
public struct ChaosResult: Sendable {
    public var faults: [String]
    public var jobs: [String: ChaosJobOutcome]
    /// `<cause> <subject>` of every incident that paged.
    public var pagedCauses: Set<String>
    public var violations: [String]
    /// Figures of what was checked: events, attempts, samples, pages.
    public var checked: [String: Int]
    public var seconds: Double
}

/// The chaos fleet's timing: short enough that a run takes a minute, in the proportions production needs
/// (fence + grace below node silence; a lease the standby notices).
enum ChaosFleet {
    static let lease = 2.0
    static let fenceAfter = 4.0
    static let grace = 1.0
    static let nodeSilence = "15s"
    static let nodes = ["n1", "n2", "n3"]
    static let adminToken = "chaos-admin-token"
}

public final class ChaosRun: @unchecked Sendable {
    let options: ChaosOptions
    let log: @Sendable (String) -> Void
    private var cluster: NATSCluster!
    private var credentials: FleetCredentials!
    private var controllers: [ChaosDaemon] = []
    private var agents: [ChaosDaemon] = []
    private var admin: NATSConnection?
    private let sampler: ProcessSampler

    public init(_ options: ChaosOptions, log: @escaping @Sendable (String) -> Void) {
        self.options = options
        self.log = log
        sampler = ProcessSampler(folder: options.directory)
    }

    /// Runs the fleet, the workload and the faults; checks every invariant; stops everything.
    public func run() async throws -> ChaosResult {
        let started = ContinuousClock.now
        let directory = options.directory
        try? FileManager.default.removeItem(atPath: directory)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { shutdown() }
        try await startFleet()
        let leader = try await waitForLeader()
        let client = ControllerClient(base: leader, token: ChaosFleet.adminToken)
        try await waitForNodes(client)
        sampler.start()

        let workload = ChaosWorkload.jobs(trainers: "\(options.repository)/examples/trainers")
        for spec in workload {
            try await retrying("submit \(spec.id)") {
                let client = ControllerClient(base: try await self.waitForLeader(), token: ChaosFleet.adminToken)
                _ = try await client.call("POST", "/v1/training/jobs", body: try JSONEncoder().encode(spec))
            }
        }
        let submitted = ContinuousClock.now
        let schedule = ChaosFault.schedule(seed: options.seed, count: options.faults)
        var injected: [String] = []
        for fault in schedule {
            let due = submitted + .milliseconds(Int(fault.at * 1000))
            if due > .now { try await Task.sleep(until: due) }
            injected.append(try await inject(fault))
        }

        // Every job ends; everything delivered is acknowledged; the last pages (group wait 3 s) are out.
        let ids = Set(workload.map(\.id))
        let jobs = try await settle(ids)
        sampler.stop()
        let result = try await checkWhenReadable(jobs, injected: injected)
        return ChaosResult(faults: injected, jobs: result.jobs, pagedCauses: result.paged, violations: result.violations,
                           checked: result.checked, seconds: Bench.seconds(ContinuousClock.now - started))
    }

    // MARK: The fleet

    /// The harness's own NATS client logs only what is wrong (a reconnect is part of the show).
    private static let quiet: Logger = {
        var logger = Logger(label: "archon.chaos")
        logger.logLevel = .error
        return logger
    }()

    private func startFleet() async throws {
        let directory = options.directory
        credentials = try FleetCredentials.create(in: "\(directory)/credentials", nodes: ChaosFleet.nodes)
        cluster = try NATSCluster(directory: directory, deploy: "\(options.repository)/deploy/nats", authorizationFile: credentials.authorizationFile)
        let policy = try String(contentsOfFile: "\(options.repository)/deploy/dev/policy.yaml", encoding: .utf8)
        let policyFile = "\(directory)/policy.yaml"
        // Three nodes: any three failures make a multi-agent storm, which groups the jobs' own pages under it on
        // some runs and not on others (it depends on placement); the suite compares each job's own pages instead.
        let chaosPolicy = try NATSCluster.replacing(policy, [("detection:\n", "detection:\n  nodeSilence: \(ChaosFleet.nodeSilence)\n")])
            + "correlation:\n  multiAgent: {enabled: false}\n"
        try chaosPolicy.write(toFile: policyFile, atomically: true, encoding: .utf8)
        for id in ["c1", "c2"] {
            var config = ControllerConfig(
                id: id, nats: cluster.urls, httpHost: "127.0.0.1", httpPort: try freeLoopbackPort(),
                tokens: [APIToken(name: "admin", token: ChaosFleet.adminToken, scopes: [.admin])],
                datasets: ChaosWorkload.datasets.map { Dataset(id: $0, location: "") }, policyFile: policyFile, leaseSeconds: ChaosFleet.lease, replicas: 3,
                ackWaitSeconds: 2)
            config.natsNKeySeedFile = credentials.controllerSeedFile
            config.assignmentSigningKeyFile = credentials.signingKeyFile
            config.natsTLS = NATSTLSConfig(caFile: cluster.caFile)
            let path = "\(directory)/\(id).json"
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(config).write(to: URL(fileURLWithPath: path))
            controllers.append(ChaosDaemon(name: id, executable: options.archon, arguments: ["controller", "--config", path, "--log-level", "notice"],
                                           log: "\(directory)/\(id).log", api: "http://127.0.0.1:\(config.httpPort)"))
        }
        try FileManager.default.createDirectory(atPath: "\(directory)/checkpoints", withIntermediateDirectories: true)
        for node in ChaosFleet.nodes {
            let work = "\(directory)/agents/\(node)"
            try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
            agents.append(ChaosDaemon(name: node, executable: options.archon, arguments: [
                "agent", "--node-id", node, "--nats", cluster.urls, "--work-dir", work,
                "--nats-nkey-seed", credentials.nodeSeedFile(node), "--nats-tls-ca", cluster.caFile,
                "--assignment-public-key", credentials.signingPublicKeyFile,
                "--checkpoint-root", "\(directory)/checkpoints", "--checkpoint-storage", "shared",
                "--heartbeat", "1", "--fence-after", "\(Int(ChaosFleet.fenceAfter))", "--grace-period", "\(Int(ChaosFleet.grace))",
                "--log-level", "notice",
            ], log: "\(directory)/\(node).log", api: nil))
        }
        for daemon in controllers + agents { try daemon.start() }
        var options = try credentials.natsOptions(servers: cluster.servers.map(\.url), name: "archon-chaos", seedFile: credentials.adminSeedFile)
        options.tls = NATSOptions.TLS(caFile: cluster.caFile)
        let settings = options
        admin = try await retrying("connect to the cluster") { try await NATSConnection.connect(settings, logger: Self.quiet) }
    }

    private func shutdown() {
        sampler.stop()
        admin?.close()
        for daemon in agents + controllers {
            daemon.resume()
            daemon.kill(SIGTERM)
        }
        for daemon in agents + controllers { daemon.waitGone(seconds: 5) }
        // Trainers and their shims, should any outlive their agent (every job ended, so none should).
        for pid in ProcessSampler.processes(inFolder: options.directory) { Glibc.kill(pid, SIGKILL) }
        cluster?.stop()
    }

    /// The API base URL of the controller that says it leads.
    private func waitForLeader(timeout: Double = 60) async throws -> String {
        let deadline = ContinuousClock.now + .seconds(timeout)
        while ContinuousClock.now < deadline {
            for controller in controllers where await controller.role() == "leader" { return controller.api! }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw DevError("no controller became leader within \(Int(timeout)) s; see \(options.directory)/c1.log and c2.log")
    }

    private func waitForNodes(_ client: ControllerClient) async throws {
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            if let nodes = try? await client.nodes(), Set(nodes.map(\.id)).isSuperset(of: ChaosFleet.nodes) { return }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw DevError("the agents did not all report within 60 s; see \(options.directory)/n*.log")
    }

    private func retrying<T>(_ what: String, seconds: Double = 60, _ body: () async throws -> T) async throws -> T {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while true {
            do {
                return try await body()
            } catch {
                if ContinuousClock.now > deadline { throw DevError("\(what): \(error)") }
                try await Task.sleep(for: .milliseconds(300))
            }
        }
    }

    // MARK: Faults

    private func inject(_ fault: ChaosFault) async throws -> String {
        var said = fault.description
        let hold = Duration.milliseconds(Int(fault.hold * 1000))
        switch fault.kind {
        case .killController, .freezeController:
            var roles: [String?] = []
            for controller in controllers { roles.append(await controller.role()) }
            let leader = roles.firstIndex(of: "leader") ?? 0
            let index = fault.target == 0 ? leader : 1 - leader
            let victim = controllers[index]
            said += " -> \(victim.name)"
            try await outage(victim, kill: fault.kind == .killController, for: hold)
        case .killAgent, .freezeAgent:
            try await outage(agents[fault.target - 1], kill: fault.kind == .killAgent, for: hold)
        case .killNATS, .cutNATS:
            var index = fault.target - 1
            if fault.target == 0 {
                index = await streamLeader() ?? 0
            }
            said += " -> \(cluster.names[index])"
            if fault.kind == .killNATS {
                cluster.servers[index].crash()
                try await Task.sleep(for: hold)
                try cluster.servers[index].start()
            } else {
                cluster.cut(index)
                try await Task.sleep(for: hold)
                cluster.heal(index)
            }
        }
        log("  fault: \(said)")
        return said
    }

    /// SIGKILL, then a restart after `hold`; or SIGSTOP, then SIGCONT after `hold`.
    private func outage(_ daemon: ChaosDaemon, kill: Bool, for hold: Duration) async throws {
        if kill {
            daemon.kill(SIGKILL)
            daemon.waitGone(seconds: 5)
            try await Task.sleep(for: hold)
            try daemon.start()
        } else {
            daemon.freeze()
            try await Task.sleep(for: hold)
            daemon.resume()
        }
    }

    /// Index of the server leading `ARCHON_EVENTS`, as JetStream reports it.
    private func streamLeader() async -> Int? {
        guard let admin,
              let reply = try? await admin.request("$JS.API.STREAM.INFO.\(Fleet.eventsStream)", [], timeout: .seconds(2)),
              let info = try? JSONSerialization.jsonObject(with: Data(reply.payload)) as? [String: Any],
              let leader = (info["cluster"] as? [String: Any])?["leader"] as? String
        else { return nil }
        return cluster.names.firstIndex(of: leader)
    }

    // MARK: Settling

    private static let terminal: Set<String> = ["completed", "failed", "paused", "stopped", "rejected"]

    /// Waits until every job ended and the controller's consumer has nothing pending, then for the last pages.
    private func settle(_ ids: Set<String>) async throws -> [JobView] {
        let deadline = ContinuousClock.now + .seconds(300)
        var last: [JobView] = []
        while ContinuousClock.now < deadline {
            if let leader = try? await waitForLeader(timeout: 5),
               let jobs = try? await ControllerClient(base: leader, token: ChaosFleet.adminToken).jobs() {
                last = jobs
                let ended = jobs.filter { ids.contains($0.id) && Self.terminal.contains($0.status) }
                if ended.count == ids.count, await consumerDrained() {
                    try await Task.sleep(for: .seconds(6))  // group wait (3 s) and a margin: the last pages go out
                    let leader = try await waitForLeader()
                    return try await ControllerClient(base: leader, token: ChaosFleet.adminToken).jobs()
                }
            }
            try await Task.sleep(for: .milliseconds(500))
        }
        let open = last.filter { !Self.terminal.contains($0.status) }.map { "\($0.id): \($0.status) (\($0.statusDetail))" }
        throw DevError("the workload did not end within 300 s: \(open.joined(separator: "; ")); logs in \(options.directory)")
    }

    private func consumerDrained() async -> Bool {
        guard let admin, let progress = try? await admin.jetStream().consumerProgress(stream: Fleet.eventsStream, durable: Controller.durableName)
        else { return false }
        return progress.pending == 0 && progress.ackPending == 0
    }

    // MARK: Invariants

    /// The checks only read; a read NATS refuses for a moment (JetStream "temporarily unavailable" while a stream
    /// elects a leader after the last fault) is read again, for up to 30 s, rather than failing the run (seed 19).
    private func checkWhenReadable(_ jobs: [JobView], injected: [String]) async throws -> Checked {
        let deadline = ContinuousClock.now + .seconds(30)
        while true {
            var checked: Checked?
            do {
                checked = try await check(jobs, injected: injected)
            } catch {
                guard error is NATSError, ContinuousClock.now < deadline else { throw error }
                print("  check: \(error); reading again")
            }
            if let checked { return checked }
            try await Task.sleep(for: .seconds(2))
        }
    }

    typealias Checked = (jobs: [String: ChaosJobOutcome], paged: Set<String>, violations: [String], checked: [String: Int])

    private func check(_ jobs: [JobView], injected: [String]) async throws -> Checked {
        guard let admin else { throw DevError("not connected") }
        let js = try admin.jetStream()
        var violations: [String] = []
        var checked: [String: Int] = [:]

        // 1. Every event an agent produced is in the stream, gap-free per (job, attempt), ending with the exit, and
        //    the stored state applied exactly those: every sequence once (the window), none beyond.
        let events = try await messages(js, stream: Fleet.eventsStream)
        var sequences: [String: [Int: [UInt64: Int]]] = [:]  // job → attempt → sequence → copies
        var lastBody: [String: [Int: (UInt64, String)]] = [:]
        var kinds: [String: String] = [:]  // "<job> <attempt> <sequence>" → what the event was, for the report
        var accepted: [String: [(UInt64, String)]] = [:]  // node → (epoch, job) in stream order
        for (subject, payload) in events {
            guard let (_, job) = Fleet.eventsSubjectTokens(subject), job != "_node", let event = try? TrainingEvent.decode(payload) else { continue }
            sequences[job, default: [:]][event.attempt, default: [:]][event.sequence, default: 0] += 1
            let kind: String
            switch event.body {
            case .exited: kind = "exited"
            case .accepted(let a): kind = "accepted"; accepted[event.nodeID, default: []].append((a.fencingEpoch, job))
            default: kind = "other"
            }
            kinds["\(job) \(event.attempt) \(event.sequence)"] = Self.kind(event.body)
            if event.sequence >= (lastBody[job]?[event.attempt]?.0 ?? 0) { lastBody[job, default: [:]][event.attempt] = (event.sequence, kind) }
        }
        checked["events"] = events.count
        let state = try await StateStore.read(js, replicas: 3, at: UnixTime.nowMillis()).core
        var attempts = 0
        for (job, byAttempt) in sequences.sorted(by: { $0.key < $1.key }) {
            for (attempt, seen) in byAttempt.sorted(by: { $0.key < $1.key }) {
                attempts += 1
                let highest = seen.keys.max() ?? 0
                let missing = (1...max(highest, 1)).filter { seen[$0] == nil }
                if !missing.isEmpty { violations.append("\(job) attempt \(attempt): events \(missing) never reached the stream (highest \(highest))") }
                if lastBody[job]?[attempt]?.1 != "exited" {
                    violations.append("\(job) attempt \(attempt): its last event (\(highest)) is not its exit")
                }
                guard let record = state.job(job) else {
                    violations.append("\(job): not in the stored state")
                    continue
                }
                guard let applied = record.history.first(where: { $0.attempt == attempt })?.sequences else {
                    violations.append("\(job) attempt \(attempt): events in the stream, no attempt in the stored state")
                    continue
                }
                if applied.contiguous != highest || !applied.ahead.isEmpty {
                    let unapplied = (1...max(highest, 1)).filter { !applied.contains($0) }
                        .map { "\($0) \(kinds["\(job) \(attempt) \($0)"] ?? "?")" }
                    violations.append("\(job) attempt \(attempt): stored state applied 1...\(applied.contiguous) + \(applied.ahead.sorted()), the stream holds 1...\(highest); not applied: \(unapplied.joined(separator: ", "))")
                }
            }
        }
        checked["attempts"] = attempts
        checked["duplicate deliveries in the stream"] = sequences.values.flatMap(\.values).flatMap(\.values).reduce(0) { $0 + $1 - 1 }

        // 2. No daemon died unasked; never two live trainers of one job at the same instant.
        violations += (controllers + agents).flatMap(\.deaths)
        violations += sampler.overlaps
        checked["process-table samples"] = sampler.samples

        // 3. Pages: each (incident, level) paged once, each cause opened once while open.
        let escalations = try await messages(js, stream: Fleet.escalationsStream).compactMap { try? Escalation.decode($0.payload) }
        var pages: [String: Int] = [:]
        var open: Set<String> = []
        var paged: Set<String> = []
        for escalation in escalations {
            let incident = escalation.incident
            switch escalation.kind {
            case .opened, .escalated:
                pages["\(incident.id) \(incident.level.rawValue)", default: 0] += 1
                paged.insert("\(incident.cause.rawValue) \(incident.subject)")
                if escalation.kind == .opened {
                    if open.contains(incident.dedupKey) { violations.append("incident \(incident.dedupKey) opened again while open (\(incident.id))") }
                    open.insert(incident.dedupKey)
                }
            case .resolved: open.remove(incident.dedupKey)
            case .updated, .acknowledged: break
            }
        }
        for (page, count) in pages.sorted(by: { $0.key < $1.key }) where count > 1 { violations.append("incident \(page) paged \(count) times") }
        checked["pages"] = pages.count

        // 4. No assignment from a stale leader ran: the fencing epochs a node accepted never go back, and no leader
        //    wrote a key after a newer one had.
        for (node, epochs) in accepted.sorted(by: { $0.key < $1.key }) {
            for (previous, next) in zip(epochs, epochs.dropFirst()) where next.0 < previous.0 {
                violations.append("\(node) accepted \(next.1) at fencing epoch \(next.0) after \(previous.1) at \(previous.0)")
            }
        }
        var written: [String: UInt64] = [:]
        let desired = try await messages(js, stream: "KV_\(Fleet.desiredBucket)")
        for (subject, payload) in desired where !payload.isEmpty {
            let key = String(subject.dropFirst("$KV.\(Fleet.desiredBucket).".count))
            guard let assignment = try? SignedAssignment.decode(payload).unverifiedAssignment() else { continue }
            if let before = written[key], assignment.fencingEpoch < before {
                violations.append("\(key): written at fencing epoch \(assignment.fencingEpoch) after \(before) (a stale leader)")
            }
            written[key] = max(written[key] ?? 0, assignment.fencingEpoch)
        }
        checked["assignments accepted"] = accepted.values.map(\.count).reduce(0, +)
        checked["assignments written"] = desired.count

        // 5. Where each job ended (compared with the fault-free run by the caller).
        var outcomes: [String: ChaosJobOutcome] = [:]
        for job in jobs {
            outcomes[job.id] = ChaosJobOutcome(
                status: job.status,
                failures: job.history.map(\.failureClass).filter { !$0.isEmpty && $0 != "none" && $0 != FailureClass.nodeFault.rawValue },
                configChanges: job.history.map(\.configChange).filter { !$0.isEmpty },
                nodeFaults: job.history.filter { $0.failureClass == FailureClass.nodeFault.rawValue }.count)
        }
        return (outcomes, paged, violations, checked)
    }

    private static func kind(_ body: TrainingEvent.Body) -> String {
        switch body {
        case .accepted: "accepted"
        case .started: "started"
        case .epoch(let e): "epoch \(e.epoch)"
        case .step: "step"
        case .checkpoint: "checkpoint"
        case .resources: "resources"
        case .exited(let e): "exited (\(e.failureClass.rawValue))"
        case .heartbeat: "heartbeat"
        case .nodeStatus: "node status"
        case .securityAlert: "security alert"
        }
    }

    /// Every message of `stream`, in order.
    private func messages(_ js: JetStream, stream: String) async throws -> [(subject: String, payload: [UInt8])] {
        let bounds = try await js.streamBounds(stream)
        guard bounds.last >= bounds.first, bounds.last > 0 else { return [] }
        var out: [(subject: String, payload: [UInt8])] = []
        for sequence in bounds.first...bounds.last {
            if let message = try await js.message(stream, sequence: sequence) { out.append(message) }
        }
        return out
    }
}

/// A daemon of the chaos fleet: one `archon` child process, restartable, freezable.
final class ChaosDaemon: @unchecked Sendable {
    let name: String
    let executable: String
    let arguments: [String]
    let logPath: String
    let api: String?
    private let child = Mutex<ChildProcess?>(nil)
    /// Exits nobody asked for ("c1 exited with 134"): a daemon that dies is a failed run whatever else held.
    private let unexpected = Mutex<[String]>([])
    private let stopping = Mutex(false)

    var deaths: [String] { unexpected.withLock { $0 } }

    init(name: String, executable: String, arguments: [String], log: String, api: String?) {
        self.name = name
        self.executable = executable
        self.arguments = arguments
        self.logPath = log
        self.api = api
    }

    func start() throws {
        let process = try ChildProcess(executable, arguments, environment: ProcessInfo.processInfo.environment, stdout: logPath, stderr: logPath)
        child.withLock { $0 = process }
        stopping.withLock { $0 = false }
        Task { [self] in
            let status = await process.exitStatus()
            if !stopping.withLock({ $0 }) {
                let how = status > 128 ? "killed by signal \(status - 128)" : "exited with \(status)"
                unexpected.withLock { $0.append("\(name) \(how), unasked; see \(logPath)") }
            }
        }
    }

    func kill(_ signal: Int32) {
        if signal == SIGKILL || signal == SIGTERM { stopping.withLock { $0 = true } }
        child.withLock { $0 }?.kill(signal)
    }
    func freeze() { kill(SIGSTOP) }
    func resume() { kill(SIGCONT) }

    func waitGone(seconds: Double) {
        guard let process = child.withLock({ $0 }) else { return }
        let deadline = Date().addingTimeInterval(seconds)
        while !process.hasExited, Date() < deadline { usleep(10_000) }
        if !process.hasExited { process.kill(SIGKILL) }
        while !process.hasExited, Date() < deadline.addingTimeInterval(2) { usleep(10_000) }
    }

    /// The role it reports on /readyz; nil while it does not answer.
    func role() async -> String? {
        guard let api, let data = try? await ControllerClient(base: api, token: "").call("GET", "/readyz"),
              let view = try? JSONDecoder().decode(ReadinessView.self, from: data)
        else { return nil }
        return view.role
    }
}

/// Samples the process table for trainers (`ARCHON_JOB_ID` in their environment) and records every instant at
/// which two live processes of one job existed.
final class ProcessSampler: @unchecked Sendable {
    /// The run's folder: its agents' work directories, where every trainer's `ARCHON_CONFIG` lies.
    let folder: String
    private let state = Mutex<(running: Bool, samples: Int, overlaps: [String])>((false, 0, []))
    private var thread: Thread?

    init(folder: String) { self.folder = folder }

    var samples: Int { state.withLock { $0.samples } }
    var overlaps: [String] { state.withLock { $0.overlaps } }

    func start() {
        state.withLock { $0.running = true }
        let thread = Thread { [self] in
            var reported: Set<String> = []
            while state.withLock({ $0.running }) {
                var byJob: [String: [(pid: Int32, parent: Int32, attempt: String)]] = [:]
                for trainer in Self.trainers(in: folder) {
                    guard let job = trainer.environment["ARCHON_JOB_ID"] else { continue }
                    byJob[job, default: []].append((trainer.pid, trainer.parent, trainer.environment["ARCHON_ATTEMPT"] ?? "?"))
                }
                var found: [String] = []
                for (job, all) in byJob {
                    // A trainer's own children (a fork before an exec) are part of it, not a second copy.
                    let pids = Set(all.map(\.pid))
                    let processes = all.filter { !pids.contains($0.parent) }
                    guard processes.count > 1 else { continue }
                    let key = "\(job) \(processes.map(\.pid).sorted())"
                    if reported.insert(key).inserted {
                        // Each one's command line and its parent's: what the process was, should this be a misread.
                        found.append("\(job): \(processes.count) live trainers at once: " + processes.map {
                            "pid \($0.pid) [\(Self.commandLine($0.pid))] (parent \($0.parent) [\(Self.commandLine($0.parent))]) attempt \($0.attempt)"
                        }.joined(separator: ", "))
                    }
                }
                state.withLock {
                    $0.samples += 1
                    $0.overlaps += found
                }
                usleep(50_000)
            }
        }
        thread.start()
        self.thread = thread
    }

    func stop() { state.withLock { $0.running = false } }

    /// Live (not zombie) Python processes with `ARCHON_JOB_ID` set: the trainers (their shims are `archon`).
    static func trainers(in folder: String) -> [(pid: Int32, parent: Int32, environment: [String: String])] {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        var out: [(pid: Int32, parent: Int32, environment: [String: String])] = []
        for entry in entries {
            guard let pid = Int32(entry),
                  let command = try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(entry)/cmdline")),
                  String(decoding: command, as: UTF8.self).contains(".py"),
                  let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")"),
                  case let fields = stat[stat.index(after: close)...].split(separator: " "), fields.count > 1, fields[0] != "Z",
                  let parent = Int32(fields[1]), !beingKilled(entry),
                  let raw = try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(entry)/environ"))
            else { continue }
            var environment: [String: String] = [:]
            for item in raw.split(separator: 0) {
                let text = String(decoding: item, as: UTF8.self)
                guard text.hasPrefix("ARCHON_"), let equals = text.firstIndex(of: "=") else { continue }
                environment[String(text[..<equals])] = String(text[text.index(after: equals)...])
            }
            // This run's trainers only: a process of an earlier run (or of anything else) is not this fleet's.
            if environment["ARCHON_JOB_ID"] != nil, environment["ARCHON_CONFIG"]?.hasPrefix(folder) == true {
                out.append((pid, parent, environment))
            }
        }
        return out
    }

    /// A process's command line, arguments joined by spaces, at most 160 characters ("?" when it is gone).
    static func commandLine(_ pid: Int32) -> String {
        guard let raw = try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline")), !raw.isEmpty else { return "?" }
        return String(raw.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }.joined(separator: " ").prefix(160))
    }

    /// SIGKILL pending (the kernel's OOM killer, a fence's or an agent's kill): the process is being torn down and
    /// runs no more code, though it may take a moment to leave the process table.
    static func beingKilled(_ pid: String) -> Bool {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return false }
        for line in status.split(separator: "\n") where line.hasPrefix("SigPnd:") || line.hasPrefix("ShdPnd:") {
            if let mask = UInt64(line.split(separator: "\t").last ?? "", radix: 16), mask & (1 << (UInt64(SIGKILL) - 1)) != 0 { return true }
        }
        return false
    }

    /// Processes whose command line names `folder` (the run's agents, shims and trainers).
    static func processes(inFolder folder: String) -> [Int32] {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        return entries.compactMap { entry -> Int32? in
            guard let pid = Int32(entry), pid != getpid(),
                  let command = try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(entry)/cmdline")),
                  String(decoding: command, as: UTF8.self).contains(folder)
            else { return nil }
            return pid
        }
    }
}

/// The workload every run plays: a job for each way the runbook's failures end, on the fault trainer and the
/// numpy trainer. Long enough (8-10 s a job) that faults land while they run.
enum ChaosWorkload {
    /// One dataset per job that fails on its data: two such failures on one dataset are a bad dataset (the
    /// correlation pauses its jobs), which is not what this workload plays.
    static let datasets = ["digits", "archive-2019", "restricted"]

    static func jobs(trainers: String) -> [JobSpec] {
        let fault = "\(trainers)/fault_trainer.py"
        let digits = "\(trainers)/digits_mlp.py"
        func job(_ id: String, _ script: String = fault, epochs: Int = 8, memory: UInt64 = 512 << 20, lr: Double = 0.01,
                 dataset: String = "digits", hyper: [String: String], timeouts: Timeouts = Timeouts(totalSeconds: 600)) -> JobSpec {
            var hyper = hyper
            if script == fault { hyper["epochSeconds"] = hyper["epochSeconds"] ?? "1" }
            return ScenarioCatalog.spec(id, script, kind: "chaos-\(id)", batch: 32, lr: lr, epochs: epochs, memory: memory, dataset: dataset, hyper: hyper,
                                        timeouts: timeouts)
        }
        return [
            job("steady-1", hyper: ["fault": "none"]),
            job("steady-2", hyper: ["fault": "none"]),
            job("digits", digits, epochs: 6, lr: 0.1, hyper: ["hidden": "64"]),
            job("oom", memory: 256 << 20, hyper: ["fault": "oom_once", "allocMB": "400"]),
            job("diverge", hyper: ["fault": "nan", "nanAtEpoch": "2", "nanAboveLR": "0.005"]),
            job("crash", hyper: ["fault": "crash_once", "crashAfterEpochs": "2", "crashHow": "exception"]),
            job("hang", hyper: ["fault": "hang_once"], timeouts: Timeouts(totalSeconds: 600, heartbeatSeconds: 4)),
            job("no-data", dataset: "archive-2019", hyper: ["fault": "missing_dataset"]),
            job("denied", dataset: "restricted", hyper: ["fault": "permission"]),
        ]
    }
}
