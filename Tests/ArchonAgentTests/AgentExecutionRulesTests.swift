import ArchonAgent
import ArchonModel
import Foundation
import Testing

/// What the agent refuses to run whoever wrote the desired state, and the user it runs trainers as.
@Suite("Agent execution rules", .serialized)
struct AgentExecutionRulesTests {
    @Test func anAssignmentOutsideTheRulesIsNeverStartedAndIsReportedAsRefused() async throws {
        // A real program that would leave a mark if it ever ran.
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("archon-evil-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let evil = "\(directory)/evil", mark = "\(directory)/it-ran"
        try "#!/bin/sh\ntouch \(mark)\n".write(toFile: evil, atomically: true, encoding: .utf8)
        #expect(chmod(evil, 0o755) == 0)

        let h = try await AgentHarness()
        try await h.startAgent()
        try await h.assign(JobSpec(id: "evil", command: [evil]))
        try await h.assign(JobSpec(id: "preload", command: ["python3", faultTrainer], env: ["LD_PRELOAD": "\(directory)/evil.so"]))

        let evilEvents = try await h.events("evil") { $0.exit != nil }
        let refused = try #require(evilEvents.exit)
        #expect(refused.failureClass == .permissionDenied, "a refusal is a security concern, never retried elsewhere")
        #expect(refused.exitCode == 126)
        #expect(refused.detail.hasPrefix("agent refused to run the job: command: '\(evil)' is not an allowed entrypoint; allowed: python3"),
                "\(refused.detail)")
        #expect(!evilEvents.contains { if case .started = $0.body { true } else { false } })

        let preload = try #require(try await h.events("preload") { $0.exit != nil }.exit)
        #expect(preload.failureClass == .permissionDenied)
        #expect(preload.detail.contains("env.LD_PRELOAD: may not be set by a job"), "\(preload.detail)")
        #expect(!preload.detail.contains("evil.so"), "values are never echoed: they may be secrets")
        #expect(!FileManager.default.fileExists(atPath: mark), "the refused program never ran")
    }

    @Test func runAsNamesAndIdsResolveAndRootIsRefused() throws {
        #expect(throws: RunAsIdentity.ResolveError.self) { try RunAsIdentity.resolve(user: "root", group: nil) }
        #expect(throws: RunAsIdentity.ResolveError.self) { try RunAsIdentity.resolve(user: "0", group: nil) }
        #expect(throws: RunAsIdentity.ResolveError.self) { try RunAsIdentity.resolve(user: "no-such-user-archon", group: nil) }
        // A uid without a user-database entry (a container's) needs its group spelled out.
        #expect(throws: RunAsIdentity.ResolveError.self) { try RunAsIdentity.resolve(user: "54321", group: nil) }
        let bare = try RunAsIdentity.resolve(user: "54321", group: "54321")
        #expect(bare == RunAsIdentity(uid: 54321, gid: 54321, groups: [54321]))
        #expect(throws: RunAsIdentity.ResolveError.self) { try RunAsIdentity.resolve(user: "54321", group: "0") }
    }

    /// Needs root (to drop to another user) and the usual `nobody` account.
    @Test(.enabled(if: geteuid() == 0 && (try? RunAsIdentity.resolve(user: "nobody", group: nil)) != nil))
    func trainersRunAsTheConfiguredUnprivilegedUser() async throws {
        let nobody = try RunAsIdentity.resolve(user: "nobody", group: nil)
        #expect(try RunAsIdentity.resolve(user: "\(nobody.uid)", group: nil) == nobody, "a uid resolves like its name")
        let h = try await AgentHarness()
        try await h.startAgent(rules: ExecutionRules(entrypoints: ["/bin/sh"]), runAs: nobody)
        try await h.assign(JobSpec(id: "who", command: ["/bin/sh", "-c", "id -u; id -g; id -G; touch \"$ARCHON_CHECKPOINT_DIR/written\""]))
        let exit = try #require(try await h.events("who") { $0.exit != nil }.exit)
        #expect(exit.exitCode == 0, "\(exit.detail)")
        let output = try String(contentsOfFile: "\(h.workDirectory)/jobs/who/attempt-1/output.log", encoding: .utf8)
        let lines = output.split(separator: "\n").map(String.init)
        #expect(lines.prefix(3) == ["\(nobody.uid)", "\(nobody.gid)", nobody.groups.map(String.init).joined(separator: " ")], "\(output)")
        #expect(FileManager.default.fileExists(atPath: "\(h.workDirectory)/checkpoints/who/attempt-1/written"), "it may write its checkpoints")
    }
}
