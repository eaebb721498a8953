public import ArchonCore
import ArchonModel

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

    /// A fleet at work: `nodes` nodes with 8 GPUs each, then `jobs` jobs of one GPU; those that fit are placed and
    /// started (their agents reported accepted and started), the rest wait. Placement makes this O(jobs × nodes):
    /// meant for release builds.
    public static func runningFleet(jobs: Int, nodes: Int, at now: Int64) -> FleetController {
        var core = FleetController(policy: Policy())
        let gpus = (0..<8).map { GPU(index: $0, name: "NVIDIA A100-SXM4-80GB", gpuClass: "a100-80gb", memoryBytes: 80 << 30) }
        for n in 0..<nodes {
            let status = NodeStatus(nodeID: "node-\(n)", hostname: "gpu-\(n).fleet", agentVersion: "1",
                                    capacity: NodeCapacity(cpuCores: 128, memoryBytes: 2 << 40, gpus: gpus, diskBytes: 8 << 40))
            _ = core.nodeStatusReceived(status, at: now)
        }
        submit(jobs, to: &core, at: now)
        for j in 0..<jobs {
            guard let job = core.job("job-\(j)"), !job.nodeID.isEmpty else { continue }
            for (sequence, body) in [TrainingEvent.Body.accepted(JobAccepted(fencingEpoch: 1)), .started(JobStarted(pid: Int32(truncatingIfNeeded: 1000 + j), memoryLimitBytes: 16 << 30))].enumerated() {
                let event = TrainingEvent(jobID: job.spec.id, nodeID: job.nodeID, attempt: 1, sequence: UInt64(sequence + 1), timeMs: now, body: body)
                _ = core.eventReceived(event, subjectNode: job.nodeID, at: now)
            }
        }
        return core
    }

    /// The running jobs of a ``runningFleet(jobs:nodes:at:)`` as the simulator runs them: each on its node, on attempt
    /// 1, its next event sequence 3 (1 and 2 were its accepted and started).
    public static func runningPlacements(_ core: FleetController) -> [EventSimulator.Placement] {
        core.jobs.filter { $0.status == .running }.map {
            EventSimulator.Placement(jobID: $0.spec.id, nodeID: $0.nodeID, attempt: $0.attempt, nextSequence: 3)
        }
    }

    /// What 256 agents' events look like in one batch: an epoch of `count` distinct running jobs.
    public static func epochBatch(_ core: inout FleetController, count: Int, epoch: Int, at now: Int64) -> Int {
        var applied = 0
        for job in core.jobs where job.status == .running {
            guard applied < count else { break }
            let metrics = EpochMetrics(epoch: epoch, totalEpochs: 20, loss: 2.0 / Double(epoch + 1), learningRate: 0.001,
                                       durationSeconds: 600, step: epoch * 1000, validation: Validation(loss: 2.2 / Double(epoch + 1), accuracy: 0.5))
            let event = TrainingEvent(jobID: job.spec.id, nodeID: job.nodeID, attempt: job.attempt, sequence: UInt64(2 + epoch), timeMs: now, body: .epoch(metrics))
            _ = core.eventReceived(event, subjectNode: job.nodeID, at: now)
            applied += 1
        }
        return applied
    }

    private static func submit(_ jobs: Int, to core: inout FleetController, at now: Int64) {
        for j in 0..<jobs {
            let config = TrainingConfig(
                batchSize: 64, learningRate: 0.001, epochs: 20,
                resources: Resources(memoryBytes: 16 << 30, cpuCores: 4, gpuClass: "a100-80gb", gpuCount: 1))
            let spec = JobSpec(
                id: "job-\(j)", name: "resnet-\(j % 97)", team: "team-\(j % 13)", command: ["python3", "/opt/train/resnet.py"],
                config: config, labels: ["kind": "resnet"])
            _ = core.jobSubmitted(spec, at: now)
        }
    }
}
