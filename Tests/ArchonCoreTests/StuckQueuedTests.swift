import ArchonModel
import Testing

@testable import ArchonCore

@Suite struct StuckQueuedTests {
    @Test func anAssignmentNotStartedInTenMinutesIsPlacedElsewhereThenEscalated() {
        var fleet = Fleet()
        #expect(decisions(fleet.submit(spec("job-1"))) == ["assign job-1#1 → n1"])
        fleet.at(10 * minute)
        var actions = fleet.fire(.startDeadline(jobID: "job-1"))
        #expect(lines(actions) == [
            "stop job-1#1 on n1",
            "assign job-1#2 → n2",
            "timer start-deadline/job-1 @20m",
        ])
        #expect(firstReason(actions)?.evidence == "attempt 1 on n1: assigned at 2026-01-01T00:00:00Z, not started within 10m")
        fleet.at(20 * minute)
        actions = fleet.fire(.startDeadline(jobID: "job-1"))
        #expect(decisions(actions) == ["stop job-1#2 on n2", "opened INC-1 L1 Training Failure Escalation - job-1"])
        #expect(fleet.job("job-1").status == .failed)
    }

    @Test func aJobThatFitsNowhereIsEscalatedAndPlacedWhenRoomAppears() {
        var fleet = Fleet(nodes: ["n1"])
        _ = fleet.submit(spec("big-1", memory: 48 * gib))
        _ = fleet.start("big-1")
        #expect(decisions(fleet.submit(spec("big-2", memory: 48 * gib))) == [])
        #expect(fleet.job("big-2").statusDetail == "waiting for a node with room for 48 GiB memory, 2 CPU cores")

        fleet.at(10 * minute)
        let actions = fleet.fire(.startDeadline(jobID: "big-2"))
        #expect(decisions(actions) == ["opened INC-1 L1 Training Failure Escalation - big-2"])
        #expect(firstReason(actions)?.evidence == "queued since 2026-01-01T00:00:00Z (over 10m): no node has room for 48 GiB memory, 2 CPU cores; largest schedulable node: n1 (64 GiB memory, 16 CPU cores, 1× a100-40gb)")
        #expect(fleet.job("big-2").status == .queued)
        #expect(fleet.incident("INC-1").symptoms == ["job stuck queued — queued since 2026-01-01T00:00:00Z (over 10m): no node has room for 48 GiB memory, 2 CPU cores; largest schedulable node: n1 (64 GiB memory, 16 CPU cores, 1× a100-40gb)"])

        fleet.at(12 * minute)
        #expect(decisions(fleet.complete("big-1")) == ["stop big-1#1 on n1", "assign big-2#1 → n1"])
        #expect(decisions(fleet.start("big-2")) == ["resolved INC-1 L1 Training Failure Escalation - big-2"], "started: no longer stuck")
        #expect(fleet.incident("INC-1").status == .resolved)
    }

    @Test func aJobNoNodeCouldEverHoldIsRejected() {
        var fleet = Fleet()
        let actions = fleet.submit(spec("huge", memory: 512 * gib))
        #expect(lines(actions) == [
            "reject huge: config.resources: no node in the fleet can run this job: it needs 512 GiB memory, 2 CPU cores; largest node: n1 (64 GiB memory, 16 CPU cores, 1× a100-40gb)"
        ])
        #expect(fleet.controller.job("huge") == nil)
    }
}
