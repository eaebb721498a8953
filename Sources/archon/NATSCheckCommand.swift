import ArchonNATS
import ArgumentParser
import Foundation
import Logging

/// `archon nats-check`: proves a NATS server is usable by Archon — core pub/sub, JetStream, KV.
struct NATSCheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nats-check", abstract: "Connect to NATS and check publish/subscribe, request/reply, JetStream and KV.")

    @OptionGroup var connection: NATSClientOptions
    var nats: String { connection.nats }

    func run() async throws {
        var logger = Logger(label: "archon.nats-check")
        logger.logLevel = .warning
        let started = ContinuousClock.now
        let nc = try await NATSConnection.connect(try connection.options(name: "archon-nats-check"), logger: logger)
        print("connected to \(NATSOptions.redacted(servers: nats.split(separator: ",").map(String.init)))")

        let subject = "archon.v1.check.\(UUID().uuidString.prefix(8))"
        let sub = try nc.subscribe(subject)
        try await nc.flush()
        for i in 0..<100 { try nc.publish(subject, Array("\(i)".utf8)) }
        try await nc.flush()
        var received = 0
        for await batch in sub {
            received += batch.count
            if received >= 100 { break }
        }
        print("publish/subscribe: 100 sent, \(received) received, \(sub.dropped) dropped")

        let js = try nc.jetStream()
        try await js.createOrUpdateStream(StreamConfig(name: "ARCHON_CHECK", subjects: ["archon.v1.check-js.>"], storage: .memory))
        let ack = try await js.publish("archon.v1.check-js.x", [1], messageID: "check-1")
        let again = try await js.publish("archon.v1.check-js.x", [1], messageID: "check-1")
        print("JetStream: stored at sequence \(ack.sequence) in \(ack.stream); republish de-duplicated: \(again.duplicate)")

        let kv = try await js.keyValue(KeyValueConfig(bucket: "archon_check", storage: .memory))
        let revision = try await kv.put("probe", Array("ok".utf8))
        let value = try await kv.get("probe").map { String(decoding: $0.value, as: UTF8.self) } ?? "?"
        print("KV: put revision \(revision), read back '\(value)'")
        print("all checks passed in \(ContinuousClock.now - started)")
        nc.close()
    }
}
