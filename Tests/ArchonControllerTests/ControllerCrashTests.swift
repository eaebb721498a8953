import ArchonController
import ArchonCore
import ArchonModel
import ArchonNATS
import ArchonWire
import Foundation
import Testing

/// The controller's promise: a crash anywhere loses no event and applies none twice. Here the real
/// `archon controller` binary is SIGKILLed while it works through a burst of events, and restarted.
@Suite("Controller crash in the middle of a burst", .serialized)
struct ControllerCrashTests {
    @Test func aControllerKilledMidBurstAppliesEveryEventOnceAndNeitherRepeatsNorLosesARemediation() async throws {
        let fleet = try await FleetHarness()
        // Small fetch batches: the burst takes many decide-persist-perform-ack rounds, so the kill lands inside one.
        let controller = try ControllerProcess(try fleet.childConfig(id: "c1", lease: 1, fetchBatch: 4))
        defer { controller.kill() }
        try controller.start()
        try await controller.waitForRole("leader")
        let api = HTTP(base: controller.api, token: adminToken.token)

        let agent = try await fleet.announcedNode("n1", api: api)

        let jobs = (1...20).map { String(format: "burst-%02d", $0) }
        for job in jobs {
            let answer = try await api.call("POST", "/v1/training/jobs", body: faultSpec(job, fault: "memory", epochs: 5, batch: 32, memory: 1 << 30))
            try #require(answer.status == 201, "\(answer.text)")
        }
        var firstEpoch: [String: UInt64] = [:]
        let placed = try await fleet.js.keyValue(KeyValueConfig(bucket: Fleet.desiredBucket))
        for job in jobs {
            let assignment = try #require(try await fleet.assignment(node: "n1", job: job, in: placed), "no assignment for \(job)")
            #expect(assignment.attempt == 1)
            firstEpoch[job] = assignment.fencingEpoch
        }

        // Attempt 1 of every job: accepted, started, two epochs, then the kernel's OOM kill.
        let oom = JobExited(exitCode: -1, signal: 9, oomKilled: true, failureClass: .outOfMemory,
                            detail: "killed by the kernel OOM killer", runtimeSeconds: 3, epochsCompleted: 2)
        let half = jobs.count / 2
        for job in jobs.prefix(half) {
            try await agent.run(job, attempt: 1, epochs: 2, exit: oom)
        }
        // Kill it while it works through the burst: it consumes as we publish, a batch of 4 at a time, and lags
        // (typically 10-40 events behind, with one fetched batch not yet acknowledged, maybe not yet persisted).
        await controller.crash()

        // The rest of the burst arrives while no controller runs; JetStream keeps it.
        for job in jobs.dropFirst(half) {
            try await agent.run(job, attempt: 1, epochs: 2, exit: oom)
        }
        try controller.start()
        try await controller.waitForRole("leader")

        // Every job gets exactly one remediation: attempt 2 with the batch halved, in the API and in KV.
        let desired = try await fleet.js.keyValue(KeyValueConfig(bucket: Fleet.desiredBucket))
        let views = try await waitFor("attempt 2 of every job in KV") { () -> [JobView]? in
            let views = try await api.call("GET", "/v1/training/jobs").json([JobView].self)
            guard views.count == jobs.count, views.allSatisfy({ $0.attempt >= 2 }) else { return nil }
            for job in jobs {
                guard let assignment = try await fleet.assignment(node: "n1", job: job, in: desired), assignment.attempt == 2 else { return nil }
            }
            return views
        }
        #expect(views.map(\.id).sorted() == jobs)
        for view in views {
            #expect(view.history.map(\.attempt) == [1, 2], "\(view.id): \(view.history.map(\.attempt))")
            #expect(view.history.first?.failureClass == "out_of_memory", "\(view.id)")
            #expect(view.attempt == 2, "\(view.id)")
            #expect(view.config.batchSize == 16, "\(view.id)")
            #expect(view.config.gradientAccumulationSteps == 2, "\(view.id)")
            #expect(view.lastMetrics?.epoch == 2, "\(view.id)")
            let assignment = try #require(try await fleet.assignment(node: "n1", job: view.id, in: desired))
            #expect(assignment.attempt == 2)
            #expect(assignment.spec.config.batchSize == 16)
            #expect(assignment.spec.config.gradientAccumulationSteps == 2)
            #expect(assignment.fencingEpoch >= firstEpoch[view.id] ?? .max)
        }
        #expect(try await api.call("GET", "/v1/incidents").json([IncidentView].self).filter { $0.cause == "job" }.isEmpty)

        // Everything was acknowledged: nothing waits for delivery or for an ack (what the killed controller had
        // fetched came back after ackWait, 2 s, and was acknowledged by the new one).
        let drained = try await waitFor("the consumer to have nothing pending", timeout: .seconds(10)) { () -> [String: Any]? in
            let info = try await fleet.consumerInfo()
            return (info["num_pending"] as? Int) == 0 && (info["num_ack_pending"] as? Int) == 0 ? info : nil
        }
        #expect(drained["num_pending"] as? Int == 0)
        #expect(drained["num_ack_pending"] as? Int == 0)

        // The persisted state shows each event applied once: 5 sequences of attempt 1, one restart, one ladder step.
        await controller.crash()
        let state = try await fleet.persistedState()
        for job in jobs {
            let record = try #require(state.jobs[job])
            #expect(record.history.count == 2, "\(job)")
            #expect(record.history[0].sequences.contiguous == 5, "\(job): \(record.history[0].sequences)")
            #expect(record.history[0].sequences.ahead.isEmpty, "\(job)")
            #expect(record.history[0].lastMetrics?.epoch == 2, "\(job)")
            #expect(record.maxEpochSeen == 2, "\(job)")
            #expect(record.restarts == 1, "\(job)")
            #expect(record.ladderSteps[Symptom.outOfMemory.rawValue] == 1, "\(job)")
            #expect(record.remediation.count == 1, "\(job)")
        }
    }

    /// Events of one attempt in the order given, with the sequences given (a burst redelivered out of order).
    static func send(_ agent: SyntheticAgent, _ job: String, _ events: [(UInt64, TrainingEvent.Body)]) async throws {
        for (sequence, body) in events {
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            try await agent.send(TrainingEvent(jobID: job, nodeID: agent.nodeID, attempt: 1, sequence: sequence, timeMs: now, body: body))
        }
    }

    /// What a crash does to the order of events: the last epoch, fetched by a controller that died, comes back
    /// after the exit. Applied in that order, "exit 0 after epoch 1 of 2" would be judged a crash and restarted.
    @Test func anExitThatOvertakesItsLastEpochWaitsForIt() async throws {
        let fleet = try await FleetHarness()
        let controller = try await fleet.startController()
        let api = HTTP(base: controller.api, token: adminToken.token)
        let agent = try await fleet.announcedNode("n1", api: api)
        #expect(try await api.call("POST", "/v1/training/jobs", body: faultSpec("late", fault: "none", epochs: 2)).status == 201)

        try await Self.send(agent, "late", [
            (1, .accepted(JobAccepted(fencingEpoch: 1))), (2, .started(JobStarted(pid: 7))),
            (3, .epoch(EpochMetrics(epoch: 1, totalEpochs: 2, loss: 1.0))),
            (5, .exited(JobExited(exitCode: 0, runtimeSeconds: 2, epochsCompleted: 2))),
        ])
        // The exit is held (naked and redelivered) while epoch 2 is missing.
        let held = try? await waitFor("the exit to be held back", timeout: .seconds(5)) { () -> Bool? in
            ((try await fleet.consumerInfo())["num_redelivered"] as? Int ?? 0) > 0 ? true : nil
        }
        #expect(held == true, "the exit was not held back")
        #expect(try await api.call("GET", "/v1/training/jobs/late").json(JobView.self).status == "running")
        try await Self.send(agent, "late", [(4, .epoch(EpochMetrics(epoch: 2, totalEpochs: 2, loss: 0.5)))])

        let job = try await waitFor("late completed") { () -> JobView? in
            let job = try await api.call("GET", "/v1/training/jobs/late").json(JobView.self)
            return job.status == "running" ? nil : job
        }
        #expect(job.status == "completed", "\(job.statusDetail)")
        #expect(job.history.count == 1)
        #expect(job.lastMetrics?.epoch == 2)
        await controller.stop()
    }

    /// An event that never comes (an agent that lost it) holds the rest of its attempt back for twice the ack
    /// wait, no longer; then the later events are applied without it.
    @Test func aGapThatNeverFillsIsGivenUpAfterTwiceTheAckWait() async throws {
        let fleet = try await FleetHarness()
        var config = fleet.controllerConfig()
        config.ackWaitSeconds = 0.5
        let controller = try await RunningController(config: config)
        let api = HTTP(base: controller.api, token: adminToken.token)
        let agent = try await fleet.announcedNode("n1", api: api)
        #expect(try await api.call("POST", "/v1/training/jobs", body: faultSpec("lost", fault: "none", epochs: 1)).status == 201)

        let sent = ContinuousClock.now
        try await Self.send(agent, "lost", [
            (1, .accepted(JobAccepted(fencingEpoch: 1))),
            (3, .epoch(EpochMetrics(epoch: 1, totalEpochs: 1, loss: 1.0))),
            (4, .exited(JobExited(exitCode: 0, runtimeSeconds: 1, epochsCompleted: 1))),
        ])
        let job = try await waitFor("lost to end", timeout: .seconds(10)) { () -> JobView? in
            let job = try await api.call("GET", "/v1/training/jobs/lost").json(JobView.self)
            return job.status == "completed" ? job : nil
        }
        let waited = ContinuousClock.now - sent
        #expect(waited >= .seconds(1), "applied after \(waited), before the hold of 2 x 0.5 s ran out")
        #expect(job.lastMetrics?.epoch == 1)
        #expect(job.history.count == 1)
        await controller.stop()
    }
}
