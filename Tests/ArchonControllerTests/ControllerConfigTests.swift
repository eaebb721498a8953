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

    @Test func tokensAreKeptOnlyAsTheirHashes() throws {
        let digest = APIToken.hex(APIToken.sha256(of: "oncall-secret"))
        #expect(digest == "222efd97d56a62254079523a3ddbeb341880d3d8467f075b2b6f74aac1c140a0", "printf oncall-secret | sha256sum")
        let config = try Self.load(#"{"tokens": [{"name": "hashed", "tokenSHA256": "\#(digest.uppercased())", "scopes": ["training:read"]},"#
            + #" {"name": "plain", "token": "oncall-secret", "scopes": ["admin"]}]}"#)
        #expect(config.tokens.map(\.tokenSHA256) == [APIToken.sha256(of: "oncall-secret"), APIToken.sha256(of: "oncall-secret")])
        #expect(config.tokens[0].matches(digest: APIToken.sha256(of: "oncall-secret")))
        #expect(!config.tokens[0].matches(digest: APIToken.sha256(of: "oncall-secreT")))
        #expect(!config.tokens[0].matches(digest: []))

        // Written back, the config holds hashes, never the token; printed, a token shows its name and scopes.
        let written = String(decoding: try JSONEncoder().encode(config.tokens), as: UTF8.self)
        #expect(!written.contains("oncall-secret"))
        #expect(written.contains(digest))
        #expect("\(config.tokens[1])" == "plain (admin)")
    }

    @Test func aTokenNeedsExactlyOneWellFormedSecret() throws {
        for entry in [
            #"{"name": "both", "token": "t", "tokenSHA256": "\#(String(repeating: "0", count: 64))", "scopes": []}"#,
            #"{"name": "neither", "scopes": []}"#,
            #"{"name": "short", "tokenSHA256": "abcd", "scopes": []}"#,
            #"{"name": "nothex", "tokenSHA256": "\#(String(repeating: "z", count: 64))", "scopes": []}"#,
        ] {
            #expect(throws: ConfigError.self, "\(entry)") { try Self.load(#"{"tokens": [\#(entry)]}"#) }
        }
    }

    @Test func theSampleDeploymentConfigHoldsNoTokenAndListensOnLoopback() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let path = root.appendingPathComponent("deploy/controller/controller.json").path
        let config = try ControllerConfig.load(path)
        #expect(config.httpHost == "127.0.0.1")
        #expect(!config.tokens.isEmpty)
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(!text.contains(#""token""#), "deploy/controller/controller.json should use tokenSHA256")
        // It authenticates to NATS, over TLS, and signs what it assigns.
        #expect(config.natsNKeySeedFile?.hasSuffix("controller.nk") == true)
        #expect(config.natsTLS?.caFile != nil)
        #expect(config.assignmentSigningKeyFile?.hasSuffix("assignment-signing.key") == true)
    }
}
