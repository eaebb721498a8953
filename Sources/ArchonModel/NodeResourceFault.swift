/// A node resource the job needs and the node cannot give: the node is at fault, not the job.
///
/// The agent reports one as an exit of class `node_fault` whose `detail` starts with the raw value and `": "`
/// (``detail(_:)``); the controller reads it back with ``parse(_:)``. No wire field: the detail text is the contract,
/// so a `JobExited` from any agent version still decodes, and one without the prefix is an ordinary node fault.
public enum NodeResourceFault: String, Codable, Sendable, CaseIterable {
    /// ENOSPC or EDQUOT: "No space left on device", Python's `OSError: [Errno 28]`.
    case diskFull = "disk full"
    /// `jobs/<job>/checkpoints` cannot be created or written: EROFS, or EACCES on that path.
    case checkpointDirectoryNotWritable = "checkpoint directory not writable"

    /// `"disk full: <what>"`: the `JobExited.detail` the agent reports.
    public func detail(_ what: String) -> String { "\(rawValue): \(what)" }

    /// The fault a `JobExited.detail` names, and the rest of the detail; nil for any other detail.
    public static func parse(_ detail: String) -> (fault: NodeResourceFault, what: String)? {
        for fault in allCases where detail.hasPrefix(fault.rawValue + ": ") {
            return (fault, String(detail.dropFirst(fault.rawValue.count + 2)))
        }
        return nil
    }
}
