import ArchonController
import ArchonModel
import Foundation
import Testing

/// Runs a program to its end; its exit status.
@discardableResult
private func runTool(_ path: String, _ arguments: [String]) -> Int32 {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    guard (try? process.run()) != nil else { return -1 }
    process.waitUntilExit()
    return process.terminationStatus
}

/// A tmpfs of `size` at a new temporary folder, or nil where mounting is not allowed (not root, no mount(8)).
private func smallTmpfs(size: String) -> String? {
    guard geteuid() == 0, FileManager.default.isExecutableFile(atPath: "/bin/mount") else { return nil }
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("archon-small-disk-\(UUID().uuidString)").path
    guard (try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)) != nil else { return nil }
    guard runTool("/bin/mount", ["-t", "tmpfs", "-o", "size=\(size)", "tmpfs", path]) == 0 else {
        try? FileManager.default.removeItem(atPath: path)
        return nil
    }
    return path
}

/// Lazily, so an agent still winding down cannot keep the mount (and the test machine's memory) alive.
private func unmount(_ path: String) {
    runTool("/bin/umount", ["-l", path])
    try? FileManager.default.removeItem(atPath: path)
}

private let canMountTmpfs: Bool = {
    guard let probe = smallTmpfs(size: "64k") else { return false }
    unmount(probe)
    return true
}()

/// With n1 the fleet's only node, submits `spec` (job `jobID`) and waits until its first attempt is on n1; then adds
/// n2 and waits until the job has completed. The job as it ended.
private func runOnN1ThenN2(_ jobID: String, spec: String, fleet: FleetHarness, api: HTTP) async throws -> JobView {
    let submitted = try await api.call("POST", "/v1/training/jobs", body: spec)
    #expect(submitted.status == 201, "\(submitted.text)")
    _ = try await waitFor("attempt 1 on n1") {
        try await api.call("GET", "/v1/training/jobs/\(jobID)").json(JobView.self).history.first { $0.node == "n1" }
    }
    // Only now a second node: the first placement had one choice.
    try await fleet.startAgent("n2")
    let job = try await waitFor("job \(jobID) completed", timeout: .seconds(60)) {
        let job = try await api.call("GET", "/v1/training/jobs/\(jobID)").json(JobView.self)
        return job.status == "completed" ? job : nil
    }
    #expect(job.history.map(\.node) == ["n1", "n2"])
    return job
}

/// Issue #10 part 5, end to end: a node whose disk fills is reported and its job moves, with real agents, a real
/// trainer and a real full disk.
@Suite("Node resource faults with real agents", .serialized)
struct NodeResourceFaultTests {
    @Test(.enabled(if: canMountTmpfs, "mounting a tmpfs needs root"))
    func aJobThatFillsItsNodesDiskMovesToAnotherNodeAndCompletesAndTheNodeIsReported() async throws {
        // n1's whole work directory is a 2 MiB disk; the job's 4 MiB checkpoint cannot fit on it.
        let smallDisk = try #require(smallTmpfs(size: "2m"))
        defer { unmount(smallDisk) }
        let fleet = try await FleetHarness()
        let controller = try await fleet.startController()
        try await fleet.startAgent("n1", workDirectory: smallDisk)
        let api = HTTP(base: controller.api, token: adminToken.token)
        _ = try await waitFor("node n1") { try await api.call("GET", "/v1/nodes").json([NodeView].self).first { $0.id == "n1" } }

        let spec = faultSpec("fills-disk", fault: "big_checkpoint", epochs: 2, hyper: ["checkpointMB": "4"])
        let job = try await runOnN1ThenN2("fills-disk", spec: spec, fleet: fleet, api: api)
        #expect(job.history[0].failureClass == "node_fault", "\(job.history[0])")
        #expect(job.history[0].outcome.contains("disk full on node n1: "), "\(job.history[0].outcome)")
        #expect(job.history[1].action.hasPrefix("re-place: node n1 is a bad node"), "\(job.history[1].action)")
        #expect(job.lastMetrics?.epoch == 2)
        // Not charged as a crash: no per-job incident, no rung used.
        #expect(job.incident.isEmpty, "\(job.incident)")

        let incidents = try await api.call("GET", "/v1/incidents").json([IncidentView].self)
        let node = try #require(incidents.first { $0.cause == "bad_node" }, "\(incidents.map(\.subject))")
        #expect(node.nodes == ["n1"] && node.jobs == ["fills-disk"])
        #expect(node.level == "L3")
        // The trainer's own failure (Python's OSError), not the agent's check before it started: there was room then.
        #expect(node.symptoms.contains { $0.hasPrefix("disk full on node n1: ") && $0.contains("[Errno 28] No space left on device") }, "\(node.symptoms)")
        #expect(incidents.allSatisfy { $0.cause != "job" }, "\(incidents.map(\.subject))")
        let n1 = try #require(try await api.call("GET", "/v1/nodes").json([NodeView].self).first { $0.id == "n1" })
        #expect(n1.cordoned, "nothing new is placed on a full disk")
        #expect(n1.cordonReason.hasPrefix("disk full: "), "\(n1.cordonReason)")
        await controller.stop()
    }

    @Test(.enabled(if: canMountTmpfs, "mounting a tmpfs needs root"))
    func onAnAlreadyFullDiskTheAgentEndsTheAttemptAtOnceAndStillReportsIt() async throws {
        let smallDisk = try #require(smallTmpfs(size: "2m"))
        defer { unmount(smallDisk) }
        let fleet = try await FleetHarness()
        let controller = try await fleet.startController()
        try await fleet.startAgent("n1", workDirectory: smallDisk)
        let api = HTTP(base: controller.api, token: adminToken.token)
        _ = try await waitFor("node n1") { try await api.call("GET", "/v1/nodes").json([NodeView].self).first { $0.id == "n1" } }
        // Fill n1's disk to the last byte: the agent's own files (state, sequences, event spool) cannot be written either.
        #expect(FileManager.default.createFile(atPath: "\(smallDisk)/filler", contents: nil))
        let filler = try #require(FileHandle(forWritingAtPath: "\(smallDisk)/filler"))
        var full = false
        while !full {
            do { try filler.write(contentsOf: Data(count: 64 << 10)) } catch { full = true }
        }
        try? filler.close()

        let job = try await runOnN1ThenN2("no-room", spec: faultSpec("no-room", fault: "none", epochs: 1), fleet: fleet, api: api)
        #expect(job.history[0].startedAt == 0, "no trainer ran on n1")
        #expect(job.history[0].outcome.contains("disk full on node n1: agent could not start the job: cannot write \(smallDisk)/checkpoints/no-room/attempt-1/.archon-write-check: No space left on device (ENOSPC)"),
                "\(job.history[0].outcome)")
        #expect(try await api.call("GET", "/v1/incidents").json([IncidentView].self).contains { $0.cause == "bad_node" && $0.nodes == ["n1"] })
        await controller.stop()
    }

    @Test(.enabled(if: canMountTmpfs, "mounting a tmpfs needs root"))
    func aReadOnlyCheckpointFolderEndsTheAttemptBeforeTheTrainerStarts() async throws {
        let fleet = try await FleetHarness()
        let controller = try await fleet.startController()
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("archon-fleet-n1-\(UUID().uuidString)").path
        // The node's checkpoint storage is a read-only mount: even root cannot write there.
        let checkpoints = "\(work)/checkpoints"
        try FileManager.default.createDirectory(atPath: checkpoints, withIntermediateDirectories: true)
        try #require(runTool("/bin/mount", ["-t", "tmpfs", "-o", "size=64k,ro", "tmpfs", checkpoints]) == 0)
        defer { unmount(checkpoints) }
        try await fleet.startAgent("n1", workDirectory: work)
        let api = HTTP(base: controller.api, token: adminToken.token)
        _ = try await waitFor("node n1") { try await api.call("GET", "/v1/nodes").json([NodeView].self).first { $0.id == "n1" } }

        let job = try await runOnN1ThenN2("read-only", spec: faultSpec("read-only", fault: "none", epochs: 1), fleet: fleet, api: api)
        #expect(job.history[0].failureClass == "node_fault")
        #expect(job.history[0].startedAt == 0, "no trainer ran on n1")
        #expect(job.history[0].outcome.contains("checkpoint directory not writable on node n1: agent could not start the job: cannot create \(checkpoints)/read-only: Read-only file system (EROFS)"),
                "\(job.history[0].outcome)")
        let incidents = try await api.call("GET", "/v1/incidents").json([IncidentView].self)
        #expect(incidents.contains { $0.cause == "bad_node" && $0.nodes == ["n1"] }, "\(incidents.map(\.subject))")
        await controller.stop()
    }
}
