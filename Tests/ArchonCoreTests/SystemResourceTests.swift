import ArchonModel
import Testing

@testable import ArchonCore

@Suite struct SystemResourceTests {
    func status(_ node: String, memoryUsed: UInt64) -> TrainingEvent {
        TrainingEvent(
            jobID: "", nodeID: node, attempt: 0, sequence: 0, timeMs: t0 + minute,
            body: .nodeStatus(NodeStatus(
                nodeID: node,
                capacity: NodeCapacity(cpuCores: 16, memoryBytes: 64 * gib, gpus: [GPU(index: 0, name: "A100", gpuClass: "a100-40gb", memoryBytes: 40 * gib)], diskBytes: 1000 * gib),
                usage: NodeUsage(memoryUsedBytes: memoryUsed))))
    }

    @Test func overAQuarterOfNodesAboveNinetyPercentFreezesTheOOMLadder() throws {
        var fleet = Fleet(policy: .noBackoff, nodes: ["n1", "n2", "n3", "n4"])
        _ = fleet.submit(spec("job-1", batch: 64))
        _ = fleet.start("job-1")
        fleet.advance(minute)
        #expect(decisions(fleet.controller.eventReceived(status("n1", memoryUsed: 62 * gib), subjectNode: "n1", at: fleet.now)) == [])
        let actions = fleet.controller.eventReceived(status("n2", memoryUsed: 61 * gib), subjectNode: "n2", at: fleet.now)
        #expect(decisions(actions) == ["freeze outOfMemory", "opened INC-1 L3 Training Failure Escalation - fleet memory"])
        #expect(firstReason(actions)?.evidence == "2 of 4 nodes (50%) above 90% memory: n1, n2")
        #expect(fleet.incident("INC-1").severity == .critical)
        // The same status again adds nothing.
        #expect(fleet.controller.eventReceived(status("n2", memoryUsed: 61 * gib), subjectNode: "n2", at: fleet.now).isEmpty)

        // An OOM now holds the job instead of halving its batch.
        #expect(decisions(fleet.exit("job-1", oom: true)) == [])
        #expect(fleet.job("job-1").status == .paused)
        #expect(fleet.job("job-1").ladderSteps.isEmpty)

        let resolved = try fleet.controller.incidentResolved("INC-1", by: "ops", rootCause: "log shipper leaking memory on every node", at: fleet.now)
        #expect(decisions(resolved) == ["resolved INC-1 L3 Training Failure Escalation - fleet memory", "unfreeze outOfMemory", "assign job-1#2 → n1"])
        #expect(try #require(assignments(resolved).first).spec.config.batchSize == 64)
    }

    @Test func theSameResourceSymptomOnThreeNodesIsSystemWide() {
        var fleet = Fleet(policy: .noBackoff)
        for id in ["job-1", "job-2", "job-3"] {
            _ = fleet.submit(spec(id, batch: 64, dataset: ""))
            _ = fleet.start(id)
        }
        #expect(decisions(fleet.exit("job-1", oom: true)) == ["assign job-1#2 → n1"])
        #expect(decisions(fleet.exit("job-2", oom: true)) == ["assign job-2#2 → n2"])
        let actions = fleet.exit("job-3", oom: true)
        #expect(decisions(actions) == ["freeze outOfMemory", "opened INC-1 L3 Training Failure Escalation - fleet memory"])
        #expect(!decisions(actions).contains { $0.contains("multiple agents") })  // explained: no second incident
        #expect(fleet.job("job-3").status == .paused)
    }
}
