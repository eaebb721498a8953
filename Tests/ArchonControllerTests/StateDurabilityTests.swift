import ArchonController
import ArchonCore
import ArchonModel
import ArchonNATS
import ArchonWire
import Foundation
import Testing

/// Faults of the fleet's own infrastructure, with a real nats-server: what the controller stores, when it
/// acknowledges, what it performs again, and what it does not blame on the nodes.
@Suite("Controller state under faults", .serialized)
struct StateDurabilityTests {
    @Test func whenTheStateCannotBeStoredNothingIsAcknowledgedAndNothingIsLost() async throws {
        let fleet = try await FleetHarness()
        let controller = try await fleet.startController()
        let api = HTTP(base: controller.api, token: adminToken.token)
        let agent = try await fleet.announcedNode("n1", api: api)
        let jobs = (1...12).map { "job-\($0)" }
        for job in jobs {
            #expect(try await api.call("POST", "/v1/training/jobs", body: faultSpec(job, fault: "none", epochs: 5)).status == 201)
        }
        _ = try await waitFor("every job assigned") {
            try await api.call("GET", "/v1/training/jobs").json([JobView].self).filter { $0.attempt == 1 }.count == jobs.count ? true : nil
        }

        // The journal's stream stops taking writes (its data stays): every batch from now on fails to store.
        let journal = try await StreamFault(fleet.connection, stream: StateStore.journalStream)
        try await journal.cut()
        for job in jobs {
            try await agent.run(job, attempt: 1, epochs: 5, exit: JobExited(exitCode: 0))
        }
        let unavailable = try await waitFor("readyz to say the state is unavailable") {
            try await HTTP(base: controller.api, token: nil).call("GET", "/readyz").json(ReadinessView.self).state.hasPrefix("unavailable") ? true : nil
        }
        #expect(unavailable)
        #expect(try await HTTP(base: controller.api, token: nil).call("GET", "/readyz").status == 503)
        let refused = try await api.call("POST", "/v1/training/jobs", body: faultSpec("late", fault: "none"))
        #expect(refused.status == 503, "\(refused.text)")
        let floor = try await ackFloor(fleet)
        try await Task.sleep(for: .seconds(3))  // longer than the lease: the leader steps down and campaigns again
        #expect(try await ackFloor(fleet) == floor, "events were acknowledged while the state could not be stored")

        try await journal.restore()
        for job in jobs {
            _ = try await waitFor("\(job) completed", timeout: .seconds(60)) {
                try await api.call("GET", "/v1/training/jobs/\(job)").json(JobView.self).status == "completed" ? true : nil
            }
        }
        // What a fault-free run reaches: one attempt each, all five epochs, no incident; and so does the store.
        let stored = try await fleet.persistedState()
        for job in jobs {
            let record = try #require(stored.jobs[job])
            #expect(record.status == .completed && record.history.count == 1 && record.current?.lastMetrics?.epoch == 5, "\(job)")
        }
        #expect(try await api.call("GET", "/v1/incidents").json([IncidentView].self).isEmpty)
        #expect(try await api.call("POST", "/v1/training/jobs", body: faultSpec("late", fault: "none")).status == 201)
        await controller.stop()
    }

    @Test func aMessageDeliveredTooOftenIsTerminatedCountedAndLogged() async throws {
        let fleet = try await FleetHarness()
        var config = fleet.controllerConfig()
        config.maxDeliveries = 1  // so that one redelivery reaches it
        let controller = try await RunningController(config: config)
        let agent = try await fleet.announcedNode("n1", api: HTTP(base: controller.api, token: adminToken.token))
        let journal = try await StreamFault(fleet.connection, stream: StateStore.journalStream)
        try await journal.cut()
        try await agent.publishStatus()  // fetched, not stored, naked: delivered again
        _ = try await waitFor("the state unavailable") { await controller.controller.stateProblem }
        try await journal.restore()
        let metric = try await waitFor("the delivery-limit counter") { () -> String? in
            let text = try await HTTP(base: controller.api, token: nil).call("GET", "/metrics").text
            return text.split(separator: "\n").first { $0.hasPrefix("archon_events_rejected_total") && $0.contains("delivery_limit") && !$0.hasSuffix(" 0") }.map(String.init)
        }
        #expect(metric.hasSuffix(" 1"), "\(metric)")
        _ = try await waitFor("nothing pending", timeout: .seconds(10)) { () -> Bool? in
            let info = try await fleet.consumerInfo()
            return (info["num_pending"] as? Int) == 0 && (info["num_ack_pending"] as? Int) == 0 ? true : nil
        }
        await controller.stop()
    }

    @Test func aNATSOutageLongerThanNodeSilenceFailsNoJobAndBlamesNoNode() async throws {
        let fleet = try await FleetHarness()
        var config = fleet.controllerConfig()
        config.policyFile = try policyFile(#"{"detection": {"nodeSilence": "3s"}, "remediation": {"backoff": {"initial": "200ms", "max": "1s"}}, "escalation": {"groupWait": "500ms"}}"#)
        let controller = try await RunningController(config: config)
        let api = HTTP(base: controller.api, token: adminToken.token)
        try await fleet.startAgent("n1")
        try await fleet.startAgent("n2")
        _ = try await waitFor("nodes n1 and n2") { try await api.call("GET", "/v1/nodes").json([NodeView].self).count == 2 ? true : nil }
        for job in ["long-1", "long-2"] {
            let spec = faultSpec(job, fault: "slow", epochs: 14, hyper: ["epochSeconds": "1", "heartbeatEvery": "0.5"])
            #expect(try await api.call("POST", "/v1/training/jobs", body: spec).status == 201)
        }
        _ = try await waitFor("both jobs running") {
            try await api.call("GET", "/v1/training/jobs").json([JobView].self).filter { $0.status == "running" }.count == 2 ? true : nil
        }

        fleet.server.stop()
        try await Task.sleep(for: .seconds(6))  // twice nodeSilence: nobody hears anybody
        try fleet.server.start()

        for job in ["long-1", "long-2"] {
            let view = try await waitFor("\(job) completed", timeout: .seconds(90)) { () -> JobView? in
                // While the controller reads its state back after the outage it may answer 503: ask again.
                let answer = try await api.call("GET", "/v1/training/jobs/\(job)")
                guard answer.status == 200 else { return nil }
                let view = try answer.json(JobView.self)
                return view.status == "completed" ? view : nil
            }
            #expect(view.history.count == 1, "\(job) was failed or moved: \(view.history.map(\.outcome))")
        }
        let nodes = try await api.call("GET", "/v1/nodes").json([NodeView].self)
        #expect(nodes.allSatisfy { !$0.cordoned }, "\(nodes)")
        #expect(try await api.call("GET", "/v1/incidents").json([IncidentView].self).isEmpty)
        await controller.stop()
    }

    @Test func everyActionThatFailsBeyondItsRetriesIsPerformedOnceTheFaultClears() async throws {
        let fleet = try await FleetHarness()
        var config = fleet.controllerConfig()
        config.reconcileSeconds = 1
        let controller = try await RunningController(config: config)
        let api = HTTP(base: controller.api, token: adminToken.token)
        let agent = try await fleet.announcedNode("n1", api: api)
        let desired = try await fleet.js.keyValue(KeyValueConfig(bucket: Fleet.desiredBucket))

        // An orphan: a key for a job the controller never heard of. Reconciliation deletes it.
        var ghost = JobAssignment(spec: JobSpec(id: "ghost", command: ["true"]), attempt: 1, fencingEpoch: 1, desiredState: .running, nodeID: "n1")
        ghost.reason = "written by hand"
        try await desired.put("n1.ghost", SignedAssignment(unsigned: ghost).encoded())
        _ = try await waitFor("the orphan n1.ghost deleted") { try await desired.get("n1.ghost") == nil ? true : nil }

        #expect(try await api.call("POST", "/v1/training/jobs", body: faultSpec("done", fault: "none", epochs: 1)).status == 201)
        _ = try await waitFor("n1.done written") { try await desired.get("n1.done") }
        try await agent.run("done", attempt: 1, epochs: 1, exit: JobExited(exitCode: 0, detail: "", logTail: []))
        _ = try await waitFor("done completed") {
            try await api.call("GET", "/v1/training/jobs/done").json(JobView.self).status == "completed" ? true : nil
        }
        _ = try await waitFor("n1.done deleted (a finished job leaves the desired state)") { try await desired.get("n1.done") == nil ? true : nil }

        // Desired state and escalations stop taking writes.
        let desiredFault = try await StreamFault(fleet.connection, stream: "KV_\(Fleet.desiredBucket)")
        let escalationFault = try await StreamFault(fleet.connection, stream: Fleet.escalationsStream)
        try await desiredFault.cut()
        try await escalationFault.cut()
        let escalationsBefore = try await fleet.js.streamBounds(Fleet.escalationsStream).last

        // assign fails: a new job; stop fails: a running job stopped by an operator; escalation fails: a failure.
        #expect(try await api.call("POST", "/v1/training/jobs", body: faultSpec("new", fault: "none")).status == 201)
        #expect(try await api.call("POST", "/v1/training/jobs", body: faultSpec("halt", fault: "none")).status == 201)
        try await agent.emit("halt", attempt: 1, .accepted(JobAccepted(fencingEpoch: 1)))
        try await agent.emit("halt", attempt: 1, .started(JobStarted(pid: 7)))
        #expect(try await api.call("POST", "/v1/training/jobs", body: faultSpec("broken", fault: "none")).status == 201)
        try await agent.emit("broken", attempt: 1, .started(JobStarted(pid: 8)))
        try await agent.emit("broken", attempt: 1, .exited(JobExited(exitCode: 1, failureClass: .datasetNotFound, detail: "FileNotFoundError")))
        _ = try await waitFor("broken failed") {
            try await api.call("GET", "/v1/training/jobs/broken").json(JobView.self).status == "failed" ? true : nil
        }
        #expect(try await api.call("POST", "/v1/training/jobs/halt/stop").status == 200)
        try await Task.sleep(for: .seconds(2))  // past every retry

        try await desiredFault.restore()
        try await escalationFault.restore()
        let new = try await waitFor("n1.new written by reconciliation") { try await desired.get("n1.new") }
        #expect(try SignedAssignment.decode(new.value).unverifiedAssignment().attempt == 1)
        _ = try await waitFor("n1.halt deleted by reconciliation") { try await desired.get("n1.halt") == nil ? true : nil }
        _ = try await waitFor("n1.broken deleted by reconciliation") { try await desired.get("n1.broken") == nil ? true : nil }
        _ = try await waitFor("the escalation published from the outbox") {
            try await fleet.js.streamBounds(Fleet.escalationsStream).last > escalationsBefore ? true : nil
        }
        await controller.stop()
    }

    @Test func hostileNumbersFromARealTrainerAndARawClientAreClampedAndJudgedOnTheRest() async throws {
        let fleet = try await FleetHarness()
        let controller = try await fleet.startController()
        let api = HTTP(base: controller.api, token: adminToken.token)
        try await fleet.startAgent("n1", memory: 1 << 30)
        _ = try await waitFor("node n1") { try await api.call("GET", "/v1/nodes").json([NodeView].self).first { $0.id == "n1" } }

        // A real trainer, through the documented contract: "NaN" and "Infinity" durations, a 1e300 learning rate.
        #expect(try await api.call("POST", "/v1/training/jobs", body: faultSpec("hostile", fault: "hostile_numbers", epochs: 4)).status == 201)
        let real = try await waitFor("hostile completed", timeout: .seconds(60)) {
            let view = try await api.call("GET", "/v1/training/jobs/hostile").json(JobView.self)
            return view.status == "completed" || view.status == "failed" ? view : nil
        }
        #expect(real.status == "completed" && real.history.count == 1, "\(real.history.map(\.outcome))")

        // A raw NATS client: every double field of every event kind as NaN, ±Inf or ±1e300.
        let raw = try await fleet.announcedNode("n2", api: api)
        let spec = faultSpec("raw", fault: "none", epochs: 3, memory: 2 << 30)  // only n2 has room
        #expect(try await api.call("POST", "/v1/training/jobs", body: spec).status == 201)
        _ = try await waitFor("raw assigned to n2") { try await api.call("GET", "/v1/training/jobs/raw").json(JobView.self).node == "n2" ? true : nil }
        let hostile: [Double] = [.nan, .infinity, -.infinity, 1e300, -1e300]
        try await raw.emit("raw", attempt: 1, .accepted(JobAccepted(fencingEpoch: 1)))
        try await raw.emit("raw", attempt: 1, .started(JobStarted(pid: 9)))
        for (i, x) in hostile.enumerated() {
            try await raw.emit("raw", attempt: 1, .heartbeat(Heartbeat(runningJobs: 1, secondsSinceProgress: x)))
            try await raw.emit("raw", attempt: 1, .resources(ResourceSample(cpuCores: x, gpuUtilization: x)))
            try await raw.emit("raw", attempt: 1, .step(StepProgress(step: i, epoch: 1, loss: 0.5, learningRate: x, samplesPerSecond: x)))
            try await raw.send(TrainingEvent(jobID: "", nodeID: "n2", attempt: 0, sequence: 0, timeMs: UnixTime.nowMillis(), body: .nodeStatus(
                NodeStatus(nodeID: "n2", capacity: NodeCapacity(cpuCores: 32, memoryBytes: 64 << 30, diskBytes: 1 << 40),
                           usage: NodeUsage(cpuUtilization: x, gpuUtilization: x)))))
        }
        for epoch in 1...3 {
            try await raw.emit("raw", attempt: 1, .epoch(EpochMetrics(
                epoch: epoch, totalEpochs: 3, loss: 1.0 / Double(epoch), learningRate: hostile[epoch],
                durationSeconds: hostile[epoch - 1], validation: Validation(loss: 1.1 / Double(epoch), accuracy: hostile[epoch + 1]))))
        }
        try await raw.emit("raw", attempt: 1, .exited(JobExited(exitCode: 0, runtimeSeconds: .nan)))
        let judged = try await waitFor("raw completed") {
            let view = try await api.call("GET", "/v1/training/jobs/raw").json(JobView.self)
            return view.status == "completed" || view.status == "failed" ? view : nil
        }
        #expect(judged.status == "completed" && judged.history.count == 1, "\(judged.history.map(\.outcome))")
        #expect(try await HTTP(base: controller.api, token: nil).call("GET", "/healthz").status == 200)
        #expect(try await api.call("GET", "/v1/incidents").json([IncidentView].self).isEmpty)
        let metrics = try await HTTP(base: controller.api, token: nil).call("GET", "/metrics").text
        #expect(metrics.contains("archon_events_sanitized_total"))
        await controller.stop()
    }
}

/// Makes a stream stop taking writes without losing what it holds: its subjects are moved aside, then put back.
/// Talks to the JetStream API directly, so the stream's own settings (a KV bucket's included) come back intact.
struct StreamFault {
    let connection: NATSConnection
    let stream: String
    let original: [String: Any]

    init(_ connection: NATSConnection, stream: String) async throws {
        self.connection = connection
        self.stream = stream
        let reply = try await connection.request("$JS.API.STREAM.INFO.\(stream)", [])
        let info = try #require(try JSONSerialization.jsonObject(with: Data(reply.payload)) as? [String: Any])
        original = try #require(info["config"] as? [String: Any])
    }

    func cut() async throws {
        var config = original
        config["subjects"] = ["archon.test.fault.\(stream.lowercased())"]
        try await update(config)
    }

    func restore() async throws { try await update(original) }

    private func update(_ config: [String: Any]) async throws {
        let body = try JSONSerialization.data(withJSONObject: config)
        let reply = try await connection.request("$JS.API.STREAM.UPDATE.\(stream)", Array(body))
        let answer = try #require(try JSONSerialization.jsonObject(with: Data(reply.payload)) as? [String: Any])
        #expect(answer["error"] == nil, "stream update refused: \(answer)")
    }
}

/// The stream sequence below which the controller acknowledged everything.
func ackFloor(_ fleet: FleetHarness) async throws -> Int {
    let info = try await fleet.consumerInfo()
    let floor = try #require(info["ack_floor"] as? [String: Any])
    return (floor["stream_seq"] as? Int) ?? 0
}

func policyFile(_ json: String) throws -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("policy-\(UUID().uuidString).json").path
    try json.write(toFile: path, atomically: true, encoding: .utf8)
    return path
}
