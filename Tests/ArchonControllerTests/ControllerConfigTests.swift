import ArchonController
import ArchonCore
import Foundation
import Testing

@Suite("Controller config file")
struct ControllerConfigTests {
    static func load(_ json: String) throws -> ControllerConfig {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("controller-\(UUID().uuidString).json").path
        try json.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try ControllerConfig.load(path)
    }

    @Test func aDatasetNeedsOnlyItsIdAndLocation() throws {
        let config = try Self.load(#"{"datasets": [{"id": "digits", "location": "/data/digits"}, {"id": "old", "location": "", "status": "unavailable"}]}"#)
        #expect(config.datasets == [
            Dataset(id: "digits", location: "/data/digits", status: .ready, allowedTeams: []),
            Dataset(id: "old", location: "", status: .unavailable, allowedTeams: []),
        ])
    }

    @Test func aDatasetWithoutALocationIsRefusedNamingTheFile() throws {
        do {
            _ = try Self.load(#"{"datasets": [{"id": "digits"}]}"#)
            Issue.record("a dataset without a location was accepted")
        } catch let error as ConfigError {
            #expect(error.description.contains("controller-"), "\(error)")
            #expect(error.description.contains("location"), "\(error)")
        }
    }

    @Test func everythingButTheTokensHasADefault() throws {
        let config = try Self.load(#"{"tokens": [{"name": "ops", "token": "t", "scopes": ["admin"]}]}"#)
        #expect(config.tokens.map(\.name) == ["ops"])
        #expect(config.leaseSeconds == 10)
        #expect(config.ackWaitSeconds == 10)
        #expect(config.fetchBatch == 256)
        #expect(config.datasets.isEmpty)
    }
}
