import ArchonAgent
import ArchonController
import ArchonModel
import ArchonNATS
import ArchonWire
import ArgumentParser
import Foundation
import Logging
import Metrics
import Prometheus
import ServiceLifecycle

/// `archon agent`: the daemon on every training machine.
struct AgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent",
        abstract: "Run the node agent: supervise training processes on this machine.",
        discussion: """
            Reconciles this node's processes to the desired state in KV archon_desired (keys <node>.<job>), \
            enforces memory limits (cgroup v2, v1, or RLIMIT_AS with a watchdog), timeouts and the checkpoint policy, \
            and publishes every event on archon.v1.events.<node>.<job>. See docs/agent.md.
            """)

    @Option(name: .long, help: "This node's id ([A-Za-z0-9_-]+).")
    var nodeId: String

    @OptionGroup var connection: NATSClientOptions

    @Option(name: .long, help: "The controller's assignment public key (assignment-signing.pub from `archon credentials`): only assignments it signed run here.")
    var assignmentPublicKey: String?

    @Flag(name: .long, help: "Run assignments without checking any signature: anyone who can write archon_desired runs code here. Local experiments only; reported in the log and NodeStatus.")
    var insecureUnsignedAssignments = false

    @Option(name: .long, help: "Work directory: job logs, checkpoints, state and the event spool.")
    var workDir: String

    @Option(name: .long, parsing: .singleValue, help: "A node label key=value (repeatable).")
    var label: [String] = []

    @Option(name: .long, help: "Memory enforcement: auto, cgroup, rlimit, watchdog, none.")
    var memoryEnforcement: String = "auto"

    @Flag(name: .long, help: ArgumentHelp(
        "cgroup v2 under systemd with Delegate=yes: job cgroups go under the agent's own cgroup, which it owns.",
        discussion: "The agent moves itself into <its cgroup>/agent (a cgroup with children may hold no process) and makes one cgroup per job under <its cgroup>/archon/<node>. Without it, job cgroups go under /sys/fs/cgroup/archon/<node>."))
    var cgroupDelegated = false

    @Option(name: .long, help: "Seconds between SIGTERM and SIGKILL when stopping a job.")
    var gracePeriod: Double = 10

    @Option(name: .long, help: "Hang window in seconds for jobs that report progress but set no heartbeat window.")
    var hangAfter: Int = 300

    @Option(name: .long, help: "Serve Prometheus metrics (spool depth, events published) on this port at /metrics; 0 = off.")
    var metricsPort: Int = 0

    @Option(name: .long, help: "Address --metrics-port listens on.")
    var metricsHost: String = "0.0.0.0"

    @Option(name: .long, help: "Seconds between node heartbeats.")
    var heartbeat: Double = 2

    @Option(name: .long, help: "Seconds between per-job resource samples.")
    var sampleInterval: Double = 5

    @Option(name: .long, help: "Memory to advertise in NodeStatus, in bytes (default: the machine's).")
    var advertiseMemory: UInt64?

    @Flag(name: .long, help: "Stop the jobs when the agent stops (default: leave them running and re-adopt them on restart).")
    var stopJobsOnExit = false

    @Option(name: .long, help: ArgumentHelp(
        "Seconds without contact with NATS after which trainers are stopped (0 = never).",
        discussion: "An agent frozen or cut off cannot know whether the controller runs its jobs elsewhere: its trainers' shims stop them (SIGTERM, --grace-period, SIGKILL) once this has passed. Keep it plus --grace-period below the policy's detection.nodeSilence (default 120 s)."))
    var fenceAfter: Double = 60

    @Option(name: .long, parsing: .singleValue, help: ArgumentHelp(
        "A program jobs may start (repeatable; replaces the default list): a name looked up in the agent's PATH, an absolute path, or a directory ending in '/'.",
        discussion: "Default: \(ExecutionRules.defaultEntrypoints.joined(separator: " ")). Keep it alike with the policy's validation.entrypoints."))
    var allowEntrypoint: [String] = []

    @Option(name: .long, parsing: .singleValue, help: ArgumentHelp(
        "An environment variable jobs may not set, or a prefix ending in '*' (repeatable; replaces the default list).",
        discussion: "Default: \(ExecutionRules.defaultDeniedEnvironment.joined(separator: " ")). Keep it alike with the policy's validation.deniedEnvironment."))
    var denyEnv: [String] = []

    @Option(name: .long, help: ArgumentHelp(
        "Folder checkpoints are written under, as <root>/<job>/attempt-<n>/ (default: <work-dir>/checkpoints).",
        discussion: "With --checkpoint-storage shared, every node that names the same root reads the same files there (a network filesystem mounted at that path on each node), so a job moved to another node resumes where it was; the root must exist (it is never created)."))
    var checkpointRoot: String?

    @Option(name: .long, help: "local (only this node reads its checkpoints) or shared (every node declaring the same --checkpoint-root reads them).")
    var checkpointStorage: String = "local"

    @Option(name: .long, parsing: .singleValue, help: "A folder under which a job may name its own shared checkpoint root (config.checkpoint.sharedRoot), besides --checkpoint-root (repeatable).")
    var allowCheckpointRoot: [String] = []

    @Option(name: .long, help: "Run trainers as this unprivileged user (name or uid; the agent must run as root).")
    var runAsUser: String?

    @Option(name: .long, help: "Run trainers with this group (name or gid; default: the run-as user's primary group).")
    var runAsGroup: String?

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    func validate() throws {
        for entry in allowEntrypoint {
            if let problem = ExecutionRules.entrypointEntryProblem(entry) { throw ValidationError("--allow-entrypoint: \(problem)") }
        }
        for pattern in denyEnv {
            if let problem = ExecutionRules.environmentPatternProblem(pattern) { throw ValidationError("--deny-env: \(problem)") }
        }
        if runAsGroup != nil, runAsUser == nil {
            throw ValidationError("--run-as-group needs --run-as-user: changing only the group of a root process drops nothing")
        }
        guard fenceAfter >= 0, fenceAfter.isFinite else { throw ValidationError("--fence-after takes seconds, 0 or more") }
        guard (0...65535).contains(metricsPort) else { throw ValidationError("--metrics-port takes a port, 1-65535, or 0 for none") }
        if fenceAfter > 0, fenceAfter < 2 * heartbeat {
            throw ValidationError("--fence-after \(fenceAfter) is shorter than two heartbeats (--heartbeat \(heartbeat)): every trainer would be stopped at the first late acknowledgement")
        }
        guard nodeId.range(of: "^[A-Za-z0-9_-]{1,64}$", options: .regularExpression) != nil else {
            throw ValidationError("--node-id must be 1-64 of A-Z a-z 0-9 _ - (it is part of NATS subjects)")
        }
        guard MemoryEnforcer.Mode(rawValue: memoryEnforcement) != nil else {
            throw ValidationError("--memory-enforcement must be one of \(MemoryEnforcer.Mode.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        switch (assignmentPublicKey, insecureUnsignedAssignments) {
        case (nil, false):
            throw ValidationError("--assignment-public-key is required (the controller's assignment-signing.pub); --insecure-unsigned-assignments runs unsigned ones instead, for local experiments only")
        case (.some, true):
            throw ValidationError("--assignment-public-key and --insecure-unsigned-assignments exclude each other")
        case (.some, false), (nil, true):
            break
        }
        for l in label where !l.contains("=") {
            throw ValidationError("--label takes key=value, got '\(l)'")
        }
        guard ["local", "shared"].contains(checkpointStorage) else {
            throw ValidationError("--checkpoint-storage must be local or shared, got '\(checkpointStorage)'")
        }
        if checkpointStorage == "shared", checkpointRoot == nil {
            throw ValidationError("--checkpoint-storage shared needs --checkpoint-root: the folder every node mounts at the same path")
        }
        for (flag, root) in [("--checkpoint-root", checkpointRoot)].compactMap({ f, r in r.map { (f, $0) } }) + allowCheckpointRoot.map({ ("--allow-checkpoint-root", $0) }) {
            if let problem = CheckpointStorage.rootProblem(root) { throw ValidationError("\(flag) \(root): \(problem)") }
        }
    }

    func run() async throws {
        let logger = makeLogger(label: "archon.agent", level: logLevel)
        var labels: [String: String] = [:]
        for l in label {
            let parts = l.split(separator: "=", maxSplits: 1)
            labels[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
        }
        var runAs: RunAsIdentity?
        if let runAsUser {
            guard geteuid() == 0 else {
                throw ValidationError("--run-as-user needs the agent to run as root (it runs as uid \(geteuid())), or leave it out to run trainers as the agent's own user")
            }
            do {
                runAs = try RunAsIdentity.resolve(user: runAsUser, group: runAsGroup)
            } catch {
                throw ValidationError(error.description)
            }
        }
        var config = AgentConfig(
            nodeID: nodeId,
            nats: try connection.options(name: "archon-agent-\(nodeId)"),
            assignments: try assignmentPublicKey.map { try AssignmentVerifier(publicKeyFile: $0) } ?? .insecureAcceptAnything,
            workDirectory: URL(fileURLWithPath: workDir).standardizedFileURL.path,
            labels: labels,
            memoryMode: MemoryEnforcer.Mode(rawValue: memoryEnforcement) ?? .auto,
            heartbeatInterval: .milliseconds(Int(heartbeat * 1000)),
            sampleInterval: .milliseconds(Int(sampleInterval * 1000)),
            gracePeriod: .milliseconds(Int(gracePeriod * 1000)),
            defaultHangSeconds: hangAfter,
            stopJobsOnExit: stopJobsOnExit,
            advertisedMemoryBytes: advertiseMemory,
            executionRules: ExecutionRules(
                entrypoints: allowEntrypoint.isEmpty ? ExecutionRules.defaultEntrypoints : allowEntrypoint,
                deniedEnvironment: denyEnv.isEmpty ? ExecutionRules.defaultDeniedEnvironment : denyEnv),
            runAs: runAs,
            fenceAfter: fenceAfter > 0 ? .milliseconds(Int(fenceAfter * 1000)) : nil,
            checkpointStorage: checkpointRoot.map { CheckpointStorage(root: $0, shared: checkpointStorage == "shared") },
            allowedCheckpointRoots: allowCheckpointRoot)
        config.cgroupDelegated = cgroupDelegated
        var services: [any Service] = []
        if metricsPort > 0 {
            let registry = PrometheusCollectorRegistry()
            MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
            services.append(APIServer.metricsApplication(registry: registry, host: metricsHost, port: metricsPort, logger: logger))
        }
        let agent = try Agent(config: config, logger: logger)
        let group = ServiceGroup(configuration: .init(
            services: [agent] + services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}

func makeLogger(label: String, level: String) -> Logger {
    var logger = Logger(label: label)
    logger.logLevel = Logger.Level(rawValue: level) ?? .info
    return logger
}
