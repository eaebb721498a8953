import ArchonModel
import Testing

@testable import ArchonCore

@Suite struct RedeliveryTests {
    @Test func redeliveredEventsChangeNothing() {
        var fleet = Fleet()
        _ = fleet.submit(spec("job-1"))
        _ = fleet.start("job-1")
        _ = fleet.epoch("job-1", 1, loss: 1.0)
        _ = fleet.exit("job-1", oom: true)
        let before = fleet.controller.state
        for event in fleet.sent {
            #expect(fleet.redeliver(event).isEmpty)
        }
        #expect(fleet.controller.state == before)
    }

    @Test func eventsOfAnOldAttemptDoNotRemediateTheCurrentOne() {
        var fleet = Fleet(policy: .noBackoff)
        _ = fleet.submit(spec("job-1"))
        _ = fleet.start("job-1")
        _ = fleet.epoch("job-1", 1, loss: .nan)  // attempt 1 stopped, attempt 2 assigned
        #expect(fleet.job("job-1").attempt == 2)
        _ = fleet.start("job-1")
        let before = fleet.job("job-1")
        // Attempt 1's process reports its death late, and a NaN from before it was killed.
        var actions = fleet.send("job-1", .epoch(EpochMetrics(epoch: 2, loss: .nan)), attempt: 1)
        actions += fleet.send("job-1", .exited(JobExited(exitCode: -1, signal: 15, stopRequested: true)), attempt: 1)
        #expect(actions.isEmpty)
        let after = fleet.job("job-1")
        #expect(after.status == .running && after.attempt == 2 && after.restarts == before.restarts)
        #expect(after.history[0].lastExit?.stopRequested == true)
    }

    @Test func aResubmittedIdenticalSpecIsANoOpAndADifferentOneIsRejected() {
        var fleet = Fleet()
        _ = fleet.submit(spec("job-1"))
        #expect(fleet.submit(spec("job-1")).isEmpty)
        #expect(lines(fleet.submit(spec("job-1", batch: 8))) == ["reject job-1: id: job 'job-1' already exists (queued); choose another id"])
    }

    @Test func theStateSurvivesARestartMidLadder() throws {
        var fleet = Fleet()
        _ = fleet.submit(spec("job-1"))
        _ = fleet.start("job-1")
        _ = fleet.exit("job-1", oom: true)  // restart due in 10 s
        let saved = try JSONEncoder().encode(fleet.controller.state)
        let restored = try JSONDecoder().decode(FleetState.self, from: saved)
        #expect(restored == fleet.controller.state)

        var replacement = FleetController(policy: fleet.controller.policy, state: restored)
        var resumed = replacement.leadershipAcquired(fencingEpoch: 7, at: fleet.now + 10 * second)
        #expect(lines(resumed).contains("timer restart-due/job-1 @10s"))
        #expect(assignments(resumed).isEmpty)  // nothing is judged before the backlog is read
        resumed += replacement.fleetHeardAgain(at: fleet.now + 10 * second)
        let assignment = try #require(assignments(resumed).first)
        #expect(assignment.attempt == 2 && assignment.fencingEpoch == 7 && assignment.spec.config.batchSize == 32)
    }
}

import Foundation
