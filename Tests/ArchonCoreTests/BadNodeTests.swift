import ArchonModel
import Testing

@testable import ArchonCore

@Suite struct BadNodeTests {
    /// job-a, job-b, job-c running on n1; job-d healthy on n2; n3 empty.
    func fleetWithThreeJobsOnN1(policy: Policy = .noBackoff) -> Fleet {
        var fleet = Fleet(policy: policy, nodes: ["n1"])
        for id in ["job-a", "job-b", "job-c"] {
            _ = fleet.submit(spec(id))
            _ = fleet.start(id)
        }
        fleet.addNode("n2")
        fleet.addNode("n3")
        _ = fleet.submit(spec("job-d"))
        _ = fleet.start("job-d")
        fleet.advance(minute)
        _ = fleet.epoch("job-d", 1, loss: 1.0)
        return fleet
    }

    @Test func threeJobsFailingOnOneNodeCordonItAndMoveItsJobs() throws {
        var fleet = fleetWithThreeJobsOnN1()
        #expect(fleet.job("job-d").nodeID == "n2")
        fleet.advance(minute)
        #expect(decisions(fleet.exit("job-a", code: 139)) == ["assign job-a#2 → n1"])
        fleet.advance(minute)
        #expect(decisions(fleet.exit("job-b", code: 139)) == ["assign job-b#2 → n1"])
        fleet.advance(minute)
        let actions = fleet.exit("job-c", code: 139)
        #expect(decisions(actions) == [
            "cordon n1",
            "stop job-a#2 on n1", "assign job-a#3 → n3",
            "stop job-b#2 on n1", "assign job-b#3 → n2",
            "opened INC-1 L3 Training Failure Escalation - node n1",
            "stop job-c#1 on n1", "assign job-c#2 → n3",
        ])
        let cordon = try #require(firstReason(actions))
        #expect(cordon.symptom == "bad node")
        #expect(cordon.evidence == "3 distinct jobs failed on n1 within 30m: job-a (crash mid-training on n1), job-b (crash mid-training on n1), job-c (crash mid-training on n1); jobs of the same kind ('resnet') ran healthy on other nodes")
        let incident = fleet.incident("INC-1")
        #expect(incident.cause == .badNode && incident.level == .l3 && incident.nodes == ["n1"])
        #expect(incident.jobs == ["job-a", "job-b", "job-c"])
        #expect(incident.stepsTaken.map(\.action) == [
            "cordoned node n1",
            "re-placed off bad node n1 with the same config",
            "re-placed off bad node n1 with the same config",
        ])
        #expect(fleet.controller.node("n1")?.cordoned == true)
        // job-c's failure is blamed on the node: its crash ladder is untouched.
        #expect(fleet.job("job-c").ladderSteps["crash"] == nil)
        // Nothing new goes to n1.
        #expect(decisions(fleet.submit(spec("job-e"))) == ["assign job-e#1 → n2"])
    }

    @Test func perJobIncidentsOfTheFailingJobsAreAttachedAndStopPaging() throws {
        var policy = Policy.noBackoff
        policy.remediation.ladders.crash.steps = []  // every crash escalates at once
        var fleet = fleetWithThreeJobsOnN1(policy: policy)
        #expect(decisions(fleet.exit("job-a", code: 1)) == ["opened INC-1 L1 Training Failure Escalation - job-a", "stop job-a#1 on n1"])
        #expect(decisions(fleet.exit("job-b", code: 1)) == ["opened INC-2 L1 Training Failure Escalation - job-b", "stop job-b#1 on n1"])
        #expect(decisions(fleet.exit("job-c", code: 1)) == [
            "cordon n1",
            "opened INC-3 L3 Training Failure Escalation - node n1",
            "updated INC-1 L1 Training Failure Escalation - job-a",
            "updated INC-2 L1 Training Failure Escalation - job-b",
            "stop job-c#1 on n1", "assign job-c#2 → n3",
        ])
        #expect(fleet.incident("INC-1").parentID == "INC-3" && fleet.incident("INC-2").parentID == "INC-3")
        // The per-job incidents no longer climb; the node incident does, at 2 h.
        fleet.advance(20 * minute)
        #expect(escalations(fleet.tick()).isEmpty)
        fleet.advance(2 * hour)
        #expect(escalations(fleet.tick()).map { "\($0.kind) \($0.incident.id) \($0.incident.level.rawValue)" } == ["escalated INC-3 L4"])
        // Resolving the node incident closes the attached ones.
        _ = try fleet.controller.incidentResolved("INC-3", by: "sam", rootCause: "faulty DIMM on n1", at: fleet.now)
        #expect(fleet.incident("INC-1").status == .resolved && fleet.incident("INC-1").rootCause == "resolved with INC-3: faulty DIMM on n1")
    }

    @Test func oneJobFailingThreeTimesIsNotABadNode() {
        var fleet = Fleet(policy: .noBackoff, nodes: ["n1", "n2"])
        _ = fleet.submit(spec("flaky"))
        _ = fleet.submit(spec("steady"))
        _ = fleet.start("steady")
        _ = fleet.epoch("steady", 1, loss: 1.0)
        var transcript: [String] = []
        for _ in 1...3 {
            _ = fleet.start("flaky")
            fleet.advance(minute)
            transcript += decisions(fleet.exit("flaky", code: 139))
        }
        #expect(transcript == ["assign flaky#2 → n1", "assign flaky#3 → n1", "assign flaky#4 → n1"])
        #expect(fleet.controller.node("n1")?.cordoned == false)
        #expect(fleet.controller.incidents.isEmpty)
    }

    @Test func failuresOfAKindFailingEverywhereAreNotBlamedOnTheNode() {
        var fleet = Fleet(policy: .noBackoff, nodes: ["n1"])
        for id in ["job-a", "job-b", "job-c"] {
            _ = fleet.submit(spec(id, kind: "llm"))
            _ = fleet.start(id)
        }
        fleet.addNode("n2")
        _ = fleet.submit(spec("job-d", kind: "resnet"))  // healthy, but of another kind
        _ = fleet.start("job-d")
        _ = fleet.epoch("job-d", 1, loss: 1.0)
        var transcript: [String] = []
        for id in ["job-a", "job-b", "job-c"] {
            transcript += decisions(fleet.exit(id, code: 139))
        }
        #expect(!transcript.contains("cordon n1"))
        #expect(fleet.controller.node("n1")?.cordoned == false)
    }
}
