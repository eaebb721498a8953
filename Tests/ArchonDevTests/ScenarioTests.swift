import ArchonDev
import Foundation
import Testing

let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

/// Each scenario of the runbook on a fresh dev fleet: real nats-server, controller, agents and trainers,
/// asserted through the HTTP API (the runner's observations), bounded by each scenario's timeout.
@Suite("The runbook's scenarios on a dev fleet", .serialized)
struct ScenarioTests {
    static let catalog = ScenarioCatalog.all(trainers: "\(repositoryRoot)/examples/trainers")

    @Test(arguments: catalog.map(\.number))
    func scenario(_ number: Int) async throws {
        let scenario = try #require(Self.catalog.first { $0.number == number })
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("archon-scenario-\(number)-\(UUID().uuidString.prefix(6))").path
        let fleet = DevFleet(options: DevOptions(
            dataDirectory: data, nodes: 3, policyFile: "\(repositoryRoot)/deploy/dev/policy.yaml",
            brokenNodes: [ScenarioCatalog.brokenNode: ScenarioCatalog.brokenNodeMemory]))
        try await fleet.start()
        _ = try await fleet.client.call("POST", "/v1/nodes/\(ScenarioCatalog.brokenNode)/cordon")
        let runner = ScenarioRunner(fleet: fleet, directory: data, narrate: true)
        let result = await runner.run(scenario)
        await fleet.stop()
        #expect(result.problems.isEmpty, "scenario \(number) (\(scenario.title)): \(result.problems.joined(separator: "; "))")
        #expect(result.failures > 0, "every scenario stages at least one real failure")
    }
}
