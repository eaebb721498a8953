import ArchonModel
import Testing

@testable import ArchonCore

/// Issue #10 part 5: a job failed by its node's storage (disk full, checkpoint folder not writable) reports the node
/// and moves, instead of being retried in place as a crash.
@Suite struct NodeResourceTests {
    static let diskFull = "disk full: OSError: [Errno 28] No space left on device: '/var/lib/archon/jobs/job-1/checkpoints/ckpt-epoch-0002.npz'"
    static let readOnly = "checkpoint directory not writable: agent could not start the job: cannot write /var/lib/archon/jobs/job-1/checkpoints/.archon-write-check: Read-only file system (EROFS)"

    /// job-1 running on n1 (all of n1, n2, n3 empty before).
    func fleetWithJobOnN1(policy: Policy = .noBackoff) -> Fleet {
        var fleet = Fleet(policy: policy)
        _ = fleet.submit(spec("job-1"))
        _ = fleet.start("job-1")
        fleet.advance(minute)
        _ = fleet.epoch("job-1", 1, loss: 1.0)
        return fleet
    }

    @Test func diskFullCordonsAndReportsTheNodeAndMovesTheJobWithoutChargingARestart() throws {
        var fleet = fleetWithJobOnN1()
        #expect(fleet.job("job-1").nodeID == "n1")
        fleet.advance(minute)
        let actions = fleet.exit("job-1", code: 1, failure: .nodeFault, detail: Self.diskFull)
        #expect(decisions(actions) == [
            "cordon n1",
            "opened INC-1 L3 Training Failure Escalation - node n1",
            "stop job-1#1 on n1",  // its desired-state key on n1 goes
            "assign job-1#2 → n2",
        ])
        let evidence = "disk full on node n1: OSError: [Errno 28] No space left on device: '/var/lib/archon/jobs/job-1/checkpoints/ckpt-epoch-0002.npz' (exit 1)"
        let cordon = try #require(firstReason(actions))
        #expect(cordon.symptom == "node resource fault (disk full)")
        #expect(cordon.evidence == "job job-1: \(evidence)")
        let incident = fleet.incident("INC-1")
        #expect(incident.cause == .badNode && incident.level == .l3 && incident.severity == .high)
        #expect(incident.nodes == ["n1"] && incident.jobs == ["job-1"])
        #expect(incident.symptoms == [evidence])
        #expect(incident.stepsTaken.map(\.action) == ["cordoned node n1 (disk full)"])
        #expect(fleet.controller.node("n1")?.cordoned == true)
        #expect(fleet.controller.node("n1")?.cordonReason == "disk full: \(evidence)")

        let job = fleet.job("job-1")
        #expect(job.history[0].symptom == .nodeFault && job.history[0].failureClass == .nodeFault)
        // Not charged: no restart counted, no rung of any ladder used.
        #expect(job.restarts == 0)
        #expect(job.ladderSteps.isEmpty)
        let assignment = try #require(assignments(actions).first)
        #expect(assignment.reason.contains("correlation.nodeResource"))
        #expect(assignment.spec.config == fleet.job("job-1").config)

        // It completes on n2; nothing new goes to the full node (n2 and n3 are equally empty again).
        _ = fleet.start("job-1")
        #expect(fleet.job("job-1").nodeID == "n2")
        _ = fleet.epoch("job-1", 10, loss: 0.1)
        _ = fleet.complete("job-1")
        #expect(fleet.job("job-1").status == .completed)
        #expect(decisions(fleet.submit(spec("job-2"))) == ["assign job-2#1 → n2"], "n1 is cordoned")
    }

    @Test func aJobFailedByStorageOnTwoNodesAvoidsBothAndEachNodeIsReported() {
        var fleet = fleetWithJobOnN1()
        #expect(decisions(fleet.exit("job-1", failure: .nodeFault, detail: Self.diskFull)).last == "assign job-1#2 → n2")
        _ = fleet.start("job-1")
        fleet.advance(minute)
        #expect(decisions(fleet.exit("job-1", failure: .nodeFault, detail: Self.diskFull)) == [
            "cordon n2",
            "opened INC-2 L3 Training Failure Escalation - node n2",
            "stop job-1#2 on n2",
            "assign job-1#3 → n3",
        ])
        #expect(fleet.job("job-1").restarts == 0)
        #expect(fleet.incident("INC-2").nodes == ["n2"])
    }

    @Test func anUnwritableCheckpointFolderIsANodeResourceFaultToo() throws {
        var fleet = Fleet(policy: .noBackoff)
        _ = fleet.submit(spec("job-1"))
        // The agent refused to start it: exit 127 before any process, as in its preflight check.
        let actions = fleet.exit("job-1", code: 127, failure: .nodeFault, detail: Self.readOnly)
        #expect(decisions(actions) == [
            "cordon n1",
            "opened INC-1 L3 Training Failure Escalation - node n1",
            "stop job-1#1 on n1",
            "assign job-1#2 → n2",
        ])
        #expect(fleet.incident("INC-1").symptoms == [
            "checkpoint directory not writable on node n1: agent could not start the job: cannot write /var/lib/archon/jobs/job-1/checkpoints/.archon-write-check: Read-only file system (EROFS) (exit 127)",
        ])
        #expect(fleet.job("job-1").restarts == 0)
    }

    @Test func aSecondJobFailingOnTheReportedNodeUpdatesTheSameIncident() {
        var fleet = Fleet(policy: .noBackoff, nodes: ["n1"])
        _ = fleet.submit(spec("job-1"))
        _ = fleet.submit(spec("job-2"))
        _ = fleet.start("job-1")
        _ = fleet.start("job-2")
        fleet.addNode("n2")
        _ = fleet.exit("job-1", failure: .nodeFault, detail: Self.diskFull)
        let second = decisions(fleet.exit("job-2", failure: .nodeFault, detail: "disk full: OSError: [Errno 28] No space left on device"))
        #expect(second == [
            "updated INC-1 L3 Training Failure Escalation - node n1",
            "stop job-2#1 on n1",
            "assign job-2#2 → n2",
        ])
        #expect(fleet.incident("INC-1").jobs == ["job-1", "job-2"])
        #expect(fleet.job("job-2").restarts == 0)
    }

    @Test func withoutCordonTheNodeIsReportedButKeepsTakingJobs() {
        var policy = Policy.noBackoff
        policy.correlation.nodeResource.cordon = false
        var fleet = fleetWithJobOnN1(policy: policy)
        #expect(decisions(fleet.exit("job-1", failure: .nodeFault, detail: Self.diskFull)) == [
            "opened INC-1 L3 Training Failure Escalation - node n1",
            "stop job-1#1 on n1",
            "assign job-1#2 → n2",
        ])
        #expect(fleet.controller.node("n1")?.cordoned == false)
        #expect(fleet.incident("INC-1").currentStatus == "jobs that fail on node n1 are moved to other nodes; fix its storage")
        #expect(decisions(fleet.submit(spec("job-2"))) == ["assign job-2#1 → n1"])
    }

    @Test func turnedOffItIsAnOrdinaryNodeFault() {
        var policy = Policy.noBackoff
        policy.correlation.nodeResource.enabled = false
        var fleet = fleetWithJobOnN1(policy: policy)
        #expect(decisions(fleet.exit("job-1", failure: .nodeFault, detail: Self.diskFull)) == ["stop job-1#1 on n1", "assign job-1#2 → n2"])
        #expect(fleet.job("job-1").restarts == 1)
        #expect(fleet.job("job-1").ladderSteps["nodeFault"] == 1)
        #expect(fleet.controller.incidents.isEmpty)
    }

    @Test func aNodeFaultWithoutAResourceNameKeepsItsLadder() {
        var fleet = fleetWithJobOnN1()
        #expect(decisions(fleet.exit("job-1", code: 127, failure: .nodeFault, detail: "agent could not start the process: spawn python3: Resource temporarily unavailable")) == ["stop job-1#1 on n1", "assign job-1#2 → n2"])
        #expect(fleet.job("job-1").restarts == 1)
        #expect(fleet.controller.node("n1")?.cordoned == false)
    }

    @Test func theSameTextUnderAnotherClassIsNotANodeFault() {
        // Only the agent's `node_fault` class carries the contract; a crash whose detail happens to start so is a crash.
        var fleet = fleetWithJobOnN1()
        #expect(decisions(fleet.exit("job-1", failure: .crash, detail: Self.diskFull)) == ["assign job-1#2 → n1"])
        #expect(fleet.job("job-1").history[0].symptom == .crash)
    }

    @Test(arguments: [
        ("disk full: x", NodeResourceFault.diskFull, "x"),
        ("checkpoint directory not writable: cannot create /w: Read-only file system (EROFS)", .checkpointDirectoryNotWritable, "cannot create /w: Read-only file system (EROFS)"),
    ])
    func detailsParseBack(_ detail: String, _ fault: NodeResourceFault, _ what: String) throws {
        let parsed = try #require(NodeResourceFault.parse(detail))
        #expect(parsed.fault == fault && parsed.what == what)
        #expect(fault.detail(what) == detail)
    }

    @Test func otherDetailsAreNoNodeResourceFault() {
        for detail in ["", "disk full", "disk fullness: x", "agent could not start the process: x", "Disk full: x"] {
            #expect(NodeResourceFault.parse(detail) == nil, "\(detail)")
        }
    }
}
