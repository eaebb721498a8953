/// Archon's streams, buckets and subjects: public interface, keep them stable (DESIGN.md).
public enum Fleet {
    /// Training and node events: `archon.v1.events.<node>.<job>` and `archon.v1.events.<node>._node`.
    public static let eventsStream = "ARCHON_EVENTS"
    public static let eventsSubjects = "archon.v1.events.>"
    /// Incidents and their changes: `archon.v1.escalations.<level>`.
    public static let escalationsStream = "ARCHON_ESCALATIONS"
    public static let escalationsSubjects = "archon.v1.escalations.>"
    /// Desired state, key `<node>.<job>` → JobAssignment.
    public static let desiredBucket = "archon_desired"
    /// Controller leadership lease; its revision is the fencing epoch.
    public static let leaderBucket = "archon_leader"
    /// Controller state: one key per job, node, dataset and incident (see the controller's StateStore).
    public static let stateBucket = "archon_state"
    /// Finished jobs and resolved incidents after their retention, same keys as the state.
    public static let archiveBucket = "archon_archive"

    public static func eventsSubject(node: String, job: String?) -> String {
        "archon.v1.events.\(node).\(job ?? "_node")"
    }

    /// The node and job tokens of an events subject (`_node` for node-wide events); nil when it has not five tokens.
    /// Empty tokens are skipped, as `split` does. Read by hand: the controller does this once per event, and the
    /// array of substrings `split` builds was 4 % of its time.
    public static func eventsSubjectTokens(_ subject: String) -> (node: String, job: String)? {
        let bytes = subject.utf8
        var count = 0
        var node = "", job = ""
        var start = bytes.startIndex
        func token(endingAt end: String.Index) {
            guard start < end else { return }
            count += 1
            if count == 4 { node = String(subject[start..<end]) } else if count == 5 { job = String(subject[start..<end]) }
        }
        var index = start
        while index < bytes.endIndex, count <= 5 {
            if bytes[index] == UInt8(ascii: ".") {
                token(endingAt: index)
                start = bytes.index(after: index)
            }
            index = bytes.index(after: index)
        }
        token(endingAt: bytes.endIndex)
        return count == 5 ? (node, job) : nil
    }

    public static func logsSubject(node: String) -> String { "archon.v1.logs.\(node)" }

    /// Creates (or updates to the same shape) the streams both agents and controllers rely on.
    /// Idempotent: every process calls it at start.
    public static func ensureStreams(_ js: JetStream, replicas: Int = 1) async throws(NATSError) {
        try await js.createOrUpdateStream(StreamConfig(
            name: eventsStream, subjects: [eventsSubjects], maxAge: .seconds(7 * 24 * 3600),
            duplicateWindow: .seconds(600), replicas: replicas))
        try await js.createOrUpdateStream(StreamConfig(
            name: escalationsStream, subjects: [escalationsSubjects], maxAge: .seconds(30 * 24 * 3600),
            duplicateWindow: .seconds(600), replicas: replicas))
    }
}
