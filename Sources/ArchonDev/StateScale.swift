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
        for j in 0..<jobs {
            let config = TrainingConfig(
                batchSize: 64, learningRate: 0.001, epochs: 20,
                resources: Resources(memoryBytes: 16 << 30, cpuCores: 4, gpuClass: "a100-80gb", gpuCount: 1))
            let spec = JobSpec(
                id: "job-\(j)", name: "resnet-\(j % 97)", team: "team-\(j % 13)", command: ["python3", "/opt/train/resnet.py"],
                config: config, labels: ["kind": "resnet"])
            _ = core.jobSubmitted(spec, at: now)
        }
        for n in 0..<nodes {
            _ = core.nodeStatusReceived(NodeStatus(nodeID: "node-\(n)", hostname: "gpu-\(n).fleet", agentVersion: "1"), at: now)
        }
        return core
    }
}
