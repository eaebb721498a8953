import ArchonModel
import PropertyBased
import Testing

@testable import ArchonCore

/// When a page goes out (issue #11 parts 5 and 9): a job's page waits `escalation.groupWait` for the fleet incident
/// that may explain it, and silences hold pages without losing the incident.
@Suite struct PagingDisciplineTests {
    static let wait = 30 * second

    /// job-1 on n1, job-2 on n2, both running on their own datasets.
    func twoJobs(groupWait: PolicyDuration = .seconds(30)) -> Fleet {
        var fleet = Fleet(policy: .noBackoff, groupWait: groupWait)
        _ = fleet.submit(spec("job-1", dataset: "ds-1"))
        _ = fleet.submit(spec("job-2", dataset: "ds-2"))
        _ = fleet.start("job-1")
        _ = fleet.start("job-2")
        return fleet
    }

    func pages(_ actions: [ControllerAction]) -> [String] {
        escalations(actions).filter { $0.kind == .opened || $0.kind == .escalated }.map { "\($0.kind) \($0.incident.id) \($0.incident.level.rawValue)" }
    }

    // MARK: Group before paging

    @Test func aJobsPageWaitsForTheFleetIncidentThatExplainsItAndThenPagesNobody() {
        // Before: job-1's own L2 page went out, and a moment later the security incident that explains it: the
        // on-call was paged twice for one cause.
        var fleet = twoJobs()
        let first = fleet.exit("job-1", failure: .permissionDenied)
        #expect(escalations(first).isEmpty, "held: \(lines(first))")
        #expect(lines(first).contains("timer page-held/INC-1 @30s"))
        #expect(fleet.incident("INC-1").heldPage?.by == "grouping")
        fleet.advance(10 * second)
        let second = fleet.exit("job-2", failure: .permissionDenied)
        #expect(pages(second) == ["opened INC-2 L2"])
        #expect(fleet.incident("INC-2").subject.contains("security"))
        #expect(escalations(second).allSatisfy { $0.incident.id == "INC-2" }, "the sinks never hear of job-1's own incident")
        #expect(fleet.incident("INC-1").parentID == "INC-2" && fleet.incident("INC-1").heldPage == nil)
        #expect(lines(second).contains("cancel page-held/INC-1"))
        fleet.advance(Self.wait)
        #expect(escalations(fleet.tick()).isEmpty)
    }

    @Test func aJobsPageNothingExplainsGoesOutAtTheEndOfTheWaitAndClimbsFromThen() {
        var fleet = twoJobs()
        _ = fleet.exit("job-1", failure: .permissionDenied)
        fleet.advance(Self.wait)
        let released = fleet.fire(.pageHeld(incidentID: "INC-1"))
        #expect(pages(released) == ["opened INC-1 L2"])
        #expect(lines(released).contains("timer response-due/INC-1/L2 @1h30s"), "the response time counts from the page")
        #expect(fleet.incident("INC-1").timeline.map(\.text).contains("held page sent to L2 (Senior ML Engineer) (no fleet incident explains it)"))
    }

    @Test func aJobThatRecoversWithinTheWaitPagesNobodyAtAll() {
        var fleet = Fleet(nodes: ["n1"], groupWait: .seconds(30))
        _ = fleet.submit(spec("big-1", memory: 48 * gib))
        _ = fleet.start("big-1")
        _ = fleet.submit(spec("big-2", memory: 48 * gib))
        fleet.at(10 * minute)
        #expect(escalations(fleet.fire(.startDeadline(jobID: "big-2"))).isEmpty)
        fleet.advance(10 * second)
        _ = fleet.complete("big-1")
        let started = fleet.start("big-2")
        #expect(fleet.incident("INC-1").status == .resolved)
        #expect(escalations(started).isEmpty, "never paged, so no resolution is published either")
        #expect(lines(started).contains("cancel page-held/INC-1"))
    }

    @Test func aWorsePageDuringTheWaitIsStillOnePageAtTheEndOfTheFirstWait() {
        var policy = Policy.noBackoff
        policy.remediation.ladders.divergingLoss.steps = [.dataQualityCheck(escalateTo: .l1), .dataQualityCheck(escalateTo: .l2), .restart]
        var fleet = Fleet(policy: policy, groupWait: .seconds(30))
        _ = fleet.submit(spec("job-1"))
        _ = fleet.start("job-1")
        #expect(pages(fleet.exit("job-1", failure: .divergingLoss)).isEmpty)  // L1, held until 0:30
        fleet.advance(20 * second)
        _ = fleet.start("job-1")
        #expect(pages(fleet.exit("job-1", failure: .divergingLoss)).isEmpty)  // L2 now, still held until 0:30
        #expect(fleet.incident("INC-1").level == .l2)
        #expect(fleet.incident("INC-1").heldPage.map { ($0.kind, $0.untilMs) } ?? (.updated, 0) == (.opened, t0 + Self.wait))
        fleet.advance(10 * second)
        #expect(pages(fleet.tick()) == ["opened INC-1 L2"], "one page, at the level reached, at the end of the first wait")
    }

    /// Property: a storm of one, two or three fleet causes (a permission storm, a dataset gone, a node crashing
    /// jobs) whose failures arrive in any order within the grouping wait pages exactly once per cause: never a job's
    /// own page. The multi-agent rule is off here: failures on three nodes within five minutes that no rule explains
    /// yet are, by its definition, a cause of their own.
    @Test func aStormPagesOncePerCause() async {
        await propertyCheck(count: 60, input: Gen.int(in: 1...7).array(of: 8...8)) { input in
            var policy = Policy.noBackoff
            policy.remediation.ladders.crash.steps = []
            policy.correlation.badNode.requireHealthyElsewhere = false
            policy.correlation.multiAgent.enabled = false
            var fleet = Fleet(policy: policy, nodes: ["n3"], groupWait: .seconds(30))
            for id in ["c1", "c2", "c3"] {
                _ = fleet.submit(spec(id))
                _ = fleet.start(id)
            }
            fleet.addNode("n1")
            fleet.addNode("n2")
            for (id, dataset) in [("p1", "ds-1"), ("p2", "ds-1"), ("d1", "ds-2"), ("d2", "ds-2")] {
                _ = fleet.submit(spec(id, dataset: dataset))
                _ = fleet.start(id)
            }
            let causes: [(jobs: [String], failure: FailureClass)] = [
                (["p1", "p2"], .permissionDenied), (["d1", "d2"], .datasetNotFound), (["c1", "c2", "c3"], .crash),
            ]
            let mask = input[0]
            var failures = causes.indices.filter { mask & (1 << $0) != 0 }.flatMap { i in causes[i].jobs.map { ($0, causes[i].failure) } }
            // A seeded order and gaps of 0-4 s: at most 7 failures within 24 s, inside the 30 s wait.
            failures = failures.enumerated().sorted { (input[1 + $0.offset % 7], $0.offset) < (input[1 + $1.offset % 7], $1.offset) }.map(\.element)
            var all: [ControllerAction] = []
            for (i, (job, failure)) in failures.enumerated() {
                fleet.advance(Int64(input[1 + i % 7] % 5) * second)
                all += failure == .crash ? fleet.exit(job, code: 1) : fleet.exit(job, failure: failure)
            }
            fleet.advance(minute)
            all += fleet.tick()
            let paged = escalations(all).filter { $0.kind == .opened || $0.kind == .escalated }
            #expect(paged.count == mask.nonzeroBitCount, "\(failures.map(\.0)): \(paged.map { "\($0.kind) \($0.incident.subject)" })")
            #expect(paged.allSatisfy { $0.incident.cause != .job })
        }
    }

    // MARK: Silences

    func silence(_ id: String = "SIL-1", node: String = "", job: String = "", cause: IncidentCause? = nil, from: Int64 = t0, for ms: Int64 = 2 * hour,
                 reason: String = "GPU swap") -> Silence {
        Silence(id: id, node: node, job: job, cause: cause, startsAtMs: from, endsAtMs: from + ms, reason: reason, createdBy: "sam", createdAtMs: from)
    }

    /// Three jobs crash on n1 (the crash ladder escalates at once): the bad-node rule fires.
    func badN1(_ fleet: inout Fleet) -> [ControllerAction] {
        var all: [ControllerAction] = []
        for id in ["job-a", "job-b", "job-c"] { all += fleet.exit(id, code: 1) }
        return all
    }

    func fleetOnN1() -> Fleet {
        var policy = Policy.noBackoff
        policy.remediation.ladders.crash.steps = []
        policy.correlation.badNode.requireHealthyElsewhere = false
        var fleet = Fleet(policy: policy, nodes: ["n1"])
        for id in ["job-a", "job-b", "job-c"] {
            _ = fleet.submit(spec(id))
            _ = fleet.start(id)
        }
        fleet.addNode("n2")
        return fleet
    }

    @Test func aSilencedNodeIsStillCordonedButPagesNobodyUntilTheSilenceEnds() throws {
        var fleet = fleetOnN1()
        _ = try fleet.controller.silenceAdded(silence(node: "n1"), at: fleet.now)
        fleet.advance(20 * minute)
        let storm = badN1(&fleet)
        #expect(pages(storm).isEmpty, "\(decisions(storm))")
        #expect(decisions(storm).contains("cordon n1"), "remediation is not silenced")
        let node = try #require(fleet.controller.state.incidents.open(forKey: "bad_node:n1"))
        #expect(node.heldPage?.by == "SIL-1" && node.heldPage?.untilMs == t0 + 2 * hour)
        #expect(node.timeline.contains { $0.text.contains("silenced by SIL-1: GPU swap") })
        // Its response time would have passed (L3: 2 h from 0:20); nothing climbs while silenced.
        fleet.advance(100 * minute - second)
        #expect(pages(fleet.tick()).isEmpty)
        fleet.advance(second)
        let ended = fleet.tick()
        #expect(pages(ended) == ["opened \(node.id) L3"], "still open when the silence ends: paged then")
    }

    @Test func expiringASilenceEarlySendsWhatItHeldButNotWhatWasAcknowledged() throws {
        var fleet = fleetOnN1()
        _ = try fleet.controller.silenceAdded(silence(cause: .job), at: fleet.now)
        _ = fleet.exit("job-a", code: 1)
        _ = fleet.exit("job-b", code: 1)
        _ = try fleet.controller.incidentAcknowledged("INC-2", by: "sam", at: fleet.now)
        fleet.advance(minute)
        let expired = try fleet.controller.silenceExpired("SIL-1", at: fleet.now)
        #expect(pages(expired) == ["opened INC-1 L1"])
        #expect(fleet.controller.silences(at: fleet.now).isEmpty)
        #expect(throws: OperatorError.self) { try fleet.controller.silenceExpired("SIL-1", at: fleet.now) }
    }

    @Test func aSilenceMatchesOnlyWhatAllItsMatchersName() throws {
        var fleet = fleetOnN1()
        _ = try fleet.controller.silenceAdded(silence(node: "n1", cause: .badNode), at: fleet.now)
        #expect(pages(fleet.exit("job-a", code: 1)) == ["opened INC-1 L1"], "a job incident is not cause bad_node")
        let scheduled = silence("SIL-2", job: "job-b", from: fleet.now + hour)
        _ = try fleet.controller.silenceAdded(scheduled, at: fleet.now)
        #expect(pages(fleet.exit("job-b", code: 1)) == ["opened INC-2 L1"], "a silence starting in an hour holds nothing now")
    }

    @Test func aSilenceNeedsAMatcherAReasonAndAnEnd() throws {
        var fleet = fleetOnN1()
        let bad: [Silence] = [
            silence(), silence(node: "n1", reason: ""), silence(node: "n1", for: 0), silence(node: "n1", from: t0 - 3 * hour),
            silence(node: "n1", for: 31 * 24 * hour), silence("", node: "n1"),
        ]
        for s in bad {
            #expect(throws: OperatorError.self, "\(s)") { try fleet.controller.silenceAdded(s, at: fleet.now) }
        }
        _ = try fleet.controller.silenceAdded(silence(node: "n1"), at: fleet.now)
        #expect(throws: OperatorError.self, "duplicate id") { try fleet.controller.silenceAdded(silence(node: "n2"), at: fleet.now) }
        #expect(fleet.controller.silences(at: fleet.now).map(\.id) == ["SIL-1"])
        // Stored with the fleet record, restored with it.
        let restored = FleetState(entities: [fleet.controller.state.stored(.fleet)!], keepObservationsSince: 0)
        #expect(restored.silences == fleet.controller.state.silences)
    }
}
