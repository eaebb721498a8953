import ArchonModel
import Testing

@testable import ArchonCore

@Suite struct MultiAgentTests {
    @Test func failuresOnThreeAgentsWithinFiveMinutesAreGroupedAtL2() {
        var fleet = Fleet(policy: .noBackoff)
        for id in ["job-1", "job-2", "job-3"] {
            _ = fleet.submit(spec(id, dataset: ""))
            _ = fleet.start(id)
        }
        fleet.advance(minute)
        #expect(decisions(fleet.exit("job-1", code: 1)) == ["assign job-1#2 → n1"])
        fleet.advance(minute)
        #expect(decisions(fleet.exit("job-2", signal: 11)) == ["assign job-2#2 → n2"])
        fleet.advance(minute)
        let actions = fleet.send("job-3", .heartbeat(Heartbeat(runningJobs: 1, secondsSinceProgress: 0)))
            + fleet.exit("job-3", code: 134)
        #expect(decisions(actions) == [
            "opened INC-1 L2 Training Failure Escalation - multiple agents affected",
            "assign job-3#2 → n3",
        ])
        let incident = fleet.incident("INC-1")
        #expect(incident.nodes == ["n1", "n2", "n3"] && incident.jobs == ["job-1", "job-2", "job-3"])
        // A repeat failure of a job already counted changes nothing; a new job on a new node would update it.
        _ = fleet.start("job-1")
        #expect(escalations(fleet.exit("job-1", code: 1)).isEmpty)
    }

    @Test func failuresSpreadOverMoreThanFiveMinutesAreNotGrouped() {
        var fleet = Fleet(policy: .noBackoff)
        for id in ["job-1", "job-2", "job-3"] {
            _ = fleet.submit(spec(id, dataset: ""))
            _ = fleet.start(id)
        }
        var transcript: [String] = []
        for id in ["job-1", "job-2", "job-3"] {
            fleet.advance(3 * minute)
            transcript += decisions(fleet.exit(id, code: 1))
        }
        #expect(!transcript.contains { $0.hasPrefix("opened") })
    }
}

@Suite struct MultiAgentOneJobTests {
    @Test func oneJobMovedAcrossThreeNodesIsNotMultipleAgents() {
        var fleet = Fleet(policy: .noBackoff)
        _ = fleet.submit(spec("job-1", dataset: ""))
        var transcript: [String] = []
        for _ in 1...3 {
            _ = fleet.start("job-1")
            transcript += decisions(fleet.exit("job-1", failure: .nodeFault, detail: "cgroup setup failed"))
        }
        #expect(transcript == [
            "stop job-1#1 on n1", "assign job-1#2 → n2",
            "stop job-1#2 on n2", "assign job-1#3 → n3",
            "opened INC-1 L1 Training Failure Escalation - job-1", "stop job-1#3 on n3",
        ])
    }
}
