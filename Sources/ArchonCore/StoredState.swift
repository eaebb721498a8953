public import ArchonModel

/// One stored piece of the fleet state: the unit the controller persists, one per job, node, dataset and
/// incident, plus one small fleet-wide record. No piece grows with the fleet.
public enum EntityKey: Hashable, Codable, Sendable, Comparable, CustomStringConvertible {
    /// A job's changing record (attempts, status, config in force).
    case job(String)
    /// A job's spec as submitted: written once, when the job is created.
    case spec(String)
    case node(String)
    case dataset(String)
    case incident(String)
    /// Fencing epoch, incident numbering, fleet-wide freezes.
    case fleet

    /// The key in storage: `job.<id>`, `node.<id>`, `dataset.<id>`, `incident.<id>`, `fleet.record`. Ids are escaped so
    /// that any id makes a valid NATS KV key (`[-/_=.A-Za-z0-9]`, no empty token): every byte outside
    /// `[-_A-Za-z0-9]` becomes `=XX`.
    public var description: String {
        switch self {
        case .job(let id): "job.\(Self.escape(id))"
        case .spec(let id): "spec.\(Self.escape(id))"
        case .node(let id): "node.\(Self.escape(id))"
        case .dataset(let id): "dataset.\(Self.escape(id))"
        case .incident(let id): "incident.\(Self.escape(id))"
        case .fleet: "fleet.record"
        }
    }

    /// Parses what ``description`` writes.
    public init?(_ key: String) {
        if key == "fleet.record" {
            self = .fleet
            return
        }
        guard let dot = key.firstIndex(of: "."), let id = Self.unescape(String(key[key.index(after: dot)...])), !id.isEmpty else {
            return nil
        }
        switch key[..<dot] {
        case "job": self = .job(id)
        case "spec": self = .spec(id)
        case "node": self = .node(id)
        case "dataset": self = .dataset(id)
        case "incident": self = .incident(id)
        default: return nil
        }
    }

    static func escape(_ id: String) -> String {
        var out = ""
        for byte in id.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "_"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let hex = Array("0123456789ABCDEF".unicodeScalars)
                out.unicodeScalars.append("=")
                out.unicodeScalars.append(hex[Int(byte >> 4)])
                out.unicodeScalars.append(hex[Int(byte & 0xF)])
            }
        }
        return out
    }

    static func unescape(_ text: String) -> String? {
        var bytes: [UInt8] = []
        var utf8 = Array(text.utf8)[...]
        while let byte = utf8.popFirst() {
            if byte == UInt8(ascii: "=") {
                guard utf8.count >= 2, let value = UInt8(String(decoding: utf8.prefix(2), as: UTF8.self), radix: 16) else { return nil }
                bytes.append(value)
                utf8 = utf8.dropFirst(2)
            } else {
                bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }
}

/// A job as stored: its record (the spec is stored apart, once: ``EntityKey/spec(_:)``), its deadlines, and its
/// observations still inside the correlation window.
public struct StoredJob: Codable, Sendable, Hashable {
    public var record: JobRecord
    public var timers: [TimerID: Int64]
    public var failures: [FailureObservation]
    public var healthy: [HealthyObservation]
}

/// The part of a job's record that almost every event changes: its current attempt's applied sequences and the times
/// of its last signs of life. Stored apart from the record (see the controller's `StateStore`), so that a batch of
/// steps, heartbeats and resource samples writes a few dozen bytes per job instead of the whole record; a node's
/// ``NodeLive`` likewise.
public struct JobLive: Codable, Sendable, Hashable {
    public var attempt: Int
    public var sequences: SequenceWindow
    public var lastProgressMs: Int64
    public var epochStartMs: Int64
    public var lastHeartbeatMs: Int64
}

extension StoredJob {
    /// The current attempt's live part; nil before the first attempt.
    public var live: JobLive? {
        guard let current = record.history.last else { return nil }
        return JobLive(attempt: current.attempt, sequences: current.sequences, lastProgressMs: current.signals.lastProgressMs,
                       epochStartMs: current.signals.epochStartMs, lastHeartbeatMs: current.signals.lastHeartbeatMs)
    }

    /// A hash of everything but ``live``: while it stays the same, storing ``live`` alone keeps the stored job whole.
    public var hashWithoutLive: Int {
        var rest = self
        if let attempt = record.history.last?.attempt {
            rest.apply(JobLive(attempt: attempt, sequences: SequenceWindow(), lastProgressMs: 0, epochStartMs: 0, lastHeartbeatMs: 0))
        }
        return rest.hashValue
    }

    /// Puts a live part stored after this record back in: only onto the attempt it belongs to.
    public mutating func apply(_ live: JobLive) {
        guard let last = record.history.indices.last, record.history[last].attempt == live.attempt else { return }
        record.history[last].sequences = live.sequences
        record.history[last].signals.lastProgressMs = live.lastProgressMs
        record.history[last].signals.epochStartMs = live.epochStartMs
        record.history[last].signals.lastHeartbeatMs = live.lastHeartbeatMs
    }
}

extension JobLive {
    /// This part as the JSON `JSONEncoder` writes for it (the same keys; `ahead` in ascending order), written without
    /// it: a batch writes one per job it touched, and Foundation's encoder was a tenth of the controller's time at
    /// 10,000 jobs. Integers only, so nothing to escape or format.
    public var json: [UInt8] {
        var text = "{\"attempt\":\(attempt),\"sequences\":{\"contiguous\":\(sequences.contiguous),\"ahead\":["
        text += sequences.ahead.sorted().map(String.init).joined(separator: ",")
        text += "]},\"lastProgressMs\":\(lastProgressMs),\"epochStartMs\":\(epochStartMs),\"lastHeartbeatMs\":\(lastHeartbeatMs)}"
        return Array(text.utf8)
    }
}

/// The field of a node that every event from it changes: when it was last heard. Stored apart like ``JobLive``.
public struct NodeLive: Codable, Sendable, Hashable {
    public var lastSeenMs: Int64

    /// As ``JobLive/json``.
    public var json: [UInt8] { Array("{\"lastSeenMs\":\(lastSeenMs)}".utf8) }
}

extension StoredNode {
    public var live: NodeLive { NodeLive(lastSeenMs: record.lastSeenMs) }

    /// A hash of everything but ``live`` (see ``StoredJob/hashWithoutLive``).
    public var hashWithoutLive: Int {
        var rest = self
        rest.apply(NodeLive(lastSeenMs: 0))
        return rest.hashValue
    }

    public mutating func apply(_ live: NodeLive) { record.lastSeenMs = live.lastSeenMs }
}

/// A node as stored, with its silence deadline.
public struct StoredNode: Codable, Sendable, Hashable {
    public var record: NodeRecord
    public var timers: [TimerID: Int64]
}

/// An incident as stored, with its response deadline.
public struct StoredIncident: Codable, Sendable, Hashable {
    public var incident: Incident
    public var timers: [TimerID: Int64]
}

/// The small fleet-wide remainder of the state.
public struct StoredFleet: Codable, Sendable, Hashable {
    public var fencingEpoch: UInt64
    public var nextIncidentNumber: Int
    /// See ``FleetState/heardAgainAtMs``.
    public var heardAgainAtMs: Int64
    /// Symptoms frozen fleet-wide, by the (open) system-resource incident that froze them: a handful at most.
    public var freezes: [String: [Symptom]]
    /// See ``FleetState/evidenceSince``; nil in records written before it existed.
    public var evidenceSince: [String: Int64]?
    /// See ``FleetState/silences``; nil in records written before they existed.
    public var silences: [Silence]?
}

/// The stored value of one ``EntityKey``.
public enum StoredEntity: Codable, Sendable, Hashable {
    case job(StoredJob)
    case spec(JobSpec)
    case node(StoredNode)
    case dataset(DatasetRecord)
    case incident(StoredIncident)
    case fleet(StoredFleet)
}

extension FleetState {
    /// The entities written since the last call (each to be stored again, or deleted when gone). The fleet
    /// record is always included: it is small.
    public mutating func takeChanges() -> Set<EntityKey> {
        var keys: Set<EntityKey> = [.fleet]
        for id in jobs.takeChanged() { keys.insert(.job(id)) }
        for id in jobs.takeCreatedOrRemoved() { keys.insert(.spec(id)) }
        for id in nodes.takeChanged() { keys.insert(.node(id)) }
        for id in datasets.takeChanged() { keys.insert(.dataset(id)) }
        for id in incidents.takeChanged() { keys.insert(.incident(id)) }
        for id in correlation.takeChangedJobs() { keys.insert(.job(id)) }
        keys.formUnion(deadlines.takeChangedOwners())
        return keys
    }

    /// The value to store for `key`; nil when the entity is gone (delete it from storage).
    public func stored(_ key: EntityKey) -> StoredEntity? {
        switch key {
        case .job(let id):
            guard var record = jobs[id] else { return nil }
            record.spec = JobSpec(id: id)  // stored apart, once
            let observations = correlation.observations(of: id)
            return .job(StoredJob(record: record, timers: deadlines.owned(by: key), failures: observations.failures, healthy: observations.healthy))
        case .spec(let id):
            return jobs[id].map { .spec($0.spec) }
        case .node(let id):
            return nodes[id].map { .node(StoredNode(record: $0, timers: deadlines.owned(by: key))) }
        case .dataset(let id):
            return datasets[id].map { .dataset($0) }
        case .incident(let id):
            return incidents[id].map { .incident(StoredIncident(incident: $0, timers: deadlines.owned(by: key))) }
        case .fleet:
            return .fleet(StoredFleet(fencingEpoch: fencingEpoch, nextIncidentNumber: incidents.nextNumber, heardAgainAtMs: heardAgainAtMs, freezes: freezes,
                                      evidenceSince: evidenceSince, silences: silences))
        }
    }

    /// Rebuilds the state from stored entities (any order). Observations older than `keepSince` are dropped.
    public init(entities: some Sequence<StoredEntity>, keepObservationsSince keepSince: Int64) {
        self.init()
        var failures: [FailureObservation] = []
        var healthy: [HealthyObservation] = []
        var specs: [String: JobSpec] = [:]
        var stored: [StoredJob] = []
        for entity in entities {
            switch entity {
            case .job(let job):
                stored.append(job)
            case .spec(let spec):
                specs[spec.id] = spec
            case .node(let node):
                nodes.load(node.record.id, node.record)
                deadlines.load(.node(node.record.id), node.timers)
            case .dataset(let dataset):
                datasets.load(dataset.id, dataset)
            case .incident(let stored):
                incidents.load(stored.incident)
                deadlines.load(.incident(stored.incident.id), stored.timers)
            case .fleet(let fleet):
                fencingEpoch = fleet.fencingEpoch
                heardAgainAtMs = fleet.heardAgainAtMs
                incidents.nextNumber = Swift.max(incidents.nextNumber, fleet.nextIncidentNumber)
                freezes = fleet.freezes
                evidenceSince = fleet.evidenceSince ?? [:]
                silences = fleet.silences ?? []
            }
        }
        for job in stored {
            var record = job.record
            let id = record.spec.id
            if let spec = specs[id] { record.spec = spec }
            jobs.load(id, record)
            deadlines.load(.job(id), job.timers)
            failures += job.failures
            healthy += job.healthy
        }
        correlation.load(failures: failures, healthy: healthy)
        correlation.finishLoading(keepSince: keepSince)
    }
}
