import ArchonController
import ArchonTestSupport
import ArchonModel
import ArchonNATS
import Foundation
import Testing

/// The `archon` binary as an operator runs it: a child process, its stdout and stderr, its exit status.
struct ArchonCLI {
    let api: String
    let token: String

    struct Run {
        let status: Int32
        let stdout: Data
        let stderr: String
        var text: String { String(decoding: stdout, as: UTF8.self) }

        func json<T: Decodable>(_ type: T.Type) throws -> T {
            let decoder = JSONDecoder()
            decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
            return try decoder.decode(type, from: stdout)
        }

        /// The output as a JSON object, to check field names.
        func object() throws -> [String: Any] {
            try #require(try JSONSerialization.jsonObject(with: stdout) as? [String: Any], "not a JSON object: \(text)")
        }
    }

    /// Runs `archon <arguments>` with ARCHON_API and ARCHON_TOKEN in its environment (unless `environment` is
    /// false: then only what the arguments say). Killed if it runs past `timeout`.
    func run(_ arguments: [String], environment useEnvironment: Bool = true, timeout: Duration = .seconds(30)) async throws -> Run {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("archon-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let out = directory.appendingPathComponent("stdout"), err = directory.appendingPathComponent("stderr")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        _ = FileManager.default.createFile(atPath: err.path, contents: nil)

        var environment = ProcessInfo.processInfo.environment
        environment["ARCHON_API"] = nil
        environment["ARCHON_TOKEN"] = nil
        if useEnvironment {
            environment["ARCHON_API"] = api
            environment["ARCHON_TOKEN"] = token
        }
        let child = try ChildProcess(archonBinary, arguments, environment: environment, stdout: out.path, stderr: err.path)
        let watchdog = Task {
            guard (try? await Task.sleep(for: timeout)) != nil else { return }  // cancelled: it exited
            child.kill()
        }
        let status = await child.exitStatus()
        watchdog.cancel()
        return Run(status: status, stdout: try Data(contentsOf: out), stderr: (try? String(contentsOf: err, encoding: .utf8)) ?? "")
    }

    /// Runs a command that must succeed and decodes its `--json` output.
    func json<T: Decodable>(_ arguments: [String], as type: T.Type) async throws -> T {
        let run = try await self.run(arguments + ["--json"])
        try #require(run.status == 0, "archon \(arguments.joined(separator: " ")) exited \(run.status): \(run.stderr)")
        do {
            return try run.json(type)
        } catch {
            Issue.record("archon \(arguments.joined(separator: " ")) printed: \(run.text)")
            throw error
        }
    }

    /// Runs a command that must succeed and returns its `--json` output as an object.
    func object(_ arguments: [String]) async throws -> [String: Any] {
        let run = try await self.run(arguments + ["--json"])
        try #require(run.status == 0, "archon \(arguments.joined(separator: " ")) exited \(run.status): \(run.stderr)")
        return try run.object()
    }
}

func writeTemporaryFile(_ name: String, _ text: String) throws -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("\(UUID().uuidString)-\(name)").path
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    return path
}

@Suite("archon CLI against a real controller and agent", .serialized)
struct CLITests {
    static func keys(_ object: [String: Any]) -> Set<String> { Set(object.keys) }

    @Test func jobCommandsSubmitListShowWatchLogsStopAndValidate() async throws {
        let fleet = try await FleetHarness()
        let controller = try await fleet.startController()
        try await fleet.startAgent("n1")
        let cli = ArchonCLI(api: controller.api, token: operatorToken.token)
        _ = try await waitFor("node n1") { try await cli.json(["node", "list"], as: [NodeView].self).first { $0.id == "n1" } }

        // validate: every problem at once, exit status 1.
        let bad = try writeTemporaryFile("bad.yaml", """
            id: cli-bad
            command: ["python3", "train.py"]
            config: {batchSize: 0, learningRate: -1, epochs: 2, dataset: nope}
            """)
        let verdict = try await cli.run(["job", "validate", bad, "--json"])
        #expect(verdict.status == 1, "\(verdict.text) \(verdict.stderr)")
        let validation = try verdict.json(ValidationView.self)
        #expect(!validation.valid)
        #expect(Set(validation.problems.map(\.field)).isSuperset(of: ["config.batchSize", "config.learningRate", "config.dataset"]),
                "\(validation.problems)")
        #expect(validation.problems.first { $0.field == "config.dataset" }?.message.contains("digits") == true, "names the ready datasets")

        // submit a YAML spec with flow lists and flow maps, as in examples/jobs.
        let spec = try writeTemporaryFile("ok.yaml", """
            # a healthy job, written the way people write them
            id: cli-ok
            name: cli healthy
            team: ml
            command: ["python3", "\(faultTrainer)"]
            config:
              batchSize: 32
              gradientAccumulationSteps: 1
              learningRate: 0.01
              epochs: 3
              timeouts: {perEpochSeconds: 60, totalSeconds: 600, heartbeatSeconds: 30}
              checkpoint: {everyEpochs: 1, keepLast: 3}
              resources: {memoryBytes: 268435456, cpuCores: 0.5}
              dataset: digits
              hyperparameters: {fault: "none"}
            labels: {kind: cli}
            """)
        let valid = try await cli.run(["job", "validate", spec, "--json"])
        #expect(valid.status == 0, "\(valid.text) \(valid.stderr)")
        #expect(try valid.json(ValidationView.self).valid)
        let submitted = try await cli.json(["job", "submit", spec], as: JobView.self)
        #expect(submitted.id == "cli-ok")
        #expect(submitted.config.timeouts.perEpochSeconds == 60)
        #expect(submitted.config.resources.memoryBytes == 268_435_456)
        #expect(submitted.config.hyperparameters["fault"] == "none")

        // watch: one JSON object per line, until it completes.
        let watch = try await cli.run(["job", "watch", "cli-ok", "--interval", "0.2", "--json"])
        #expect(watch.status == 0, "\(watch.stderr)")
        let updates = watch.text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(!updates.isEmpty, "watch printed: \(watch.text)")
        let last = try #require(updates.last)
        #expect(last["id"] as? String == "cli-ok")
        #expect(last["status"] as? String == "completed")
        #expect(last["attempt"] as? Int == 1)
        #expect(last["epoch"] as? Int == 3)

        // show: the fields scripts rely on.
        let show = try await cli.object(["job", "show", "cli-ok"])
        #expect(Self.keys(show).isSuperset(of: ["id", "status", "node", "attempt", "config", "history", "lastMetrics"]), "\(show.keys.sorted())")
        let config = try #require(show["config"] as? [String: Any])
        #expect(Self.keys(config).isSuperset(of: [
            "batchSize", "gradientAccumulationSteps", "learningRate", "lrSchedule", "gradientClipping", "mixedPrecision", "epochs",
            "timeouts", "checkpoint", "resources", "dataset",
        ]), "\(config.keys.sorted())")
        let history = try #require(show["history"] as? [[String: Any]])
        #expect(history.count == 1)
        #expect(Self.keys(try #require(history.first)).isSuperset(of: ["attempt", "node", "failureClass", "action", "configChange", "startedAt", "endedAt"]))
        let job = try await cli.json(["job", "show", "cli-ok"], as: JobView.self)
        #expect(job.status == "completed")
        #expect(job.node == "n1")
        #expect(job.attempt == 1)
        #expect(job.lastMetrics?.epoch == 3)
        #expect(job.history.first?.startedAt ?? 0 > 0)
        #expect(job.history.first?.endedAt ?? 0 >= job.history.first?.startedAt ?? .max)

        // list, with --api/--token instead of the environment.
        let list = try await cli.run(["job", "list", "--api", controller.api, "--token", readerToken.token, "--json"], environment: false)
        #expect(list.status == 0, "\(list.stderr)")
        #expect(try list.json([JobView].self).map(\.id) == ["cli-ok"])

        // logs: the last lines, from the agent of the node it ran on.
        let logs = try await cli.json(["job", "logs", "cli-ok", "--tail", "5"], as: [String: [String]].self)
        let lines = try #require(logs["lines"])
        #expect((1...5).contains(lines.count), "\(lines)")

        // stop: a slow job, while it runs; nothing restarts it. Its assignment says "stopped" with the stop grace
        // (time to save a checkpoint) until the attempt has exited, then it is withdrawn.
        #expect(try await HTTP(base: controller.api, token: adminToken.token)
            .call("POST", "/v1/training/jobs", body: faultSpec("cli-slow", fault: "slow", epochs: 20, hyper: ["epochSeconds": "5"])).status == 201)
        _ = try await waitFor("cli-slow running") { try await cli.json(["job", "show", "cli-slow"], as: JobView.self).status == "running" ? true : nil }
        let stopped = try await cli.json(["job", "stop", "cli-slow"], as: JobView.self)
        #expect(stopped.status == "stopped")
        let stopping = try await fleet.assignment(node: "n1", job: "cli-slow")
        #expect(stopping == nil || (stopping?.desiredState == .stopped && stopping?.stopGraceSeconds == 10), "\(String(describing: stopping))")
        let ended = try await waitFor("cli-slow's attempt to end") { () -> JobView? in
            let job = try await cli.json(["job", "show", "cli-slow"], as: JobView.self)
            return (job.history.last?.endedAt ?? 0) > 0 ? job : nil
        }
        #expect(ended.status == "stopped")
        #expect(ended.history.count == 1)
        _ = try await waitFor("cli-slow's assignment withdrawn once it exited") { try await fleet.assignment(node: "n1", job: "cli-slow") == nil ? true : nil }

        // A wrong token: a non-zero exit and the API's reason on stderr.
        let refused = try await cli.run(["job", "list", "--token", "wrong", "--json"])
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("401"), "\(refused.stderr)")
        await controller.stop()
    }

    @Test func nodeAndDatasetCommands() async throws {
        let fleet = try await FleetHarness()
        let controller = try await fleet.startController()
        try await fleet.startAgent("n1")
        let cli = ArchonCLI(api: controller.api, token: adminToken.token)
        let nodes = try await waitFor("node n1") { () -> [[String: Any]]? in
            let run = try await cli.run(["node", "list", "--json"])
            let nodes = try JSONSerialization.jsonObject(with: run.stdout) as? [[String: Any]] ?? []
            return nodes.contains { $0["id"] as? String == "n1" } ? nodes : nil
        }
        let n1 = try #require(nodes.first { $0["id"] as? String == "n1" })
        #expect(Self.keys(n1).isSuperset(of: ["id", "status", "cordoned", "capacity", "usage"]))
        #expect(n1["status"] as? String == "online")

        let cordoned = try await cli.json(["node", "cordon", "n1", "--reason", "disk check"], as: NodeView.self)
        #expect(cordoned.cordoned)
        #expect(cordoned.cordonReason.contains("disk check"))
        #expect(try await cli.json(["node", "list"], as: [NodeView].self).first { $0.id == "n1" }?.cordoned == true)
        let uncordoned = try await cli.json(["node", "uncordon", "n1"], as: NodeView.self)
        #expect(!uncordoned.cordoned)

        let datasets = try await cli.run(["dataset", "list", "--json"])
        let listed = try #require(try JSONSerialization.jsonObject(with: datasets.stdout) as? [[String: Any]])
        #expect(listed.map { $0["id"] as? String } == ["digits"])
        #expect(Self.keys(try #require(listed.first)).isSuperset(of: ["id", "location", "status"]))
        let added = try await cli.json(["dataset", "add", "digits-v2", "--location", "/data/digits-v2"], as: DatasetView.self)
        #expect(added.id == "digits-v2")
        #expect(added.location == "/data/digits-v2")
        #expect(added.status == "ready")
        #expect(try await cli.json(["dataset", "list"], as: [DatasetView].self).map(\.id) == ["digits", "digits-v2"])
        let resumed = try await cli.json(["dataset", "resume", "digits"], as: DatasetView.self)
        #expect(!resumed.retriesPaused)

        // The operator token may not cordon: exit non-zero with the scope named.
        let refused = try await ArchonCLI(api: controller.api, token: operatorToken.token).run(["node", "cordon", "n1", "--json"])
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("403") && refused.stderr.contains("admin"), "\(refused.stderr)")
        await controller.stop()
    }

    @Test func incidentCommandsListShowAckResolveAndReport() async throws {
        let fleet = try await FleetHarness()
        let controller = try await fleet.startController()
        try await fleet.startAgent("n1")
        let cli = ArchonCLI(api: controller.api, token: operatorToken.token)
        _ = try await waitFor("node n1") { try await cli.json(["node", "list"], as: [NodeView].self).first { $0.id == "n1" } }

        // A maintenance window for the job about to fail: its incident is recorded, its page held.
        let refused = try await cli.run(["silence", "add", "--for", "2h", "--reason", "no matcher"])
        #expect(refused.status != 0 && refused.stderr.contains("at least one matcher"), "\(refused.stderr)")
        let silence = try await cli.json(["silence", "add", "--job", "cli-nodata", "--for", "2h", "--reason", "dataset being republished"], as: SilenceView.self)
        #expect(silence.job == "cli-nodata" && silence.endsAt - silence.startsAt == 2 * 3_600_000 && silence.createdBy == operatorToken.name)
        #expect(try await cli.json(["silence", "list"], as: [SilenceView].self).map(\.id) == [silence.id])

        // A JSON spec this time: the trainer opens a dataset that does not exist.
        let spec = try writeTemporaryFile("missing.json", faultSpec("cli-nodata", fault: "missing_dataset"))
        #expect(try await cli.json(["job", "submit", spec], as: JobView.self).id == "cli-nodata")
        let listed = try await waitFor("the incident of cli-nodata") { () -> [String: Any]? in
            let run = try await cli.run(["incident", "list", "--json"])
            let all = try JSONSerialization.jsonObject(with: run.stdout) as? [[String: Any]] ?? []
            return all.first { ($0["jobs"] as? [String]) == ["cli-nodata"] }
        }
        #expect(Self.keys(listed).isSuperset(of: [
            "id", "cause", "level", "severity", "status", "subject", "jobs", "nodes", "dataset", "stepsTaken", "openedAt",
        ]), "\(listed.keys.sorted())")
        let id = try #require(listed["id"] as? String)

        let shown = try await cli.json(["incident", "show", id], as: IncidentView.self)
        #expect(shown.pageHeldBy == silence.id && shown.pageHeldUntil == silence.endsAt)
        #expect(try await cli.run(["incident", "show", id]).text.contains("silenced by \(silence.id)"))
        #expect(try await cli.json(["silence", "expire", silence.id], as: SilenceView.self).endsAt <= Int64(Date().timeIntervalSince1970 * 1000))
        #expect(try await cli.json(["incident", "show", id], as: IncidentView.self).pageHeldBy == "", "paged when the silence ended")
        #expect(try await cli.json(["silence", "list"], as: [SilenceView].self).isEmpty)
        #expect(shown.cause == "job")
        #expect(shown.level == "L1")
        #expect(shown.status == "open")
        #expect(shown.subject == "Training Failure Escalation - cli-nodata")
        #expect(shown.nodes == ["n1"])
        #expect(shown.dataset == "digits")
        #expect(shown.openedAt > 0)
        #expect(shown.symptoms.joined().localizedCaseInsensitiveContains("dataset"), "\(shown.symptoms)")
        let job = try await cli.json(["job", "show", "cli-nodata"], as: JobView.self)
        #expect(job.status == "failed")
        #expect(job.history.first?.failureClass == "dataset_not_found")

        // The report exists only once it is resolved.
        let early = try await cli.run(["incident", "report", id, "--json"])
        #expect(early.status != 0)
        #expect(early.stderr.contains("not resolved"), "\(early.stderr)")

        let acked = try await cli.json(["incident", "ack", id], as: IncidentView.self)
        #expect(acked.status == "acknowledged")
        #expect(acked.acknowledgedBy == operatorToken.name)
        let resolved = try await cli.json(["incident", "resolve", id, "--root-cause", "dataset digits was never published"], as: IncidentView.self)
        #expect(resolved.status == "resolved")
        #expect(resolved.rootCause == "dataset digits was never published")

        // The runbook's success metrics: the job's failure series ended unfixed, the incident's times are recorded.
        let metrics = try await HTTP(base: controller.api, token: nil).call("GET", "/metrics").text.split(separator: "\n")
        #expect(metrics.contains { $0.hasPrefix("archon_runbook_fix_outcomes_total{") && $0.contains(#"failure_class="datasetNotFound""#) && $0.contains(#"outcome="failed""#) },
                "\(metrics.filter { $0.contains("runbook") })")
        #expect(metrics.contains { $0.hasPrefix("archon_incident_time_to_resolve_seconds") && $0.contains(#"cause="job""#) })
        #expect(metrics.contains { $0.hasPrefix("archon_incidents_resolved_total{") && $0.contains(#"by="operator""#) })

        let report = try await cli.json(["incident", "report", id], as: [String: String].self)
        #expect(report["id"] == id)
        let markdown = try #require(report["markdown"])
        #expect(markdown.contains("dataset digits was never published"))
        #expect(markdown.contains("cli-nodata"))
        await controller.stop()
    }
}
