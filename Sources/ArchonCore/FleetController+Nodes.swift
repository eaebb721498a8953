import ArchonModel

// Nodes: liveness, status, resource pressure.
extension FleetController {
    /// Any event from a node: it is alive.
    mutating func touchNode(_ nodeID: String, at now: Int64, _ out: inout [ControllerAction]) {
        guard !nodeID.isEmpty else { return }
        var node = state.nodes[nodeID] ?? NodeRecord(id: nodeID, at: now)
        let cameBack = node.health == .offline
        if now - node.lastSeenMs >= policy.detection.nodeSilence.milliseconds / 4 { node.heardAgainAtMs = now }
        node.lastSeenMs = max(node.lastSeenMs, now)
        node.health = .online
        state.nodes[nodeID] = node
        if state.deadlines.due[.nodeSilence(nodeID: nodeID)] == nil {
            state.deadlines.set(.nodeSilence(nodeID: nodeID), at: node.lastSeenMs + policy.detection.nodeSilence.milliseconds, &out)
        }
        if cameBack { placeWaitingJobs(at: now, &out) }
    }

    mutating func applyNodeStatus(_ status: NodeStatus, eventTimeMs: Int64, at now: Int64, _ out: inout [ControllerAction]) {
        guard var node = state.nodes[status.nodeID], eventTimeMs >= node.statusTimeMs else { return }
        let grew = node.capacity != status.capacity
        let pressureBefore = node.pressure
        node.status = status
        node.statusTimeMs = eventTimeMs
        node.pressure = ResourcePressure.of(status, threshold: policy.correlation.systemResource.threshold)
        state.nodes[status.nodeID] = node
        // The fleet-wide fraction only moves when a node's pressure does: no walk over every node per status.
        if node.pressure != pressureBefore { evaluateNodePressure(at: now, &out) }
        if grew { placeWaitingJobs(at: now, &out) }
    }

    /// The node-silence deadline came: a node still silent is lost and its jobs are re-placed.
    mutating func checkNodeSilence(_ nodeID: String, at now: Int64, _ out: inout [ControllerAction]) {
        guard var node = state.nodes[nodeID], node.health == .online else { return }
        let deadline = max(node.lastSeenMs, state.heardAgainAtMs) + policy.detection.nodeSilence.milliseconds
        if now < deadline {
            state.deadlines.set(.nodeSilence(nodeID: nodeID), at: deadline, &out)
            return
        }
        node.health = .offline
        state.nodes[nodeID] = node
        let evidence = "node \(nodeID) silent since \(Timestamp.iso8601(node.lastSeenMs)) (limit \(policy.detection.nodeSilence))"
        let onNode = state.jobs.active(on: nodeID).compactMap { state.jobs[$0] }
            .filter { !($0.current?.isOver ?? true) }
            .map(\.spec.id).sorted()
        for jobID in onNode {
            fail(jobID, Finding(symptom: .nodeFault, evidence: evidence, failureTimeMs: node.lastSeenMs), processMayBeAlive: true, at: now, &out)
        }
    }

    /// Nodes that are online.
    var onlineNodes: [NodeRecord] { nodes.filter { $0.health == .online } }
}
