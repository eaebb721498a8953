import Foundation
import Logging

/// A counter persisted in a file before each number is used, so a restarted agent never reuses one (the stream
/// would drop the new event as a duplicate of the old message id).
enum SequenceFile {
    /// The next number: the file's, but never below `floor` (the caller's next number in memory). When the file
    /// cannot be written — a full or read-only disk, the very fault being reported — the number is still used and
    /// the caller's floor keeps the following ones rising.
    static func take(_ path: String, atLeast floor: UInt64, logger: Logger) -> UInt64 {
        let stored = (try? String(contentsOfFile: path, encoding: .utf8))
            .flatMap { UInt64($0.trimmingCharacters(in: .whitespacesAndNewlines)) } ?? 1
        let sequence = max(stored, floor, 1)
        do {
            try "\(sequence + 1)".write(toFile: path, atomically: true, encoding: .utf8)
        } catch {
            logger.warning("agent.sequence.write_failed", metadata: ["sequence.file": "\(path)", "error": "\(error)"])
        }
        return sequence
    }
}
