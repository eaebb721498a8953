public import ArchonModel

/// A key found in `archon_desired` (`<node>.<job>`), as the shell read it.
public struct DesiredEntry: Sendable, Hashable {
    public var nodeID: String
    public var jobID: String
    /// The attempt its assignment names; nil when the value is not a readable assignment for this key.
    public var attempt: Int?

    public init(nodeID: String, jobID: String, attempt: Int?) {
        self.nodeID = nodeID
        self.jobID = jobID
        self.attempt = attempt
    }

    public var key: String { "\(nodeID).\(jobID)" }
}

// Level-triggered repair: what the desired state should hold, compared with what it holds; after an outage of
// the controller, at takeover and periodically. Missed writes are redone whatever made them fail.
extension FleetController {
    /// The assignment the job's desired-state key must hold now; nil when it must have none.
    public func desiredAssignment(_ jobID: String) -> JobAssignment? {
        guard let job = state.jobs[jobID], !job.desiredNode.isEmpty, !job.status.isTerminal, !job.isDraining,
              let current = job.current, current.nodeID == job.desiredNode
        else { return nil }
        var spec = job.spec
        spec.config = job.config
        return JobAssignment(
            spec: spec, attempt: job.attempt, fencingEpoch: state.fencingEpoch, desiredState: .running, nodeID: job.desiredNode,
            resumeFrom: current.resumeFrom, assignedAtMs: current.assignedAtMs, reason: current.action, freshStart: current.freshStart)
    }

    /// The writes and deletes that make `archon_desired` (read as `present`) match the core: a missing or stale
    /// assignment is written again; a key for an unknown, finished or moved job, or an unreadable one, is deleted.
    public func reconcileDesired(_ present: [DesiredEntry]) -> [ControllerAction] {
        var out: [ControllerAction] = []
        var seen: Set<String> = []
        for entry in present.sorted(by: { $0.key < $1.key }) {
            let jobID = entry.jobID, nodeID = entry.nodeID
            guard let attempt = entry.attempt else {
                out.append(.stop(jobID: jobID, nodeID: nodeID, attempt: 0, reason: Reason(
                    symptom: "desired state drift", evidence: "key \(entry.key) holds no readable assignment for it", rule: "reconcile: unreadable keys are deleted")))
                continue
            }
            if let job = state.jobs[jobID], job.isDraining, job.desiredNode == nodeID, job.current?.attempt == attempt {
                seen.insert(jobID)  // the stopped assignment of an attempt saving its checkpoint: removed once it has exited
                continue
            }
            guard let want = desiredAssignment(jobID), want.nodeID == nodeID else {
                let why = state.jobs[jobID].map { "job \(jobID) is \($0.status.rawValue)\($0.desiredNode.isEmpty ? "" : " and runs on \($0.desiredNode)")" }
                    ?? "job \(jobID) is unknown"
                out.append(.stop(jobID: jobID, nodeID: nodeID, attempt: attempt, reason: Reason(
                    symptom: "desired state drift", evidence: "\(entry.key) holds attempt \(attempt) but \(why)", rule: "reconcile: orphan keys are deleted")))
                continue
            }
            seen.insert(jobID)
            if attempt != want.attempt {
                out.append(.assign(want, reason: Reason(
                    symptom: "desired state drift", evidence: "\(entry.key) holds attempt \(attempt), the job is at attempt \(want.attempt)",
                    rule: "reconcile: a stale assignment is written again")))
            }
        }
        for job in state.jobs.values where !job.desiredNode.isEmpty && !seen.contains(job.spec.id) {
            guard let want = desiredAssignment(job.spec.id) else { continue }
            out.append(.assign(want, reason: Reason(
                symptom: "desired state drift", evidence: "\(want.nodeID).\(job.spec.id) is missing; the job is at attempt \(want.attempt) there",
                rule: "reconcile: a missing assignment is written again")))
        }
        return out
    }

    /// The controller heard nothing from the fleet for a while (it was not the leader, or NATS was unreachable)
    /// and has now read the event backlog: silence during the outage is the controller's, not the nodes'. Silence,
    /// hang and start windows count from now at the earliest — every online node, reporting attempt and job waiting
    /// to start gets a fresh window — then whatever is still due is handled. One small write, whatever the fleet's size.
    public mutating func fleetHeardAgain(at now: Int64) -> [ControllerAction] {
        state.heardAgainAtMs = max(state.heardAgainAtMs, now)
        return tick(at: now)
    }
}
