@testable import ArchonAgent
import ArchonModel
import Foundation
import Logging
import Synchronization
import Testing

/// The agent's spool on real files (no NATS: a recording publisher): numbering, group commit, order, restarts,
/// torn writes, spool files of older agents.
@Suite("Agent event outbox: spool, sequence numbers, recovery")
struct EventOutboxTests {
    static var logger: Logger {
        var logger = Logger(label: "test.outbox")
        logger.logLevel = .critical
        return logger
    }

    static func folder() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("archon-outbox-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Publishes into a list until `count` are there.
    final class Recorder: Sendable {
        let sent = Mutex<[String]>([])
        var ids: [String] { sent.withLock { $0 } }

        func drain(_ outbox: EventOutbox, until count: Int) async throws {
            let task = Task { await outbox.run { _, _, id in self.sent.withLock { $0.append(id) } } }
            defer { task.cancel() }
            let deadline = ContinuousClock.now + .seconds(20)
            while ids.count < count, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
            try await Task.sleep(for: .milliseconds(50))  // the publisher's acknowledgements settle
        }
    }

    static func step(_ outbox: EventOutbox, job: String, attempt: Int = 1, dir: String) -> UInt64 {
        outbox.append(jobID: job, attempt: attempt, nodeID: "n1", timeMs: 1, body: .step(StepProgress(step: 1)))
    }

    /// An outbox in `dir`, keeping sequence numbers in `dir/<job>.<attempt>.sequence` and `dir/node-sequence`.
    static func outbox(_ dir: String, segmentBytes: UInt64 = 8 << 20) throws -> EventOutbox {
        try EventOutbox(directory: "\(dir)/outbox", sequenceFile: { job, attempt in
            job.isEmpty ? "\(dir)/node-sequence" : "\(dir)/\(job).\(attempt).sequence"
        }, logger: logger, segmentBytes: segmentBytes)
    }

    @Test func eventsAreNumberedPerAttemptCommittedInGroupsAndSentInOrder() async throws {
        let dir = try Self.folder()
        let outbox = try Self.outbox(dir)
                for i in 0..<300 { _ = Self.step(outbox, job: i % 3 == 0 ? "a" : "b", dir: dir) }
        _ = outbox.append(jobID: "", attempt: 0, nodeID: "n1", timeMs: 1, body: .heartbeat(Heartbeat()))
        let recorder = Recorder()
        try await recorder.drain(outbox, until: 301)
        let ids = recorder.ids
        #expect(ids.count == 301)
        #expect(ids.filter { $0.hasPrefix("a.1.") } == (1...100).map { "a.1.\($0)" })
        #expect(ids.filter { $0.hasPrefix("b.1.") } == (1...200).map { "b.1.\($0)" })
        #expect(ids.last == "n1._node.1")
        #expect(outbox.commitCount < 30, "300 events appended at once are committed together, not one by one")
        #expect(outbox.pendingCount == 0)
    }

    @Test func aRestartedAgentSendsWhatWasSpooledAndNeverReusesANumber() async throws {
        let dir = try Self.folder()
        var outbox: EventOutbox? = try Self.outbox(dir)
        for _ in 0..<50 { _ = Self.step(outbox!, job: "j", dir: dir) }
        // Committed (the publisher sees them) but never sent: the agent dies here.
        let deadline = ContinuousClock.now + .seconds(5)
        while EventOutboxTests.committedFiles(dir).isEmpty, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        try await Task.sleep(for: .milliseconds(100))
        outbox = nil

        let again = try Self.outbox(dir)
        #expect(again.pendingCount == 50)
        #expect(Self.step(again, job: "j", dir: dir) == 51, "the next number follows the spool's highest")
        let recorder = Recorder()
        try await recorder.drain(again, until: 51)
        #expect(recorder.ids == (1...51).map { "j.1.\($0)" })
    }

    @Test func numbersOutliveTheSpoolFilesThatHeldThem() async throws {
        let dir = try Self.folder()
        var outbox: EventOutbox? = try Self.outbox(dir, segmentBytes: 256)
        for _ in 0..<40 { _ = Self.step(outbox!, job: "j", dir: dir) }
        let recorder = Recorder()
        try await recorder.drain(outbox!, until: 40)
        _ = Self.step(outbox!, job: "other", dir: dir)  // a commit that starts a new file, so the full ones are collected
        try await recorder.drain(outbox!, until: 41)
        #expect(recorder.ids.count == 41)
        // The files that held j's events are gone, and j's sequence file says where to go on.
        let left = Self.committedFiles(dir)
        #expect(left.count <= 1, "\(left)")
        let stored = try String(contentsOfFile: "\(dir)/j.1.sequence", encoding: .utf8)
        #expect(UInt64(stored) ?? 0 >= 41 - 1, "stored \(stored)")
        outbox = nil
        let again = try Self.outbox(dir)
        #expect(Self.step(again, job: "j", dir: dir) == 41)
    }

    /// An attempt known only from the spool a previous agent left (its events sent, its files deleted, no event of it
    /// since): a third agent still continues its numbering, from the sequence file the deletion brought up to date.
    @Test func numbersOfAnAttemptKnownOnlyFromTheSpoolSurviveItsDeletion() async throws {
        let dir = try Self.folder()
        var outbox: EventOutbox? = try Self.outbox(dir, segmentBytes: 256)
        for _ in 0..<5 { _ = Self.step(outbox!, job: "j", dir: dir) }
        let deadline = ContinuousClock.now + .seconds(5)
        while Self.committedFiles(dir).isEmpty, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        try await Task.sleep(for: .milliseconds(100))
        outbox = nil  // dies with j's events unsent

        outbox = try Self.outbox(dir, segmentBytes: 256)
        let recorder = Recorder()
        try await recorder.drain(outbox!, until: 5)
        for _ in 0..<10 { _ = Self.step(outbox!, job: "other", dir: dir) }  // new files; j's are collected
        try await recorder.drain(outbox!, until: 15)
        #expect(!Self.committedFiles(dir).contains { name in
            (try? Data(contentsOf: URL(fileURLWithPath: "\(dir)/outbox/\(name)")))?.range(of: Data("j.1.".utf8)) != nil
        }, "the files that held j's events are gone")
        outbox = nil

        let third = try Self.outbox(dir)
        #expect(Self.step(third, job: "j", dir: dir) == 6)
    }

    @Test func aTornFrameAtTheEndIsIgnoredAndWhatPrecedesItIsKept() async throws {
        let dir = try Self.folder()
        var outbox: EventOutbox? = try Self.outbox(dir)
        for _ in 0..<5 { _ = Self.step(outbox!, job: "j", dir: dir) }
        let deadline = ContinuousClock.now + .seconds(5)
        while Self.committedFiles(dir).isEmpty, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        try await Task.sleep(for: .milliseconds(100))
        outbox = nil
        let file = "\(dir)/outbox/\(try #require(Self.committedFiles(dir).first))"
        let handle = try #require(FileHandle(forWritingAtPath: file))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data([200, 0, 0, 0, 1, 2, 3, 4, 9, 9]))  // a frame claiming 200 bytes, cut short
        try handle.close()
        let again = try Self.outbox(dir)
        #expect(again.pendingCount == 5)
        let recorder = Recorder()
        try await recorder.drain(again, until: 5)
        #expect(recorder.ids == (1...5).map { "j.1.\($0)" })
    }

    @Test func theOneFilePerEventSpoolOfOlderAgentsIsSentFirst() async throws {
        let dir = try Self.folder()
        try FileManager.default.createDirectory(atPath: "\(dir)/outbox", withIntermediateDirectories: true)
        for s in 1...3 {
            let event = TrainingEvent(jobID: "old", nodeID: "n1", attempt: 2, sequence: UInt64(s), timeMs: 1, body: .step(StepProgress(step: s)))
            try Data(event.encoded()).write(to: URL(fileURLWithPath: "\(dir)/outbox/" + String(format: "%020llu.pb", s)))
        }
        let outbox = try Self.outbox(dir)
        #expect(outbox.pendingCount == 3)
        #expect(Self.step(outbox, job: "old", attempt: 2, dir: dir) == 4)
        let recorder = Recorder()
        try await recorder.drain(outbox, until: 4)
        #expect(recorder.ids == ["old.2.1", "old.2.2", "old.2.3", "old.2.4"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: "\(dir)/outbox").filter { $0.hasSuffix(".pb") }.isEmpty)
    }

    static func committedFiles(_ dir: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "\(dir)/outbox")) ?? []).filter { name in
            name.hasSuffix(".log") && ((try? FileManager.default.attributesOfItem(atPath: "\(dir)/outbox/\(name)")[.size] as? Int) ?? 0) > 0
        }.sorted()
    }
}
