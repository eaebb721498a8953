public import ArchonModel
import Foundation

/// One line a trainer writes on its events fd (`ARCHON_EVENTS_FD`, fd 3): a JSON object with a `type`.
/// The formats are documented in docs/agent.md and implemented by clients/python/archon_trainer/__init__.py.
public enum TrainerLine: Sendable, Equatable {
    /// `{"type":"epoch","epoch":1,"totalEpochs":5,"loss":0.5,"learningRate":0.01,"durationSeconds":1.2,"step":57,"validation":{"loss":0.6,"accuracy":0.9}}`
    case epoch(EpochMetrics)
    /// `{"type":"step","step":100,"epoch":2,"loss":0.4,"learningRate":0.01,"samplesPerSecond":900}`
    case step(StepProgress)
    /// `{"type":"checkpoint","path":"/abs/ckpt-epoch-0003.npz","epoch":3,"step":171}`
    case checkpoint(path: String, epoch: Int, step: Int)
    /// `{"type":"error","errorClass":"dataset_not_found","message":"..."}`
    case error(FailureClass, message: String)
    /// `{"type":"heartbeat"}`: alive and making progress.
    case heartbeat

    public struct ParseError: Error, Equatable, CustomStringConvertible {
        public let description: String
    }

    /// Parses one line. NaN and ±Infinity may be written as the strings "NaN", "Infinity", "-Infinity"
    /// (JSON has no such numbers) or bare, as Python's json module writes them.
    public static func parse(_ line: some StringProtocol) throws(ParseError) -> TrainerLine {
        let text = String(line)
        guard let object = jsonObject(text) ?? jsonObject(quotingNonFiniteNumbers(text)) else {
            throw ParseError(description: "not a JSON object: \(text.prefix(120))")
        }
        guard let type = object["type"] as? String else {
            throw ParseError(description: "no \"type\" in \(text.prefix(120))")
        }
        switch type {
        case "epoch":
            guard let epoch = int(object["epoch"]) else { throw ParseError(description: "epoch line without \"epoch\"") }
            guard let loss = double(object["loss"]) else { throw ParseError(description: "epoch line without \"loss\"") }
            var validation: Validation?
            if let v = object["validation"] as? [String: Any], let vloss = double(v["loss"]) {
                validation = Validation(loss: vloss, accuracy: double(v["accuracy"]) ?? 0)
            }
            return .epoch(EpochMetrics(
                epoch: epoch,
                totalEpochs: int(object["totalEpochs"]) ?? 0,
                loss: loss,
                learningRate: double(object["learningRate"]) ?? 0,
                durationSeconds: double(object["durationSeconds"]) ?? 0,
                step: int(object["step"]) ?? 0,
                validation: validation))
        case "step":
            guard let step = int(object["step"]) else { throw ParseError(description: "step line without \"step\"") }
            return .step(StepProgress(
                step: step,
                epoch: int(object["epoch"]) ?? 0,
                loss: double(object["loss"]) ?? 0,
                learningRate: double(object["learningRate"]) ?? 0,
                samplesPerSecond: double(object["samplesPerSecond"]) ?? 0))
        case "checkpoint":
            guard let path = object["path"] as? String, !path.isEmpty else {
                throw ParseError(description: "checkpoint line without \"path\"")
            }
            return .checkpoint(path: path, epoch: int(object["epoch"]) ?? 0, step: int(object["step"]) ?? 0)
        case "error":
            let name = object["errorClass"] as? String ?? "crash"
            return .error(FailureClass(rawValue: name) ?? .crash, message: object["message"] as? String ?? "")
        case "heartbeat":
            return .heartbeat
        default:
            throw ParseError(description: "unknown line type \"\(type)\"")
        }
    }

    private static func jsonObject(_ text: String) -> [String: Any]? {
        guard let data = text.data(using: .utf8) else { return nil }
        return (try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])) as? [String: Any]
    }

    private static func quotingNonFiniteNumbers(_ text: String) -> String {
        text.replacingOccurrences(of: "-Infinity", with: "\"-Infinity\"")
            .replacingOccurrences(of: ": Infinity", with: ": \"Infinity\"")
            .replacingOccurrences(of: ":Infinity", with: ":\"Infinity\"")
            .replacingOccurrences(of: "NaN", with: "\"NaN\"")
    }

    private static func double(_ value: Any?) -> Double? {
        switch value {
        case let n as NSNumber: return n.doubleValue
        case let s as String:
            switch s {
            case "NaN", "nan": return .nan
            case "Infinity", "inf": return .infinity
            case "-Infinity", "-inf": return -.infinity
            default: return Double(s)
            }
        default: return nil
        }
    }

    /// A whole number, or nil; one past `Int`'s range (a trainer printing 1e23 steps) is nil, not a trap that would take
    /// the agent down with every job it supervises (found by `make fuzz`, Fuzz/corpus/trainer-line/crash-huge-step).
    private static func int(_ value: Any?) -> Int? {
        guard let d = double(value), d.isFinite, d > -9.2e18, d < 9.2e18 else { return nil }
        return Int(d)
    }
}
