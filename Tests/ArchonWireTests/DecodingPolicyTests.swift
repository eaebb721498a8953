import ArchonModel
import ArchonWire
import Foundation
import Testing

/// The documented decoding rules (see `WireMessage`), on hand-built wire bytes.
@Suite struct DecodingPolicyTests {
    // MARK: Bodies and required sub-messages

    @Test func eventWithoutBodyIsRejected() {
        let bytes = WireBytes {
            $0.string(1, "resnet-7")
            $0.string(2, "gpu-node-3")
            $0.varint(3, 2)
            $0.varint(4, 17)
        }.bytes
        let error = #expect(throws: WireError.self) { try TrainingEvent.decode(bytes) }
        #expect(error?.code == .missingBody)
        for part in ["archon.v1.TrainingEvent", "'gpu-node-3'", "'resnet-7'", "sequence 17", "newer schema"] {
            #expect(error?.message.contains(part) == true, "\(String(describing: error))")
        }
        #expect(throws: WireError.self) { try TrainingEvent.decode([]) }
    }

    @Test func eventWithAnUnknownBodyArmIsRejected() {
        let bytes = WireBytes {
            $0.string(2, "n")
            $0.message(99) { $0.varint(1, 1) }
        }.bytes
        let error = #expect(throws: WireError.self) { try TrainingEvent.decode(bytes) }
        #expect(error?.code == .missingBody)
    }

    /// Protobuf: of several oneof arms on the wire, the last one wins.
    @Test func lastBodyArmWins() throws {
        let bytes = WireBytes {
            $0.string(2, "n")
            $0.message(10) { $0.varint(1, 5) }
            $0.message(17) { $0.varint(1, 3) }
        }.bytes
        #expect(try TrainingEvent.decode(bytes).body == .heartbeat(Heartbeat(runningJobs: 3)))
    }

    @Test func assignmentWithoutSpecIsRejected() {
        let bytes = WireBytes {
            $0.varint(2, 3)
            $0.varint(4, 1)
            $0.string(5, "gpu-node-3")
        }.bytes
        let error = #expect(throws: WireError.self) { try JobAssignment.decode(bytes) }
        #expect(error?.code == .missingField)
        #expect(error?.message.contains("archon.v1.JobAssignment") == true)
        #expect(error?.message.contains("'gpu-node-3'") == true)
    }

    @Test func escalationWithoutIncidentIsRejected() {
        let error = #expect(throws: WireError.self) { try Escalation.decode(WireBytes { $0.varint(1, 1) }.bytes) }
        #expect(error?.code == .missingField)
        #expect(error?.message.contains("incident") == true)
    }

    // MARK: Absent sub-messages and empty input

    @Test func absentSubMessagesAreModelDefaults() throws {
        #expect(try JobSpec.decode(WireBytes { $0.string(1, "j") }.bytes) == JobSpec(id: "j", config: TrainingConfig()))
        // A present config with only a batch size: scalars are zero, absent sub-messages are defaults.
        let config = try TrainingConfig.decode(WireBytes { $0.varint(1, 8) }.bytes)
        #expect(config == TrainingConfig(
            batchSize: 8, gradientAccumulationSteps: 0, learningRate: 0, epochs: 0,
            checkpoint: CheckpointPolicy(everyEpochs: 1, everySteps: 0, keepLast: 3)
        ))
        let epoch = try TrainingEvent.decode(WireBytes { $0.message(12) { $0.varint(1, 3) } }.bytes)
        #expect(epoch.body == .epoch(EpochMetrics(epoch: 3, loss: 0, validation: nil)))
        let status = try NodeStatus.decode(WireBytes { $0.string(1, "n") }.bytes)
        #expect(status == NodeStatus(nodeID: "n"))
    }

    @Test func emptyInputIsTheEmptyMessage() throws {
        #expect(try LogRequest.decode([]) == LogRequest(jobID: "", tail: 0))
        #expect(try LogReply.decode([]) == LogReply())
        #expect(try NodeStatus.decode([]) == NodeStatus(nodeID: ""))
        #expect(try JobSpec.decode([]) == JobSpec(id: ""))
        #expect(throws: WireError.self) { try Incident.decode([]) }  // cause, level, severity unset
    }

    // MARK: Enums

    @Test func unknownFailureClassIsNone() throws {
        for raw: UInt64 in [0, 42, UInt64(UInt32.max), .max] {
            let bytes = WireBytes { $0.message(16) { $0.varint(1, 1); $0.varint(4, raw) } }.bytes
            #expect(try TrainingEvent.decode(bytes).body == .exited(JobExited(exitCode: 1, failureClass: .none)), "raw \(raw)")
        }
    }

    @Test func unknownEnforcementIsUnspecified() throws {
        let bytes = WireBytes { $0.message(11) { $0.varint(1, 7); $0.varint(4, 99) } }.bytes
        #expect(try TrainingEvent.decode(bytes).body == .started(JobStarted(pid: 7, memoryEnforcement: .unspecified)))
    }

    @Test func unspecifiedOrUnknownScheduleIsConstant() throws {
        for raw: UInt64 in [0, 77] {
            let bytes = WireBytes { $0.message(4) { $0.varint(1, raw); $0.double(2, 0.5) } }.bytes
            #expect(try TrainingConfig.decode(bytes).lrSchedule == LRSchedule(kind: .constant, decayRate: 0.5), "raw \(raw)")
        }
    }

    @Test func unrepresentableDesiredStateIsRejected() {
        for raw: UInt64 in [0, 3] {
            let bytes = WireBytes {
                $0.message(1) { $0.string(1, "j") }
                $0.varint(4, raw)
            }.bytes
            let error = #expect(throws: WireError.self) { try JobAssignment.decode(bytes) }
            #expect(error?.code == .invalidValue)
            #expect(error?.message.contains("JobAssignment.desired_state") == true, "\(String(describing: error))")
            #expect(error?.message.contains(raw == 0 ? "not set" : "value 3") == true, "\(String(describing: error))")
        }
    }

    @Test func unrepresentableIncidentEnumsAreRejected() {
        func incident(cause: UInt64 = 1, level: UInt64 = 1, severity: UInt64 = 1, status: UInt64 = 1) -> [UInt8] {
            WireBytes {
                $0.string(1, "inc-7")
                $0.varint(3, cause)
                $0.varint(4, level)
                $0.varint(5, severity)
                $0.varint(6, status)
            }.bytes
        }
        #expect(throws: Never.self) { try Incident.decode(incident()) }
        let cases: [(bytes: [UInt8], field: String)] = [
            (incident(cause: 8), "Incident.cause"),
            (incident(level: 0), "Incident.level"),
            (incident(level: 5), "Incident.level"),
            (incident(severity: 9), "Incident.severity"),
            (incident(status: 0), "Incident.status"),
        ]
        for (bytes, field) in cases {
            let error = #expect(throws: WireError.self) { try Incident.decode(bytes) }
            #expect(error?.code == .invalidValue)
            #expect(error?.message.contains(field) == true && error?.message.contains("incident 'inc-7'") == true, "\(String(describing: error))")
        }
        let escalation = WireBytes {
            $0.varint(1, 6)
            $0.lengthDelimited(2, incident())
        }.bytes
        let error = #expect(throws: WireError.self) { try Escalation.decode(escalation) }
        #expect(error?.code == .invalidValue)
        #expect(error?.message.contains("Escalation.kind") == true)
    }

    // MARK: Strings

    @Test func invalidUTF8IsRejected() {
        for invalid: [UInt8] in [[0xFF], [0xC0, 0x80], [0xED, 0xA0, 0x80], [0x61, 0xE2, 0x82]] {
            let reply = WireBytes { $0.lengthDelimited(2, invalid) }.bytes
            let error = #expect(throws: WireError.self) { try LogReply.decode(reply) }
            #expect(error?.code == .invalidValue)
            #expect(error?.message.contains("LogReply.error") == true && error?.message.contains("UTF-8") == true)
        }
        let event = WireBytes {
            $0.string(2, "n")
            $0.message(16) {
                $0.string(6, "fine")
                $0.lengthDelimited(6, [0x6F, 0x6F, 0x6D, 0xFF])
            }
        }.bytes
        let error = #expect(throws: WireError.self) { try TrainingEvent.decode(event) }
        #expect(error?.message.contains("archon.v1.TrainingEvent") == true)
        #expect(error?.message.contains("JobExited.log_tail[1]") == true, "\(String(describing: error))")
        let label = WireBytes { $0.message(6) { $0.string(1, "zone"); $0.lengthDelimited(2, [0xFE]) } }.bytes
        let labelError = #expect(throws: WireError.self) { try NodeStatus.decode(label) }
        #expect(labelError?.message.contains("NodeStatus.labels[0].value") == true, "\(String(describing: labelError))")
    }

    /// protobuf-c strings are NUL-terminated: a string ends at its first NUL, both ways.
    @Test func stringsEndAtTheFirstNUL() throws {
        #expect(try LogReply.decode(LogReply(error: "before\u{0}after").encoded()).error == "before")
        #expect(try LogReply.decode(WireBytes { $0.lengthDelimited(2, [0x61, 0x00, 0x62]) }.bytes).error == "a")
    }

    @Test func unicodeSurvives() throws {
        let text = "日本語 · émoji 🧪 · ∑ · \u{10FFFF}"
        try expectRoundTrip(LogReply(lines: [text], error: text))
    }

    // MARK: Integers

    @Test func negativeAndOversizedIntsAreClampedWhenEncoded() throws {
        let config = TrainingConfig(batchSize: -5, gradientAccumulationSteps: Int.max, epochs: Int.min,
                                    timeouts: Timeouts(perEpochSeconds: -1, totalSeconds: Int.max))
        let decoded = try TrainingConfig.decode(config.encoded())
        #expect(decoded.batchSize == 0)
        #expect(decoded.gradientAccumulationSteps == Int(UInt32.max))
        #expect(decoded.epochs == 0)
        #expect(decoded.timeouts.perEpochSeconds == 0 && decoded.timeouts.totalSeconds == Int.max)
        #expect(try LogRequest.decode(LogRequest(jobID: "j", tail: -100).encoded()).tail == 0)
    }

    @Test func uint64BeyondIntMaxIsClampedWhenDecoded() throws {
        let bytes = WireBytes { $0.message(13) { $0.varint(1, .max); $0.varint(2, UInt64(UInt32.max)) } }.bytes
        #expect(try TrainingEvent.decode(bytes).body == .step(StepProgress(step: .max, epoch: Int(UInt32.max))))
    }

    // MARK: Maps, unknown fields, input kinds

    @Test func repeatedMapKeyKeepsTheLastEntry() throws {
        let bytes = WireBytes {
            $0.string(1, "n")
            $0.message(6) { $0.string(1, "zone"); $0.string(2, "eu-1") }
            $0.message(6) { $0.string(1, "zone"); $0.string(2, "eu-2") }
            $0.message(6) { $0.string(1, "rack") }
        }.bytes
        #expect(try NodeStatus.decode(bytes).labels == ["zone": "eu-2", "rack": ""])
    }

    @Test func unknownFieldsAreIgnored() throws {
        for sample in Fixtures.samples {
            var bytes = sample.bytes
            bytes += WireBytes {
                $0.varint(1000, 1)
                $0.string(1001, "from a newer schema")
                $0.double(1002, 2.5)
                $0.message(1003) { $0.varint(1, 9) }
            }.bytes
            #expect(try sample.reencode(bytes) == sample.bytes, "\(sample.name)")
        }
    }

    @Test func anyCollectionOfBytesDecodes() throws {
        let bytes = Fixtures.assignment.encoded()
        #expect(try JobAssignment.decode(bytes.lazy.map { $0 }) == Fixtures.assignment)  // not contiguous
        #expect(try JobAssignment.decode(([0xFF] + bytes)[1...]) == Fixtures.assignment)  // slice not at 0
        #expect(try JobAssignment.decode(Data(bytes)) == Fixtures.assignment)
        let fromRawBuffer = try bytes.withUnsafeBytes { raw in try JobAssignment.decode(raw) }
        #expect(fromRawBuffer == Fixtures.assignment)
    }

    // MARK: Error messages

    @Test func malformedErrorNamesTheMessageAndShowsTheBytes() {
        let error = #expect(throws: WireError.self) { try TrainingEvent.decode([0x0A, 0x05, 0x61]) }
        #expect(error?.code == .malformed)
        #expect(error?.message.contains("3 bytes are not a valid archon.v1.TrainingEvent") == true, "\(String(describing: error))")
        #expect(error?.message.contains("first bytes: 0a 05 61") == true, "\(String(describing: error))")
        #expect(error?.description.hasPrefix("malformed: ") == true)
    }
}
