import ArchonNATS
import Testing

/// Credentials in a NATS URL never reach a log line or an error message.
@Suite struct URLRedactionTests {
    @Test(arguments: [
        ("nats://archon:s3cret@nats-1:4222", "nats://archon:***@nats-1:4222"),
        ("nats://s3cret-token@nats-1:4222", "nats://***@nats-1:4222"),
        ("tls://u:p@ss@nats-1:4222/x@y", "tls://u:***@nats-1:4222/x@y"),
        ("nats://nats-1:4222", "nats://nats-1:4222"),
        ("nats-1:4222", "nats-1:4222"),
    ])
    func passwordsAndTokensAreStarredOut(url: String, shown: String) {
        #expect(NATSOptions.redacted(url) == shown)
    }

    @Test func everyServerOfAClusterIsRedacted() {
        #expect(NATSOptions.redacted(servers: ["nats://a:pw@n1:4222", "nats://n2:4222"]) == "nats://a:***@n1:4222,nats://n2:4222")
    }
}
