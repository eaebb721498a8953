import ArchonController
import ArchonCore
import ArchonDev
import Foundation
import Testing

/// No token, token hash, NATS password, NKey seed or signing key ever reaches a log line, whatever the callers send. The real
/// `archon controller` binary runs at trace level, its whole output captured.
@Suite("Secrets never reach the logs", .serialized)
struct SecretLoggingTests {
    @Test func noTokenHashOrPasswordAppearsInTheControllersLog() async throws {
        let fleet = try await FleetHarness()
        var config = try fleet.childConfig(id: "c1")
        // A second server URL with a password in it (nothing listens there): the controller logs its server list.
        let natsPassword = "nats-pa55word-\(UUID().uuidString.prefix(8))"
        config.nats = "nats://archon:\(natsPassword)@127.0.0.1:\(try freeLoopbackPort()),\(fleet.server.url)"
        let controller = try ControllerProcess(config)
        defer { controller.kill() }
        try controller.start(logLevel: "trace")
        try await controller.waitForRole("leader")

        let wrongToken = "wrong-\(UUID().uuidString)"
        for token in [adminToken, readerToken, operatorToken] {
            let answer = try await HTTP(base: controller.api, token: token.token).call("GET", "/v1/training/jobs")
            #expect(answer.status == 200, "\(token.name): \(answer.text)")
        }
        let submitted = try await HTTP(base: controller.api, token: operatorToken.token)
            .call("POST", "/v1/training/jobs", body: faultSpec("logged-job", fault: "none"))
        #expect(submitted.status == 201, "\(submitted.text)")
        #expect(try await HTTP(base: controller.api, token: readerToken.token).call("POST", "/v1/training/jobs", body: faultSpec("x", fault: "none"))
            .status == 403)
        #expect(try await HTTP(base: controller.api, token: wrongToken).call("GET", "/v1/training/jobs").status == 401)
        #expect(try await HTTP(base: controller.api, token: adminToken.token + "x").call("GET", "/v1/nodes").status == 401)
        #expect(try await HTTP(base: controller.api, token: nil).call("GET", "/v1/incidents").status == 401)

        // The refusal reaches the submitter, with what is allowed.
        let preload = try await HTTP(base: controller.api, token: operatorToken.token).call("POST", "/v1/training/jobs", body: """
            {"id": "preload", "command": ["/tmp/evil"], "env": {"LD_PRELOAD": "/tmp/evil.so"}, "config": {"dataset": "digits"}}
            """)
        #expect(preload.status == 409, "well-formed, refused by the execution policy")
        let details = try #require(try JSONSerialization.jsonObject(with: preload.body) as? [String: Any])["details"] as? [String]
        #expect(details?.first?.hasPrefix("command: '/tmp/evil' is not an allowed entrypoint; allowed: python3") == true, "\(preload.text)")
        #expect(details?.last?.hasPrefix("env.LD_PRELOAD: may not be set by a job") == true, "\(preload.text)")

        await controller.crash()
        let log = try String(contentsOfFile: controller.logPath, encoding: .utf8)
        #expect(log.contains("controller.api.listening"), "the log was captured: \(log.prefix(500))")
        #expect(log.contains("trace") || log.contains("debug"), "the log was captured at its most verbose")
        var secrets = [wrongToken, natsPassword]
        for file in [fleet.credentials.controllerSeedFile, fleet.credentials.signingKeyFile] {
            secrets.append(try String(contentsOfFile: file, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines))
        }
        for token in [adminToken, readerToken, operatorToken] {
            secrets += [token.token, APIToken.hex(APIToken.sha256(of: token.token)), APIToken.hex(APIToken.sha256(of: token.token)).uppercased()]
        }
        for secret in secrets {
            #expect(!log.contains(secret), "the controller's log holds the secret '\(secret)'")
        }
    }
}
