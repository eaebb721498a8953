import ArchonController
import ArchonModel
import ArchonNATS
import ArchonWire
import Foundation
import Testing

@Suite("Controller against real NATS, real HTTP and real agents", .serialized)
struct ControllerTests {
    @Test func aSubmittedJobIsPlacedRunsOnARealAgentAndCompletes() async throws {
        let fleet = try await FleetHarness()
        let controller = try await fleet.startController()
        try await fleet.startAgent("n1")
        let api = HTTP(base: controller.api, token: adminToken.token)
        _ = try await waitFor("node n1") { try await api.call("GET", "/v1/nodes").json([NodeView].self).first { $0.id == "n1" } }

        let submitted = try await api.call("POST", "/v1/training/jobs", body: faultSpec("ok", fault: "none", epochs: 3))
        #expect(submitted.status == 201, "\(submitted.text)")
        let job = try await waitFor("job ok completed") {
            let job = try await api.call("GET", "/v1/training/jobs/ok").json(JobView.self)
            return job.status == "completed" ? job : nil
        }
        #expect(job.history.count == 1)
        #expect(job.history.first?.node == "n1")
        #expect(job.lastMetrics?.epoch == 3)

        // A finished job leaves the desired state.
        let desired = try await fleet.js.keyValue(KeyValueConfig(bucket: Fleet.desiredBucket))
        _ = try await waitFor("n1.ok deleted from archon_desired") { try await desired.get("n1.ok") == nil ? true : nil }
        await controller.stop()
    }

    @Test func anOOMIsFixedByHalvingTheBatchWithoutAnIncident() async throws {
        let fleet = try await FleetHarness()
        let controller = try await fleet.startController()
        try await fleet.startAgent("n1")
        let api = HTTP(base: controller.api, token: adminToken.token)
        _ = try await waitFor("node n1") { try await api.call("GET", "/v1/nodes").json([NodeView].self).first { $0.id == "n1" } }

        // Attempt 1 touches 400 MiB under a 192 MiB limit; later attempts behave.
        let spec = faultSpec("oom", fault: "oom_once", epochs: 2, batch: 32, memory: 192 << 20, hyper: ["allocMB": "400"])
        #expect(try await api.call("POST", "/v1/training/jobs", body: spec).status == 201)
        let job = try await waitFor("job oom completed") {
            let job = try await api.call("GET", "/v1/training/jobs/oom").json(JobView.self)
            return job.status == "completed" ? job : nil
        }
        #expect(job.history.count == 2)
        #expect(job.history[0].failureClass == "out_of_memory")
        #expect(job.config.batchSize == 16)
        #expect(job.config.gradientAccumulationSteps == 2)
        #expect(job.history[1].configChange.contains("16"), "\(job.history[1].configChange)")
        #expect(try await api.call("GET", "/v1/incidents").json([IncidentView].self).filter { $0.cause == "job" }.isEmpty)
        await controller.stop()
    }

    @Test func malformedAndSpoofedEventsAreRejectedNotRedelivered() async throws {
        let fleet = try await FleetHarness()
        let controller = try await fleet.startController()
        let api = HTTP(base: controller.api, token: adminToken.token)
        let agent = try await fleet.announcedNode("n1", api: api)

        _ = try await fleet.js.publish("archon.v1.events.n1.j1", [0xff, 0x00, 0x13], messageID: "garbage-1")
        // n2 publishes pretending to be n1.
        let spoof = TrainingEvent(jobID: "", nodeID: "n1", attempt: 0, sequence: 99, timeMs: 1, body: .heartbeat(Heartbeat()))
        try await agent.send(spoof, subjectNode: "n2")

        let incident = try await waitFor("security incident") {
            try await api.call("GET", "/v1/incidents").json([IncidentView].self).first { $0.cause == "security" }
        }
        #expect(incident.severity == "critical")
        #expect(incident.level == "L2")
        // Nothing stays pending in the consumer: both were terminated, not left for redelivery.
        let info = try await waitFor("the consumer to have nothing pending", timeout: .seconds(5)) { () -> [String: Any]? in
            let info = try await fleet.consumerInfo()
            return (info["num_pending"] as? Int) == 0 && (info["num_ack_pending"] as? Int) == 0 ? info : nil
        }
        #expect(info["num_redelivered"] as? Int == 0)

        // An event whose job differs from its subject's is never applied: a forged OOM does not restart a job.
        #expect(try await api.call("POST", "/v1/training/jobs", body: faultSpec("victim", fault: "none")).status == 201)
        try await agent.emit("victim", attempt: 1, .accepted(JobAccepted(fencingEpoch: 1)))
        try await agent.emit("victim", attempt: 1, .started(JobStarted(pid: 11)))
        _ = try await waitFor("victim running") {
            try await api.call("GET", "/v1/training/jobs/victim").json(JobView.self).status == "running" ? true : nil
        }
        let forged = TrainingEvent(jobID: "victim", nodeID: "n1", attempt: 1, sequence: 3, timeMs: UnixTime.nowMillis(),
                                   body: .exited(JobExited(exitCode: -1, signal: 9, oomKilled: true)))
        _ = try await fleet.js.publish(Fleet.eventsSubject(node: "n1", job: "decoy"), forged.encoded(), messageID: "forged-1")
        _ = try await waitFor("the forged event terminated", timeout: .seconds(5)) { () -> Bool? in
            let info = try await fleet.consumerInfo()
            return (info["num_pending"] as? Int) == 0 && (info["num_ack_pending"] as? Int) == 0 ? true : nil
        }
        let victim = try await api.call("GET", "/v1/training/jobs/victim").json(JobView.self)
        #expect(victim.status == "running" && victim.history.count == 1 && victim.config.batchSize == 32)
        await controller.stop()
    }
    @Test func aForgedAssignmentIsRefusedByTheAgentPagesSecurityAndIsRemoved() async throws {
        let fleet = try await FleetHarness()
        var config = fleet.controllerConfig()
        config.reconcileSeconds = 1
        let controller = try await RunningController(config: config)
        try await fleet.startAgent("n1")
        let api = HTTP(base: controller.api, token: adminToken.token)
        _ = try await waitFor("node n1") { try await api.call("GET", "/v1/nodes").json([NodeView].self).first { $0.id == "n1" } }
        #expect(try await api.call("GET", "/v1/nodes").json([NodeView].self).first?.unsignedAssignmentsAccepted == false)

        // Someone who can write archon_desired (here: the admin identity) puts a job signed with another key.
        let forger = FileManager.default.temporaryDirectory.appendingPathComponent("forger-\(UUID().uuidString)").path
        try AssignmentSigner.generate(keyFile: forger + ".key", publicKeyFile: forger + ".pub")
        let spec = try JSONDecoder().decode(JobSpec.self, from: Data(faultSpec("evil", fault: "none", epochs: 1).utf8))
        let evil = JobAssignment(spec: spec, attempt: 1, fencingEpoch: 1, desiredState: .running, nodeID: "n1")
        let desired = try await fleet.js.keyValue(KeyValueConfig(bucket: Fleet.desiredBucket))
        try await desired.put("n1.evil", try AssignmentSigner(keyFile: forger + ".key").sign(evil).encoded())

        let incident = try await waitFor("security incident for n1") {
            try await api.call("GET", "/v1/incidents").json([IncidentView].self).first { $0.cause == "security" && $0.nodes == ["n1"] }
        }
        #expect(incident.severity == "critical" && incident.level == "L2")
        #expect(incident.symptoms.joined().contains("n1.evil"), "\(incident.symptoms)")
        let metrics = try await api.call("GET", "/metrics").text
        #expect(metrics.contains(#"archon_security_alerts_total{kind="assignment_rejected"}"#), "\(metrics.prefix(4000))")
        // The controller's reconciliation removes what it never wrote.
        _ = try await waitFor("n1.evil removed from archon_desired") { try await desired.get("n1.evil") == nil ? true : nil }

        // The agent never ran it, and still runs what the controller assigns.
        #expect(try await api.call("POST", "/v1/training/jobs", body: faultSpec("real", fault: "none", epochs: 1)).status == 201)
        _ = try await waitFor("job real completed") {
            try await api.call("GET", "/v1/training/jobs/real").json(JobView.self).status == "completed" ? true : nil
        }
        #expect(await fleet.agents["n1"]!.rejectedAssignments == 1)
        #expect(try await api.call("GET", "/v1/training/jobs/evil").status == 404)
        await controller.stop()
    }
}
