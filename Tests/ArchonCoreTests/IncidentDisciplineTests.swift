import ArchonModel
import PropertyBased
import Testing

@testable import ArchonCore

/// A pager people trust (issue #11): incidents resolve themselves when their condition clears, acknowledgements
/// expire, and anything worse pages whether acknowledged or not. Each test plays the sequence that showed the defect.
@Suite struct IncidentDisciplineTests {
    /// big-2 fits nowhere until big-1 completes: stuck queued, L1 paged at 10 min.
    func stuckQueued() -> Fleet {
        var fleet = Fleet(nodes: ["n1"])
        _ = fleet.submit(spec("big-1", memory: 48 * gib))
        _ = fleet.start("big-1")
        _ = fleet.submit(spec("big-2", memory: 48 * gib))
        fleet.at(10 * minute)
        _ = fleet.fire(.startDeadline(jobID: "big-2"))
        return fleet
    }

    @Test func aStuckQueuedPageResolvesWhenTheJobStartsAndNeverClimbs() {
        var fleet = stuckQueued()
        #expect(fleet.incident("INC-1").level == .l1 && fleet.incident("INC-1").status == .open)
        // Before: placed 30 s later and completed, it kept climbing to L4 (VP Engineering) over 3.5 hours.
        fleet.at(10 * minute + 30 * second)
        _ = fleet.complete("big-1")
        let started = fleet.start("big-2")
        #expect(lines(started).contains("cancel response-due/INC-1/L1"))
        #expect(decisions(started) == ["resolved INC-1 L1 Training Failure Escalation - big-2"])
        let incident = fleet.incident("INC-1")
        #expect(incident.status == .resolved && incident.resolvedBy == "archon")
        #expect(incident.rootCause == "auto-resolved: job big-2 started on n1 (attempt 1); no longer stuck queued")
        #expect(!fleet.controller.scheduledTimers.contains { $0.id.owner == .incident("INC-1") && $0.id != .archiveIncident(incidentID: "INC-1") },
                "nothing left to climb")
        fleet.at(4 * hour)
        _ = fleet.tick()
        #expect(fleet.incident("INC-1").level == .l1)
    }

    /// job-1's divergence ladder restarts it with a data-quality check and escalates to L2 while it runs on.
    func dataQualityEscalation(_ policy: Policy = .noBackoff) -> Fleet {
        var policy = policy
        policy.remediation.ladders.divergingLoss.steps = [.dataQualityCheck(escalateTo: .l2), .restart]
        var fleet = Fleet(policy: policy)
        _ = fleet.submit(spec("job-1"))
        _ = fleet.start("job-1")
        fleet.advance(minute)
        _ = fleet.exit("job-1", failure: .divergingLoss)
        return fleet
    }

    @Test func aJobIncidentResolvesOnceTheJobRunsHealthyOnANewAttempt() {
        var fleet = dataQualityEscalation()
        #expect(fleet.incident("INC-1").level == .l2 && fleet.job("job-1").attempt == 2)
        let started = fleet.start("job-1")
        #expect(lines(started).contains("timer healthy/job-1/2 @11m"), "\(lines(started))")
        for epoch in 1...5 {
            fleet.advance(2 * minute)
            _ = fleet.epoch("job-1", epoch, loss: 1.0 / Double(epoch))
        }
        fleet.at(11 * minute)
        let healthy = fleet.fire(.healthyFor(jobID: "job-1", attempt: 2))
        #expect(decisions(healthy) == ["resolved INC-1 L2 Training Failure Escalation - job-1"])
        #expect(fleet.incident("INC-1").rootCause.hasPrefix("auto-resolved: attempt 2 of job job-1 ran healthy on n1 for 10m"))
        #expect(fleet.job("job-1").status == .running, "the job goes on")
    }

    @Test func anAttemptThatReportsNoProgressOrFailsDoesNotResolveIt() {
        var fleet = dataQualityEscalation()
        _ = fleet.start("job-1")
        fleet.at(11 * minute)
        #expect(decisions(fleet.fire(.healthyFor(jobID: "job-1", attempt: 2))).isEmpty, "no progress reported: judged by its end")
        #expect(fleet.incident("INC-1").status == .open)
        // Completing resolves it.
        let done = fleet.complete("job-1")
        #expect(decisions(done).contains("resolved INC-1 L2 Training Failure Escalation - job-1"))
        #expect(fleet.incident("INC-1").rootCause == "auto-resolved: job job-1 completed on attempt 2")
    }

    @Test func aJobThatFailedForGoodKeepsItsIncidentOpen() {
        var fleet = Fleet()
        _ = fleet.submit(spec("job-1"))
        _ = fleet.start("job-1")
        _ = fleet.exit("job-1", failure: .dataCorruption)  // no ladder steps: escalated at once, failed
        #expect(fleet.job("job-1").status == .failed)
        #expect(fleet.incident("INC-1").status == .open)
        fleet.at(2 * hour)
        _ = fleet.tick()
        #expect(fleet.incident("INC-1").status == .open, "a person must look")
    }

    @Test func anOperatorStopResolvesTheJobsIncidentAndNotices() throws {
        var fleet = dataQualityEscalation()
        _ = fleet.start("job-1")
        _ = fleet.send("job-1", .resources(ResourceSample(memoryUsedBytes: 8 * gib - 1, memoryLimitBytes: 8 * gib)))
        #expect(fleet.controller.state.incidents.open(forKey: "notice:job-1:pressure-memory") != nil)
        let stopped = try fleet.controller.jobStopRequested("job-1", by: "sam", at: fleet.now)
        #expect(decisions(stopped).filter { $0.hasPrefix("resolved") } == [
            "resolved INC-1 L2 Training Failure Escalation - job-1", "resolved INC-2 L1 Training Notice - job-1: resource pressure",
        ])
        #expect(fleet.incident("INC-2").rootCause == "auto-resolved: job job-1 stopped by sam")
    }

    @Test func aResourcePressureNoticeResolvesWhenThePressureEndsAndCanReturn() {
        var fleet = Fleet()
        _ = fleet.submit(spec("job-1"))
        _ = fleet.start("job-1")
        let high = ResourceSample(memoryUsedBytes: 7_900 << 20, memoryLimitBytes: 8 * gib)
        #expect(decisions(fleet.send("job-1", .resources(high))) == ["opened INC-1 L1 Training Notice - job-1: resource pressure"])
        #expect(decisions(fleet.send("job-1", .resources(high))).isEmpty, "one notice while the pressure lasts")
        fleet.advance(minute)
        let low = fleet.send("job-1", .resources(ResourceSample(memoryUsedBytes: 4 * gib, memoryLimitBytes: 8 * gib)))
        #expect(decisions(low) == ["resolved INC-1 L1 Training Notice - job-1: resource pressure"])
        #expect(fleet.incident("INC-1").rootCause.hasPrefix("auto-resolved: memory of job job-1 back at or below 90% in the sample of"))
        fleet.advance(minute)
        #expect(decisions(fleet.send("job-1", .resources(high))) == ["opened INC-2 L1 Training Notice - job-1: resource pressure"], "a new episode")
    }

    // MARK: Acknowledgements

    @Test func anAcknowledgementExpiresAndPagesTheLevelAgain() throws {
        var fleet = stuckQueued()  // INC-1 at L1, opened at 10m; big-2 stays stuck (big-1 never ends)
        fleet.at(12 * minute)
        let acked = try fleet.controller.incidentAcknowledged("INC-1", by: "maria", at: fleet.now)
        #expect(lines(acked).contains("timer ack-expires/INC-1 @42m"))
        fleet.at(42 * minute)
        let expired = fleet.fire(.ackExpires(incidentID: "INC-1"))
        #expect(lines(expired) == ["timer response-due/INC-1/L1 @57m", "escalated INC-1 L1 Training Failure Escalation - big-2"])
        #expect(firstReason(expired)?.evidence == "INC-1 was acknowledged by maria 30m ago and is still open")
        #expect(fleet.incident("INC-1").status == .open)
        // Nobody answers again: it climbs as before.
        fleet.at(57 * minute)
        #expect(decisions(fleet.fire(.responseDue(incidentID: "INC-1", level: .l1))) == ["escalated INC-1 L2 Training Failure Escalation - big-2"])
    }

    @Test func anAcknowledgementThatNeverExpiresWhenThePolicySaysSo() throws {
        var policy = Policy()
        policy.escalation.ackTimeout = .seconds(0)
        var fleet = Fleet(policy: policy, nodes: ["n1"])
        _ = fleet.submit(spec("big-1", memory: 48 * gib))
        _ = fleet.start("big-1")
        _ = fleet.submit(spec("big-2", memory: 48 * gib))
        fleet.at(10 * minute)
        _ = fleet.fire(.startDeadline(jobID: "big-2"))
        let acked = try fleet.controller.incidentAcknowledged("INC-1", by: "maria", at: fleet.now)
        #expect(!lines(acked).contains { $0.hasPrefix("timer ack-expires") })
        #expect(!fleet.controller.scheduledTimers.contains { $0.id.owner == .incident("INC-1") })
        fleet.at(10 * hour)
        _ = fleet.tick()
        #expect(fleet.incident("INC-1").status == .acknowledged)
    }

    @Test func aHigherLevelPagesEvenWhenAcknowledged() throws {
        // Before: an acknowledged incident took the job's later permission error (L2 critical) as a silent update.
        var fleet = dataQualityEscalation()  // INC-1 at L2 high; job-1 runs attempt 2
        _ = try fleet.controller.incidentAcknowledged("INC-1", by: "maria", at: fleet.now)
        _ = fleet.start("job-1")
        fleet.advance(minute)
        let denied = fleet.exit("job-1", failure: .permissionDenied)
        #expect(decisions(denied).contains("escalated INC-1 L2 Training Failure Escalation - job-1"), "\(decisions(denied))")
        let incident = fleet.incident("INC-1")
        #expect(incident.status == .open && incident.severity == .critical)
        #expect(incident.timeline.contains { $0.text == "acknowledgement by maria superseded: it got worse" })
        #expect(lines(denied).contains("cancel ack-expires/INC-1"))
    }

    @Test func aHigherLevelOnAnAcknowledgedIncidentPagesThatLevel() throws {
        var policy = Policy.noBackoff
        policy.remediation.ladders.divergingLoss.steps = [.dataQualityCheck(escalateTo: .l1), .dataQualityCheck(escalateTo: .l3)]
        var fleet = Fleet(policy: policy)
        _ = fleet.submit(spec("job-1"))
        _ = fleet.start("job-1")
        _ = fleet.exit("job-1", failure: .divergingLoss)
        #expect(fleet.incident("INC-1").level == .l1)
        _ = try fleet.controller.incidentAcknowledged("INC-1", by: "maria", at: fleet.now)
        _ = fleet.start("job-1")
        let worse = fleet.exit("job-1", failure: .divergingLoss)
        #expect(decisions(worse).contains("escalated INC-1 L3 Training Failure Escalation - job-1"))
        #expect(fleet.incident("INC-1").status == .open && fleet.incident("INC-1").level == .l3)
        #expect(lines(worse).contains { $0.hasPrefix("timer response-due/INC-1/L3") })
    }

    // MARK: Evidence cleared on repair

    /// Three jobs crashed on n1 while job-d ran healthy on n2: n1 cordoned, INC-1 (bad node) open.
    func badNodeN1() -> Fleet {
        var fleet = Fleet(policy: .noBackoff, nodes: ["n1"])
        for id in ["job-a", "job-b", "job-c"] {
            _ = fleet.submit(spec(id))
            _ = fleet.start(id)
        }
        fleet.addNode("n2")
        _ = fleet.submit(spec("job-d"))
        _ = fleet.start("job-d")
        _ = fleet.epoch("job-d", 1, loss: 1)
        for id in ["job-a", "job-b", "job-c"] {
            fleet.advance(minute)
            _ = fleet.exit(id, code: 139)
        }
        return fleet
    }

    @Test func aRepairedNodeIsNotCordonedAgainByOneCrashOnOldEvidence() throws {
        var fleet = badNodeN1()
        #expect(fleet.controller.node("n1")?.cordoned == true && fleet.incident("INC-1").cause == .badNode)
        // Repaired: uncordoned and resolved ten minutes later.
        fleet.advance(10 * minute)
        _ = try fleet.controller.nodeUncordoned("n1", by: "sam", at: fleet.now)
        _ = try fleet.controller.incidentResolved("INC-1", by: "sam", rootCause: "replaced a failing DIMM", at: fleet.now)
        // Before: one crash within the 30 min window counted the three old failures and cordoned n1 again (L3 page).
        _ = fleet.submit(spec("job-e"))
        #expect(fleet.job("job-e").nodeID == "n1")
        _ = fleet.start("job-e")
        fleet.advance(minute)
        let crash = fleet.exit("job-e", code: 139)
        #expect(!decisions(crash).contains("cordon n1"), "\(decisions(crash))")
        #expect(escalations(crash).filter { $0.kind == .opened }.isEmpty)
        #expect(fleet.controller.node("n1")?.cordoned == false)
        #expect(fleet.controller.node("n1")?.evidenceSinceMs != nil)
    }

    @Test func aBadNodePutBackIntoServiceResolvesWhenAJobCompletesThere() throws {
        var fleet = badNodeN1()
        #expect(fleet.incident("INC-1").cause == .badNode)
        fleet.advance(10 * minute)
        _ = try fleet.controller.nodeUncordoned("n1", by: "sam", at: fleet.now)
        #expect(fleet.incident("INC-1").status == .open, "uncordoned is not yet healthy")
        _ = fleet.submit(spec("job-e"))
        #expect(fleet.job("job-e").nodeID == "n1")
        _ = fleet.start("job-e")
        fleet.advance(minute)
        let done = fleet.complete("job-e")
        #expect(decisions(done).contains("resolved INC-1 L3 Training Failure Escalation - node n1"), "\(decisions(done))")
        #expect(fleet.incident("INC-1").rootCause == "auto-resolved: node n1 healthy again: job job-e completed there after it was put back into service")
    }

    @Test func resolvingABadDatasetIncidentResumesTheDatasetAndTheNextFailurePages() throws {
        var fleet = Fleet(policy: .noBackoff)
        for id in ["job-1", "job-2"] {
            _ = fleet.submit(spec(id, dataset: "ds-1"))
            _ = fleet.start(id)
        }
        fleet.advance(minute)
        _ = fleet.exit("job-1", failure: .dataCorruption)
        fleet.advance(minute)
        _ = fleet.exit("job-2", failure: .dataCorruption)
        let datasetIncident = try #require(fleet.controller.state.incidents.open(forKey: "bad_dataset:ds-1"))
        #expect(fleet.controller.dataset("ds-1")?.retriesPaused == true)
        // Before: resolving the incident left ds-1 paused, and the next failure on it was held with no page.
        let resolved = try fleet.controller.incidentResolved(datasetIncident.id, by: "ana", rootCause: "re-uploaded shard 17", at: fleet.now)
        #expect(decisions(resolved).contains("resume retries ds-1"), "\(decisions(resolved))")
        #expect(fleet.controller.dataset("ds-1")?.retriesPaused == false)
        _ = fleet.submit(spec("job-3", dataset: "ds-1"))
        _ = fleet.start("job-3")
        fleet.advance(minute)
        let again = fleet.exit("job-3", failure: .dataCorruption)
        #expect(fleet.job("job-3").hold == nil, "not held: the dataset is no longer paused")
        #expect(escalations(again).contains { $0.kind == .opened && $0.incident.cause == .job }, "it pages on its own: \(lines(again))")
        #expect(fleet.controller.state.incidents.open(forKey: "bad_dataset:ds-1") == nil, "one failure on new evidence is no bad dataset")
    }

    @Test func aResolvedFleetStormNeedsNewEvidenceForANewIncident() throws {
        var policy = Policy.noBackoff
        policy.correlation.multiAgent.minDistinctNodes = 2
        var fleet = Fleet(policy: policy, nodes: ["n1", "n2", "n3"])
        for id in ["a", "b", "c"] {
            _ = fleet.submit(spec(id, dataset: ""))
            _ = fleet.start(id)
        }
        fleet.advance(minute)
        _ = fleet.exit("a", code: 1)
        _ = fleet.exit("b", code: 1)
        let storm = try #require(fleet.controller.state.incidents.open(forKey: "multi_agent"))
        _ = try fleet.controller.incidentResolved(storm.id, by: "sam", rootCause: "bad driver rolled back", at: fleet.now)
        fleet.advance(minute)
        // One more failure: with the old ones it would be a storm again; on new evidence alone it is not.
        let one = fleet.exit("c", code: 1)
        #expect(fleet.controller.state.incidents.open(forKey: "multi_agent") == nil, "\(decisions(one))")
    }

    // MARK: Timing rules that agree

    @Test func aSlowEpochThatKeepsBeatingIsNotAHangButItsEpochLimitHolds() {
        var fleet = Fleet(policy: .noBackoff)
        _ = fleet.submit(spec("job-1"))
        _ = fleet.start("job-1")
        fleet.at(minute)
        _ = fleet.epoch("job-1", 1, loss: 1)  // epoch 2 starts at 1m: its limit (15m) ends at 16m
        // Before: the hang window (10m) passed at 11m and the job was restarted as hung while it beat every 2 min.
        for beat: Int64 in [3, 5, 7, 9, 11, 13, 15] {
            fleet.at(beat * minute)
            _ = fleet.send("job-1", .heartbeat(Heartbeat(runningJobs: 1)))
            if beat == 11 {
                #expect(decisions(fleet.fire(.progressDeadline(jobID: "job-1", attempt: 1))).isEmpty, "beating: not hung")
            }
        }
        #expect(fleet.job("job-1").status == .running)
        fleet.at(16 * minute)
        let actions = fleet.fire(.epochDeadline(jobID: "job-1", attempt: 1))
        #expect(fleet.job("job-1").history[0].symptom == .timeout, "\(decisions(actions))")
    }

    @Test func silenceAfterTheLastBeatIsStillAHang() {
        var fleet = Fleet(policy: .noBackoff)
        _ = fleet.submit(spec("job-1"))
        _ = fleet.start("job-1")
        fleet.at(minute)
        _ = fleet.epoch("job-1", 1, loss: 1)
        fleet.at(3 * minute)
        _ = fleet.send("job-1", .heartbeat(Heartbeat(runningJobs: 1)))
        fleet.at(11 * minute)
        #expect(decisions(fleet.fire(.progressDeadline(jobID: "job-1", attempt: 1))).isEmpty)
        fleet.at(13 * minute)
        _ = fleet.fire(.progressDeadline(jobID: "job-1", attempt: 1))
        #expect(fleet.job("job-1").history[0].symptom == .hang)
        #expect(fleet.job("job-1").history[0].outcome.contains("no progress event or heartbeat since 2026-01-01T00:03:00Z (window 10m)"))
    }

    @Test func aJobPlacedLateGetsItsWholeStartWindow() {
        var fleet = Fleet(nodes: ["n1"])
        _ = fleet.submit(spec("big-1", memory: 48 * gib))
        _ = fleet.start("big-1")
        _ = fleet.submit(spec("big-2", memory: 48 * gib))  // queued at 0, waiting for room
        fleet.at(9 * minute)
        #expect(decisions(fleet.complete("big-1")).contains("assign big-2#1 → n1"))
        // Before: the deadline armed at queueing fired at 10m and blamed n1 for a job assigned a minute ago.
        fleet.at(10 * minute)
        let early = fleet.fire(.startDeadline(jobID: "big-2"))
        #expect(lines(early) == ["timer start-deadline/big-2 @19m"], "re-armed from the assignment")
        #expect(fleet.job("big-2").history.count == 1 && fleet.job("big-2").history[0].symptom == nil)
    }

    @Test func aNewStormWhileTheOldIsAcknowledgedAndOpenIsANewIncidentThatPages() throws {
        // Before: multi_agent was one key for the fleet: the old storm, acknowledged and left open, swallowed the
        // new one as a silent update.
        var fleet = Fleet(policy: .noBackoff, nodes: ["n1", "n2", "n3"])
        for id in ["a", "b", "c", "d", "e", "f"] {
            _ = fleet.submit(spec(id, dataset: ""))
            _ = fleet.start(id)
        }
        for id in ["a", "b", "c"] { _ = fleet.exit(id, code: 1) }
        let first = try #require(fleet.controller.state.incidents.open(forKey: "multi_agent"))
        _ = try fleet.controller.incidentAcknowledged(first.id, by: "sam", at: fleet.now)
        fleet.advance(2 * hour)
        var storm: [ControllerAction] = []
        for id in ["d", "e", "f"] { storm += fleet.exit(id, code: 1) }
        let second = try #require(fleet.controller.state.incidents.open(forKey: "multi_agent"))
        #expect(second.id != first.id)
        #expect(escalations(storm).contains { $0.kind == .opened && $0.incident.id == second.id }, "the new storm pages")
        #expect(fleet.incident(first.id).status == .resolved)
        #expect(fleet.incident(first.id).rootCause.hasPrefix("auto-resolved: storm over"))
    }

    // MARK: Fleet-relative thresholds, and a dataset pause that holds what would start

    @Test func threeOOMsOnAFortyNodeFleetAreRoutineAndFourAreFleetWide() {
        let nodes = (1...40).map { "n\($0)" }
        var fleet = Fleet(policy: .noBackoff, nodes: nodes)
        for i in 1...4 {
            _ = fleet.submit(spec("job-\(i)"))
            _ = fleet.start("job-\(i)")
        }
        #expect(Set((1...4).map { fleet.job("job-\($0)").nodeID }).count == 4)
        var all: [ControllerAction] = []
        // Before: three OOMs by three jobs on three nodes within 30 min froze OOM remediation fleet-wide (L3).
        for i in 1...3 {
            fleet.at(Int64(i - 1) * 6 * minute)  // 6 min apart: never two agents within the multi-agent window
            all += fleet.exit("job-\(i)", oom: true)
        }
        #expect(!decisions(all).contains("freeze outOfMemory"), "\(decisions(all))")
        #expect(fleet.controller.state.incidents.open(forKey: "system_resource:memory") == nil)
        #expect(fleet.controller.state.incidents.open(forKey: "multi_agent") == nil)
        fleet.at(18 * minute)
        let fourth = fleet.exit("job-4", oom: true)
        #expect(decisions(fourth).contains("freeze outOfMemory"))
        #expect(firstReason(fourth)?.evidence.hasPrefix("out of memory on 4 nodes (of 40 online; 4 needed) within 30m") == true, "\(firstReason(fourth)?.evidence ?? "")")
    }

    @Test func bothAgentsOfATwoNodeFleetFailingTogetherAreMultipleAgents() {
        // Before: the rule needed three nodes, so on a two-node fleet it could never fire.
        var fleet = Fleet(policy: .noBackoff, nodes: ["n1", "n2"])
        for id in ["a", "b"] {
            _ = fleet.submit(spec(id, dataset: ""))
            _ = fleet.start(id)
        }
        fleet.advance(minute)
        _ = fleet.exit("a", code: 1)
        fleet.advance(minute)
        let second = fleet.exit("b", code: 1)
        #expect(decisions(second).contains("opened INC-1 L2 Training Failure Escalation - multiple agents affected"), "\(decisions(second))")
    }

    @Test func nothingStartsOnAPausedDatasetNotEvenANewSubmission() throws {
        var fleet = Fleet(policy: .noBackoff)
        for id in ["job-1", "job-2"] {
            _ = fleet.submit(spec(id, dataset: "ds-1"))
            _ = fleet.start(id)
        }
        _ = fleet.exit("job-1", failure: .dataCorruption)
        _ = fleet.exit("job-2", failure: .dataCorruption)
        #expect(fleet.controller.dataset("ds-1")?.retriesPaused == true)
        // Before: a new submission on the paused dataset ran at once.
        let submitted = fleet.submit(spec("job-3", dataset: "ds-1"))
        #expect(assignments(submitted).isEmpty)
        #expect(fleet.job("job-3").status == .paused && fleet.job("job-3").hold == .dataset("ds-1"))
        #expect(fleet.job("job-3").statusDetail == "paused: retries of jobs on dataset ds-1 are paused")
        // Another dataset is unaffected.
        #expect(assignments(fleet.submit(spec("job-4", dataset: "ds-2"))).count == 1)
        let resumed = try fleet.controller.datasetResumed("ds-1", by: "ana", at: fleet.now)
        #expect(assignments(resumed).map(\.spec.id).contains("job-3"))
    }

    // MARK: Remediation bounds

    @Test func aLossCreepingUpByNoiseIsNotDivergence() {
        var fleet = Fleet(policy: .noBackoff)
        _ = fleet.submit(spec("noise"))
        _ = fleet.start("noise")
        // Before: any three rises in a row were divergence, however small.
        for (epoch, loss) in [1.0, 1.001, 1.002, 1.003].enumerated() {
            _ = fleet.epoch("noise", epoch + 1, loss: loss)
        }
        #expect(fleet.job("noise").status == .running)
        var real = Fleet(policy: .noBackoff)
        _ = real.submit(spec("rising"))
        _ = real.start("rising")
        var last: [ControllerAction] = []
        for (epoch, loss) in [1.0, 1.1, 1.2, 1.3].enumerated() {
            last = real.epoch("rising", epoch + 1, loss: loss)
        }
        #expect(real.job("rising").history[0].symptom == .divergingLoss)
        #expect(firstReason(last)?.evidence.contains("loss rose 3 epochs in a row by 30%") == true, "\(firstReason(last)?.evidence ?? "")")
    }

    @Test func theLearningRateStopsAtItsFloorAndTheStepIsSkipped() {
        var policy = Policy.noBackoff
        policy.remediation.minLearningRate = 0.004
        policy.remediation.ladders.divergingLoss.steps = [.scaleLearningRate(factor: 0.1), .scaleLearningRate(factor: 0.1), .restart]
        var fleet = Fleet(policy: policy)
        _ = fleet.submit(spec("job-1", lr: 0.01))
        _ = fleet.start("job-1")
        _ = fleet.epoch("job-1", 1, loss: .nan)
        #expect(fleet.job("job-1").config.learningRate == 0.004, "floored, not 0.001")
        _ = fleet.start("job-1")
        _ = fleet.epoch("job-1", 1, loss: .nan)
        #expect(fleet.job("job-1").config.learningRate == 0.004)
        #expect(fleet.job("job-1").remediation.last?.action == "restart from the latest checkpoint with the same config", "\(fleet.job("job-1").remediation.map(\.action))")
    }

    @Test func aJobHealthyForLongGetsItsRestartBudgetBack() {
        var fleet = Fleet(policy: .noBackoff)
        _ = fleet.submit(spec("job-1"))
        _ = fleet.start("job-1")
        _ = fleet.exit("job-1", code: 139)
        _ = fleet.start("job-1")
        _ = fleet.exit("job-1", code: 139)
        #expect(fleet.job("job-1").restarts == 2)
        let started = fleet.start("job-1")
        #expect(lines(started).contains("timer budget-reset/job-1/3 @6h"), "\(lines(started))")
        fleet.at(hour)
        _ = fleet.epoch("job-1", 1, loss: 1)
        fleet.at(6 * hour)
        _ = fleet.fire(.restartBudgetReset(jobID: "job-1", attempt: 3))
        #expect(fleet.job("job-1").restarts == 0 && fleet.job("job-1").ladderSteps.isEmpty)
    }

    /// Property: over random sequences of failures, acknowledgements, clock moves and completions, every page
    /// (`opened` or `escalated`) is a new incident, a higher level or severity than its previous page, or an expired
    /// acknowledgement; and a resolved incident never pages again.
    @Test func everyPageIsNewOrWorseOrAnExpiredAcknowledgement() async {
        await propertyCheck(count: 60, input: Gen.int(in: 0...999).array(of: 1...30)) { ops in
            var policy = Policy.noBackoff
            policy.remediation.ladders.divergingLoss.steps = [.dataQualityCheck(escalateTo: .l1), .dataQualityCheck(escalateTo: .l2), .restart]
            var fleet = Fleet(policy: policy)
            _ = fleet.submit(spec("job-1"))
            var lastPage: [String: (level: EscalationLevel, severity: Int)] = [:]
            var acknowledgedAt: [String: Int64] = [:]
            var resolved: Set<String> = []
            for op in ops {
                var actions: [ControllerAction] = []
                switch op % 6 {
                case 0: actions = fleet.start("job-1")
                case 1: actions = fleet.exit("job-1", failure: [FailureClass.divergingLoss, .permissionDenied, .crash][(op / 6) % 3])
                case 2:
                    if let open = fleet.controller.state.incidents.all.first(where: { $0.status == .open }) {
                        actions = (try? fleet.controller.incidentAcknowledged(open.id, by: "p", at: fleet.now)) ?? []
                        acknowledgedAt[open.id] = fleet.now
                    }
                case 3:
                    fleet.advance(Int64((op / 6) % 90) * minute)
                    actions = fleet.tick()
                case 4: actions = fleet.complete("job-1")
                default: actions = fleet.epoch("job-1", 1, loss: 1)
                }
                for escalation in escalations(actions) {
                    let incident = escalation.incident
                    #expect(!resolved.contains(incident.id), "\(incident.id) paged after it was resolved")
                    let now = (level: incident.level, severity: IncidentBook.rank(incident.severity))
                    switch escalation.kind {
                    case .opened:
                        lastPage[incident.id] = now
                    case .escalated:
                        guard let before = lastPage[incident.id] else {
                            Issue.record("\(incident.id) escalated before it opened")
                            continue
                        }
                        let worse = now.level > before.level || now.severity > before.severity
                        let expired = acknowledgedAt[incident.id].map { fleet.now - $0 >= policy.escalation.ackTimeout.milliseconds } ?? false
                        #expect(worse || expired, "\(incident.id) paged without getting worse: \(escalation.reason)")
                        lastPage[incident.id] = now
                        acknowledgedAt[incident.id] = nil
                    case .resolved:
                        resolved.insert(incident.id)
                    case .updated, .acknowledged:
                        break
                    }
                }
            }
        }
    }
}
