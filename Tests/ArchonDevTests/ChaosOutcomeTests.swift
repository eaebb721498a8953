import ArchonDev
import Testing

/// How `archon chaos` compares a job's end with the fault-free run's (found by a 20-seed run, seed 10: a fence stopped
/// the hang job's trainer just as it hung; the attempt ended as a node fault and the next one, the fault being
/// once-only, completed — a faithful run that an exact comparison called a violation).
@Suite("Chaos outcomes against the fault-free run")
struct ChaosOutcomeTests {
    let hung = ChaosJobOutcome(status: "completed", failures: ["hang"], configChanges: [])
    let oom = ChaosJobOutcome(status: "completed", failures: ["out_of_memory"], configChanges: ["batchSize 32 -> 16"])

    @Test func theSameEndMatches() {
        #expect(hung.matches(hung))
        #expect(ChaosJobOutcome(status: "completed", failures: ["hang"], configChanges: [], nodeFaults: 2).matches(hung))
    }

    @Test func aFailureANodeFaultPreemptedMatchesWithTheChangeItWouldHaveMade() {
        #expect(ChaosJobOutcome(status: "completed", failures: [], configChanges: [], nodeFaults: 1).matches(hung))
        #expect(ChaosJobOutcome(status: "completed", failures: [], configChanges: [], nodeFaults: 1).matches(oom))
    }

    @Test func anythingElseDoesNot() {
        #expect(!ChaosJobOutcome(status: "completed", failures: [], configChanges: []).matches(hung), "no node fault to explain it")
        #expect(!ChaosJobOutcome(status: "failed", failures: [], configChanges: [], nodeFaults: 1).matches(hung), "another status")
        #expect(!ChaosJobOutcome(status: "completed", failures: ["hang", "hang"], configChanges: [], nodeFaults: 1).matches(hung), "a failure more")
        #expect(!ChaosJobOutcome(status: "completed", failures: ["crash"], configChanges: [], nodeFaults: 1).matches(hung), "another failure")
        #expect(!ChaosJobOutcome(status: "completed", failures: ["out_of_memory"], configChanges: ["batchSize 32 -> 8"]).matches(oom),
                "another change")
    }
}
