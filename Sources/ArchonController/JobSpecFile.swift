public import ArchonModel
import ArchonCore
import Foundation

/// Job specs as people write them: YAML (all of it: anchors, multi-line strings) or JSON, with the fields of
/// `TrainingConfig` under `config`. Errors say where and what.
public enum JobSpecFile {
    public struct Problem: Error, CustomStringConvertible {
        public let description: String
    }

    public static func parse(_ text: String, fileName: String = "job spec") throws(Problem) -> JobSpec {
        let trimmed = text.drop { $0.isWhitespace }
        let json: String
        if trimmed.first == "{" {
            json = text
        } else {
            do {
                json = try YAMLFile.jsonText(text, fileName: fileName) { isText(Self.fields, at: $0) }
            } catch {
                throw Problem(description: "\(error)")
            }
        }
        if let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) {
            let unknown = unknownFields(object, Self.fields)
            if !unknown.isEmpty {
                throw Problem(description: "\(fileName): unknown field\(unknown.count == 1 ? "" : "s") \(unknown.joined(separator: ", ")) (misspelt? the fields are in docs/openapi.yaml, JobSpec)")
            }
            let nulls = nullFields(object)
            if !nulls.isEmpty {
                throw Problem(description: "\(fileName): \(nulls.joined(separator: ", ")) must not be null (leave a field out for its default)")
            }
        }
        do {
            return try JSONDecoder().decode(JobSpec.self, from: Data(json.utf8))
        } catch let DecodingError.typeMismatch(type, context) {
            throw Problem(description: "\(fileName): \(path(context)) must be \(type)")
        } catch let DecodingError.dataCorrupted(context) {
            throw Problem(description: "\(fileName): \(path(context)): \(context.debugDescription)")
        } catch let DecodingError.valueNotFound(type, context) {
            throw Problem(description: "\(fileName): \(path(context)) must be \(type), not null")
        } catch {
            throw Problem(description: "\(fileName): \(error)")
        }
    }

    /// The fields a spec may have, object by object: `.text` a string (`.texts` a list of them), `.map` a map of
    /// strings whose keys are free (env, labels, hyperparameters), `.value` anything else.
    indirect enum Fields: Sendable {
        case object([String: Fields])
        case map
        case text
        case texts
        case value
    }

    static let fields = Fields.object([
        "id": .text, "name": .text, "team": .text, "command": .texts, "env": .map, "labels": .map,
        "config": .object([
            "batchSize": .value, "gradientAccumulationSteps": .value, "learningRate": .value, "mixedPrecision": .value,
            "epochs": .value, "dataSubset": .value, "dataset": .text, "dataQualityCheck": .value, "hyperparameters": .map, "seed": .value,
            "lrSchedule": .object(["kind": .text, "decayRate": .value, "decaySteps": .value]),
            "gradientClipping": .object(["enabled": .value, "maxNorm": .value]),
            "timeouts": .object(["perEpochSeconds": .value, "totalSeconds": .value, "heartbeatSeconds": .value]),
            "checkpoint": .object(["everyEpochs": .value, "everySteps": .value, "keepLast": .value, "stopGraceSeconds": .value, "sharedRoot": .text]),
            "resources": .object(["memoryBytes": .value, "cpuCores": .value, "gpuClass": .text, "gpuCount": .value, "diskBytes": .value]),
        ]),
    ])

    /// Whether the value at `path` (keys, nil for a list index) is text: in YAML, `hyperparameters: {lr: 1e-3}` means
    /// the string "1e-3", as the field's type says.
    static func isText(_ fields: Fields, at path: [String?]) -> Bool {
        guard let first = path.first else {
            if case .text = fields { return true }
            return false
        }
        switch fields {
        case .object(let known): return first.flatMap { known[$0] }.map { isText($0, at: Array(path.dropFirst())) } ?? false
        case .map: return first != nil && path.count == 1
        case .texts: return first == nil && path.count == 1
        case .text, .value: return false
        }
    }

    /// Fields of `value` its schema does not know, as paths (`config.batchsize`); a typo is refused, not ignored.
    static func unknownFields(_ value: Any, _ fields: Fields, at path: String = "") -> [String] {
        guard case .object(let known) = fields, let object = value as? [String: Any] else { return [] }
        var out: [String] = []
        for key in object.keys.sorted() {
            let here = path.isEmpty ? key : "\(path).\(key)"
            if let inner = known[key] {  // (.map, .text, .texts and .value have no fields to check)
                out += unknownFields(object[key]!, inner, at: here)
            } else {
                out.append(here)
            }
        }
        return out
    }

    /// Paths of the explicit nulls in `value`: no field of a spec takes null.
    static func nullFields(_ value: Any, at path: String = "") -> [String] {
        if value is NSNull { return [path.isEmpty ? "the document" : path] }
        if let object = value as? [String: Any] {
            return object.keys.sorted().flatMap { nullFields(object[$0]!, at: path.isEmpty ? $0 : "\(path).\($0)") }
        }
        if let array = value as? [Any] { return array.enumerated().flatMap { nullFields($1, at: "\(path)[\($0)]") } }
        return []
    }

    private static func path(_ context: DecodingError.Context) -> String {
        let keys = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }
        return keys.isEmpty ? "the document" : keys.joined(separator: ".").replacingOccurrences(of: ".[", with: "[")
    }
}
