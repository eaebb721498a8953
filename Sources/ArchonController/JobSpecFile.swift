public import ArchonModel
import ArchonCore
import Foundation

/// Job specs as people write them: YAML (the subset in docs/policy.md) or JSON, with the fields of
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
                json = try YAMLSubset.jsonText(text, fileName: fileName)
            } catch {
                throw Problem(description: "\(error)")
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

    private static func path(_ context: DecodingError.Context) -> String {
        let keys = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }
        return keys.isEmpty ? "the document" : keys.joined(separator: ".").replacingOccurrences(of: ".[", with: "[")
    }
}
