/// The YAML block subset the policy loader reads (see docs/policy.md), for other files people write by hand
/// (job specs): one parser for every hand-written file, with line-precise errors.
public enum YAMLSubset {
    /// The document as JSON text.
    public static func jsonText(_ yaml: String, fileName: String) throws(PolicyError) -> String {
        do {
            return try PolicyYAMLParser.parse(yaml).json
        } catch {
            throw PolicyError(code: .syntax, fileName: fileName, issues: [error.issue])
        }
    }
}
