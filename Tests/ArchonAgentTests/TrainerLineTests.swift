import ArchonAgent
import Foundation
import ArchonModel
import Testing

@Suite struct TrainerLineTests {
    @Test func epochWithValidation() throws {
        let line = #"{"type":"epoch","epoch":2,"totalEpochs":5,"loss":0.53,"learningRate":0.01,"durationSeconds":1.5,"step":114,"validation":{"loss":0.6,"accuracy":0.91}}"#
        #expect(try TrainerLine.parse(line) == .epoch(EpochMetrics(
            epoch: 2, totalEpochs: 5, loss: 0.53, learningRate: 0.01, durationSeconds: 1.5, step: 114,
            validation: Validation(loss: 0.6, accuracy: 0.91))))
    }

    @Test func nonFiniteLossAsStringOrBare() throws {
        for line in [#"{"type":"epoch","epoch":3,"loss":"NaN"}"#, #"{"type": "epoch", "epoch": 3, "loss": NaN}"#] {
            guard case .epoch(let m) = try TrainerLine.parse(line) else { Issue.record("not an epoch"); continue }
            #expect(m.loss.isNaN)
        }
        guard case .epoch(let m) = try TrainerLine.parse(#"{"type":"epoch","epoch":1,"loss":"Infinity"}"#) else { return }
        #expect(m.loss == .infinity)
    }

    @Test func otherKinds() throws {
        #expect(try TrainerLine.parse(#"{"type":"step","step":100,"epoch":2,"loss":0.4,"learningRate":0.01,"samplesPerSecond":900}"#)
            == .step(StepProgress(step: 100, epoch: 2, loss: 0.4, learningRate: 0.01, samplesPerSecond: 900)))
        #expect(try TrainerLine.parse(#"{"type":"checkpoint","path":"/c/ckpt-3","epoch":3,"step":171}"#)
            == .checkpoint(path: "/c/ckpt-3", epoch: 3, step: 171))
        #expect(try TrainerLine.parse(#"{"type":"error","errorClass":"dataset_not_found","message":"no /data"}"#)
            == .error(.datasetNotFound, message: "no /data"))
        #expect(try TrainerLine.parse(#"{"type":"error","errorClass":"bogus"}"#) == .error(.crash, message: ""))
        #expect(try TrainerLine.parse(#"{"type":"heartbeat"}"#) == .heartbeat)
    }

    @Test(arguments: ["", "not json", "[1,2]", #"{"epoch":1}"#, #"{"type":"epoch"}"#, #"{"type":"mystery"}"#, #"{"type":"checkpoint"}"#])
    func badLinesAreRejectedWithAReason(_ line: String) {
        #expect(throws: TrainerLine.ParseError.self) { try TrainerLine.parse(line) }
    }
}

/// Inputs `make fuzz` found that once crashed the agent: each is a test, and stays in Fuzz/corpus.
@Suite struct TrainerLineFuzzRegressionTests {
    @Test(arguments: ["1e23", "-1e23", "9.3e18", "1.7976931348623157e308"])
    func aCountPastIntsRangeIsRefusedNotATrap(_ number: String) {
        #expect(throws: TrainerLine.ParseError.self) {
            try TrainerLine.parse(#"{"type":"step","step":\#(number),"epoch":2,"loss":0.5}"#)
        }
        #expect(throws: TrainerLine.ParseError.self) { try TrainerLine.parse(#"{"type":"epoch","epoch":\#(number),"loss":0.5}"#) }
    }
}

@Suite struct ChecksumTests {
    @Test func knownVectors() {
        #expect(Checksum.sha256Hex(Array("".utf8)) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(Checksum.sha256Hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    @Test func ofAFileLargerThanOneChunk() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("sha-\(UUID().uuidString)").path
        try Data(repeating: UInt8(ascii: "a"), count: 1_000_000 * 3).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(Checksum.sha256Hex(ofFile: path) == Checksum.sha256Hex(Data(repeating: UInt8(ascii: "a"), count: 3_000_000)))
        #expect(Checksum.sha256Hex(ofFile: path + ".missing") == nil)
    }
}
