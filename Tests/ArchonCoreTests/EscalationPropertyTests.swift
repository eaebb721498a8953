import ArchonModel
import PropertyBased
import Testing

@testable import ArchonCore

@Suite struct EscalationPropertyTests {
    /// Random incidents, clock jumps, acknowledgements, duplicate and stale timer firings, ticks and
    /// resolutions: no incident is ever escalated twice to the same level, and levels only go up.
    @Test func noIncidentIsEscalatedTwiceToTheSameLevel() async {
        let operations = Gen.int(in: 0...999).array(of: 1...60)
        await propertyCheck(count: 150, input: operations) { ops in
            let ladder = EscalationLadder()
            var book = IncidentBook()
            var deadlines = Deadlines()
            var now = t0
            var published: [Escalation] = []
            for op in ops {
                var out: [ControllerAction] = []
                let ids = book.all.map(\.id)
                let pick = ids.isEmpty ? "INC-1" : ids[(op / 10) % ids.count]
                switch op % 10 {
                case 0, 1:
                    let level = EscalationLevel.allCases[(op / 10) % 4]
                    let key = "k\((op / 40) % 5)"
                    book.raise(
                        IncidentDraft(dedupKey: key, cause: .job, level: level, severity: .high, subject: key, jobs: ["j\(op % 3)"], failureTimeMs: now),
                        reason: Reason(symptom: "s", evidence: "e\(op)", rule: "r"), at: now, ladder: ladder, deadlines: &deadlines, out: &out)
                case 2, 3, 4:
                    now += Int64((op / 10) % 300) * minute
                case 5:
                    // Acknowledgements that never expire here (expiry re-pages a level: IncidentDisciplineTests).
                    book.acknowledge(pick, by: "op", timeoutMs: 0, at: now, deadlines: &deadlines, out: &out)
                case 6:
                    // A timer for any level, due or not, possibly already handled.
                    book.climb(pick, from: EscalationLevel.allCases[(op / 10) % 4], at: now, ladder: ladder, deadlines: &deadlines, out: &out)
                case 7, 8:
                    for id in deadlines.dueIDs(now: now) where deadlines.take(id, now: now) {
                        if case .responseDue(let incident, let level) = id {
                            book.climb(incident, from: level, at: now, ladder: ladder, deadlines: &deadlines, out: &out)
                        }
                    }
                default:
                    if op % 50 == 9 { book.resolve(pick, by: "op", rootCause: "", at: now, deadlines: &deadlines, out: &out) }
                }
                published += escalations(out)
            }
            for id in book.all.map(\.id) {
                let levels = published.filter { $0.incident.id == id && ($0.kind == .escalated || $0.kind == .opened) }.map(\.incident.level)
                #expect(levels == levels.sorted() && Set(levels).count == levels.count, "\(id) paged at \(levels)")
                #expect(published.filter { $0.incident.id == id && $0.kind == .opened }.count <= 1)
            }
        }
    }

    @Test func climbingFollowsTheResponseTimesExactly() async {
        await propertyCheck(input: Gen.int(in: 0...3), Gen.int(in: 1...600)) { entry, lateBy in
            let ladder = EscalationLadder()
            var book = IncidentBook()
            var deadlines = Deadlines()
            var out: [ControllerAction] = []
            let level = EscalationLevel.allCases[entry]
            book.raise(IncidentDraft(dedupKey: "k", cause: .badNode, level: level, severity: .high, subject: "k", failureTimeMs: t0),
                       reason: Reason(symptom: "s", evidence: "e", rule: "r"), at: t0, ladder: ladder, deadlines: &deadlines, out: &out)
            var expected = t0
            var current = level
            while let next = current.next {
                expected += ladder.responseTime(current)
                // A timer firing late (by up to 10 min) does not stretch the schedule.
                let at = expected + Int64(lateBy) * second
                #expect(deadlines.due[.responseDue(incidentID: "INC-1", level: current)] == expected)
                _ = deadlines.take(.responseDue(incidentID: "INC-1", level: current), now: at)
                book.climb("INC-1", from: current, at: at, ladder: ladder, deadlines: &deadlines, out: &out)
                #expect(book["INC-1"]?.level == next)
                current = next
            }
            #expect(deadlines.due.isEmpty)
        }
    }
}
