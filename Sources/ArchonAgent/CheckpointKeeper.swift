public import ArchonModel
import Foundation

/// The checkpoints this node wrote for one job, across its attempts: verified when written, pruned to the retention,
/// and the newest that still verifies handed to the next attempt when the controller names none. Stored in
/// `<work>/jobs/<job>/checkpoints.json`; the files lie in each attempt's checkpoint folder (on the node's checkpoint
/// storage or the job's shared root). Only files this node recorded are ever deleted, so nodes sharing storage
/// never prune each other's.
public final class CheckpointKeeper: @unchecked Sendable {
    public struct Record: Codable, Sendable, Equatable {
        public var path: String
        public var epoch: Int
        public var step: Int
        public var sizeBytes: UInt64
        public var sha256: String
        public var attempt: Int
    }

    public enum Failure: Error, Equatable, CustomStringConvertible {
        case missing(String)
        case outsideCheckpointDirectory(String)

        public var description: String {
            switch self {
            case .missing(let path): "checkpoint \(path) does not exist"
            case .outsideCheckpointDirectory(let path): "checkpoint \(path) is outside the job's checkpoint directory"
            }
        }
    }

    private let file: String
    private let lock = NSLock()
    private var records: [Record]

    public init(jobDirectory: String) {
        file = "\(jobDirectory)/checkpoints.json"
        records = (FileManager.default.contents(atPath: file)).flatMap { try? JSONDecoder().decode([Record].self, from: $0) } ?? []
    }

    public var all: [Record] { lock.withLock { records } }

    /// Verifies and records a checkpoint the trainer reported in the attempt's checkpoint folder `directory`, on
    /// `storage`; deletes those beyond `keepLast`. Returns the event to publish and the paths deleted.
    public func written(path: String, in directory: String, storage: CheckpointStorage?, epoch: Int, step: Int, attempt: Int,
                        keepLast: Int) throws(Failure) -> (CheckpointWritten, deleted: [String]) {
        let resolved = URL(fileURLWithPath: path).standardizedFileURL.path
        guard resolved.hasPrefix(URL(fileURLWithPath: directory).standardizedFileURL.path + "/") else {
            throw .outsideCheckpointDirectory(path)
        }
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: resolved),
              let sha = Checksum.sha256Hex(ofFile: resolved)
        else { throw .missing(path) }
        let size = (attributes[.size] as? NSNumber)?.uint64Value ?? 0
        let record = Record(path: resolved, epoch: epoch, step: step, sizeBytes: size, sha256: sha, attempt: attempt)
        let deleted: [String] = lock.withLock {
            records.removeAll { $0.path == resolved }
            records.append(record)
            var deleted: [String] = []
            if keepLast > 0, records.count > keepLast {
                deleted = records.prefix(records.count - keepLast).map(\.path)
                records.removeFirst(records.count - keepLast)
            }
            save()
            return deleted
        }
        for old in deleted {
            try? FileManager.default.removeItem(atPath: old)
            rmdir(URL(fileURLWithPath: old).deletingLastPathComponent().path)  // an attempt's folder, once empty
        }
        return (CheckpointWritten(path: resolved, epoch: epoch, step: step, sizeBytes: size, sha256: sha, storage: storage), deleted)
    }

    /// The newest checkpoint whose file still has its recorded checksum, and those skipped because it changed
    /// or vanished (possible corruption: report them).
    public func latestValid() -> (Record?, skipped: [Record]) {
        let candidates = lock.withLock { records }
        var skipped: [Record] = []
        for record in candidates.reversed() {
            if Checksum.sha256Hex(ofFile: record.path) == record.sha256 { return (record, skipped) }
            skipped.append(record)
        }
        return (nil, skipped)
    }

    private func save() {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        if let data = try? encoder.encode(records) {
            try? data.write(to: URL(fileURLWithPath: file), options: .atomic)
        }
    }
}
