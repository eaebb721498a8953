public import ArchonCore
import ArchonModel
import Foundation
import Synchronization

/// A fleet of a given size, made through the core's own inputs: for the scale test and `archon bench-state`.
public enum StateScale {
    /// `jobs` submitted jobs (queued: the nodes announce no capacity) and `nodes` online nodes, at `now`.
    /// Jobs are submitted before the nodes exist, so that validation and placement see an empty fleet and the
    /// build costs O(jobs + nodes).
    public static func fleet(jobs: Int, nodes: Int, at now: Int64) -> FleetController {
        var policy = Policy()
        policy.validation.requireCapacity = false
        var core = FleetController(policy: policy)
        submit(jobs, to: &core, at: now)
        for n in 0..<nodes {
            _ = core.nodeStatusReceived(NodeStatus(nodeID: "node-\(n)", hostname: "gpu-\(n).fleet", agentVersion: "1"), at: now)
        }
        return core
    }

    /// A ``runningFleet(jobs:nodes:training:at:jobID:nodeID:)`` for the benchmarks' sizes, built in O(jobs): one node
    /// and its share of the jobs go through the core's inputs, then that node is copied `nodes` times under new ids
    /// (its entities through JSON, every id replaced in one pass of concatenation) and the copies loaded as a
    /// controller loads its state. (Jobs that do not divide evenly among the nodes are placed one by one instead.)
    /// Nothing is a change to take: store it with ``entities(of:)``.
    public static func copiedRunningFleet(jobs: Int, nodes: Int, training: Bool = false, at now: Int64) -> FleetController {
        guard nodes > 1, jobs % nodes == 0 else {
            var core = runningFleet(jobs: jobs, nodes: nodes, training: training, at: now)
            _ = core.takeChanges()
            return core
        }
        let perNode = jobs / nodes
        var template = runningFleet(jobs: perNode, nodes: 1, training: training, at: now,
                                    jobID: { "job-\($0)-of-template" }, nodeID: { _ in "node-of-template" })
        let encoder = JSONEncoder()
        let templates = template.takeChanges().compactMap { key -> (EntityKey, IDTemplate)? in
            guard let entity = template.stored(key) else { return nil }
            return (key, IDTemplate(Array(try! encoder.encode(entity)), jobs: perNode))
        }
        // Decoding is most of the work: the nodes are spread over the cores.
        let slices = max(1, min(8, ProcessInfo.processInfo.activeProcessorCount))
        let parts = Mutex<[[StoredEntity]]>(Array(repeating: [], count: slices))
        DispatchQueue.concurrentPerform(iterations: slices) { slice in
            let decoder = JSONDecoder()
            var part: [StoredEntity] = []
            for n in (nodes * slice / slices)..<(nodes * (slice + 1) / slices) {
                for (key, template) in templates {
                    if case .fleet = key, n > 0 { continue }
                    let text = template.filled(node: "node-\(n)") { "job-\(n * perNode + $0)" }
                    part.append(try! decoder.decode(StoredEntity.self, from: Data(text)))
                }
            }
            parts.withLock { $0[slice] = part }
        }
        let entities = parts.withLock { $0.flatMap { $0 } }
        return FleetController(policy: template.policy, entities: entities, at: now)
    }

    /// Every entity of a fleet of jobs and nodes (no datasets or incidents: the fleets above have none), to store it
    /// whole.
    public static func entities(of core: FleetController) -> [(EntityKey, StoredEntity?)] {
        var keys: [EntityKey] = [.fleet]
        for job in core.unorderedJobs { keys += [.job(job.spec.id), .spec(job.spec.id)] }
        for node in core.nodes { keys.append(.node(node.id)) }
        return keys.map { ($0, core.stored($0)) }
    }

    /// A fleet at work: `nodes` nodes with 8 GPUs each, then `jobs` jobs of one GPU; those that fit are placed and
    /// started (their agents reported accepted and started), the rest wait. `training`: each started job has also
    /// reported its first step, as a fleet that has been at work a while has (a job's first progress arms its
    /// deadlines, which writes its record; later steps write only its live part). Every entity is a change still to
    /// take; `jobID` and `nodeID` name them. Placement makes this O(jobs × nodes): meant for small fleets; see
    /// ``copiedRunningFleet(jobs:nodes:training:at:)``.
    public static func runningFleet(jobs: Int, nodes: Int, training: Bool = false, at now: Int64,
                                    jobID: (Int) -> String = { "job-\($0)" }, nodeID: (Int) -> String = { "node-\($0)" }) -> FleetController {
        var core = FleetController(policy: Policy())
        let gpus = (0..<8).map { GPU(index: $0, name: "NVIDIA A100-SXM4-80GB", gpuClass: "a100-80gb", memoryBytes: 80 << 30) }
        for n in 0..<nodes {
            let status = NodeStatus(nodeID: nodeID(n), hostname: "\(nodeID(n)).fleet", agentVersion: "1",
                                    capacity: NodeCapacity(cpuCores: 128, memoryBytes: 2 << 40, gpus: gpus, diskBytes: 8 << 40))
            _ = core.nodeStatusReceived(status, at: now)
        }
        submit(jobs, to: &core, at: now, id: jobID)
        for j in 0..<jobs {
            guard let job = core.job(jobID(j)), !job.nodeID.isEmpty else { continue }
            var reports: [TrainingEvent.Body] = [.accepted(JobAccepted(fencingEpoch: 1)), .started(JobStarted(pid: Int32(truncatingIfNeeded: 1000 + j), memoryLimitBytes: 16 << 30))]
            if training { reports.append(.step(StepProgress(step: 1, epoch: 1, loss: 2.0))) }
            for (sequence, body) in reports.enumerated() {
                let event = TrainingEvent(jobID: job.spec.id, nodeID: job.nodeID, attempt: 1, sequence: UInt64(sequence + 1), timeMs: now, body: body)
                _ = core.eventReceived(event, subjectNode: job.nodeID, at: now)
            }
        }
        return core
    }

    /// The running jobs of a ``runningFleet(jobs:nodes:training:at:jobID:nodeID:)`` as the simulator runs them: each on its node,
    /// on its attempt, with the event sequence after the last it reported.
    public static func runningPlacements(_ core: FleetController) -> [EventSimulator.Placement] {
        core.jobs.filter { $0.status == .running }.map {
            EventSimulator.Placement(jobID: $0.spec.id, nodeID: $0.nodeID, attempt: $0.attempt,
                                     nextSequence: ($0.current?.sequences.contiguous ?? 0) + 1)
        }
    }

    /// What 256 agents' events look like in one batch: an epoch of `count` distinct running jobs.
    public static func epochBatch(_ core: inout FleetController, count: Int, epoch: Int, at now: Int64) -> Int {
        // The first `count` running jobs, taken before any event changes the core (and without sorting the fleet).
        let chosen = Array(core.unorderedJobs.lazy.filter { $0.status == .running }.prefix(count).map { ($0.spec.id, $0.nodeID, $0.attempt) })
        for (jobID, nodeID, attempt) in chosen {
            let metrics = EpochMetrics(epoch: epoch, totalEpochs: 20, loss: 2.0 / Double(epoch + 1), learningRate: 0.001,
                                       durationSeconds: 600, step: epoch * 1000, validation: Validation(loss: 2.2 / Double(epoch + 1), accuracy: 0.5))
            let event = TrainingEvent(jobID: jobID, nodeID: nodeID, attempt: attempt, sequence: UInt64(2 + epoch), timeMs: now, body: .epoch(metrics))
            _ = core.eventReceived(event, subjectNode: nodeID, at: now)
        }
        return chosen.count
    }

    private static func submit(_ jobs: Int, to core: inout FleetController, at now: Int64, id: (Int) -> String = { "job-\($0)" }) {
        for j in 0..<jobs {
            let config = TrainingConfig(
                batchSize: 64, learningRate: 0.001, epochs: 20,
                resources: Resources(memoryBytes: 16 << 30, cpuCores: 4, gpuClass: "a100-80gb", gpuCount: 1))
            let spec = JobSpec(
                id: id(j), name: "resnet-\(j % 97)", team: "team-\(j % 13)", command: ["python3", "/opt/train/resnet.py"],
                config: config, labels: ["kind": "resnet"])
            _ = core.jobSubmitted(spec, at: now)
        }
    }
}

/// A template entity's JSON cut at the template's ids ("node-of-template", "job-<j>-of-template"), so that a copy
/// under other ids is one pass of concatenation instead of a search and replace per id.
private struct IDTemplate: Sendable {
    /// Literal bytes, then the id between it and the next literal: -1 the node, j job j, nil after the last.
    private var pieces: [([UInt8], Int?)] = []

    init(_ text: [UInt8], jobs: Int) {
        let ids = [(Array("node-of-template".utf8), -1)] + (0..<jobs).map { (Array("job-\($0)-of-template".utf8), $0) }
        var literal: [UInt8] = []
        var i = 0
        scan: while i < text.count {
            for (id, slot) in ids where text[i] == id[0] && text.count - i >= id.count && text[i..<(i + id.count)].elementsEqual(id) {
                pieces.append((literal, slot))
                literal = []
                i += id.count
                continue scan
            }
            literal.append(text[i])
            i += 1
        }
        pieces.append((literal, nil))
    }

    func filled(node: String, job: (Int) -> String) -> [UInt8] {
        var out: [UInt8] = []
        for (literal, slot) in pieces {
            out += literal
            guard let slot else { continue }
            out += slot < 0 ? Array(node.utf8) : Array(job(slot).utf8)
        }
        return out
    }
}
