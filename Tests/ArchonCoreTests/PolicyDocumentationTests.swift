import ArchonModel
import Foundation
import Testing

@testable import ArchonCore

/// docs/policy.md documents every rule, default and action: keep it in step with the code.
@Suite struct PolicyDocumentationTests {
    let doc: String = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../docs/policy.md")
        return (try? String(contentsOf: url, encoding: .utf8)) ?? ""
    }()

    @Test func theDocumentedDefaultPolicyIsTheCodes() throws {
        let marker = "## The complete default policy"
        let section = try #require(doc.range(of: marker).map { doc[$0.upperBound...] })
        let start = try #require(section.range(of: "```json\n"))
        let end = try #require(section[start.upperBound...].range(of: "\n```"))
        let json = String(section[start.upperBound..<end.lowerBound])
        #expect(json == Policy.runbookDefaults.jsonText())
        #expect(try Policy.parse(json) == .runbookDefaults)
    }

    @Test func everySymptomStepAndActionIsDocumented() {
        for symptom in Symptom.allCases { #expect(doc.contains("`\(symptom.rawValue)`"), "symptom \(symptom.rawValue)") }
        for action in Remedy.actions { #expect(doc.contains("| `\(action)` |"), "step \(action)") }
        for action in ["assign", "stop", "stopGracefully", "cordon", "uncordon", "pauseRetries", "resumeRetries", "freezeRemediation", "unfreezeRemediation", "publishEscalation", "rejectJob", "scheduleTimer", "cancelTimer"] {
            #expect(doc.contains("| `\(action)("), "action \(action)")
        }
        for rule in ["badNode", "badDataset", "systemResource", "multiAgent", "security"] {
            #expect(doc.contains("### \(rule)"), "rule \(rule)")
        }
    }

    @Test func bareNumbersAreNotDurations() throws {
        #expect(throws: PolicyError.self) { try Policy.parse(#"{"detection": {"queueTimeout": 10}}"#) }
        #expect(try Policy.parse(#"{"remediation": {"backoff": {"initial": 0}}}"#).remediation.backoff.initial == .seconds(0))
    }
}
