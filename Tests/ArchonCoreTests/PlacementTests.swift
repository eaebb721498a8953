import ArchonModel
import Testing

@testable import ArchonCore

@Suite struct PlacementTests {
    func node(_ id: String, memory: UInt64 = 64 * gib, gpus: [String] = [], cordoned: Bool = false) -> NodeRecord {
        var record = NodeRecord(id: id, at: 0)
        record.status.capacity = NodeCapacity(
            cpuCores: 16, memoryBytes: memory,
            gpus: gpus.enumerated().map { GPU(index: $0.offset, name: $0.element, gpuClass: $0.element, memoryBytes: 40 * gib) })
        record.cordoned = cordoned
        return record
    }

    @Test func theLeastLoadedNodeWithRoomWins() {
        var reserved = Reservation()
        reserved.add(Resources(memoryBytes: 8 * gib))
        let nodes = [node("n1"), node("n2"), node("n3", memory: 4 * gib)]
        let request = Resources(memoryBytes: 8 * gib)
        #expect(Placement.choose(request, nodes: nodes, reservations: ["n1": reserved]) == "n2")
        #expect(Placement.choose(request, nodes: nodes, reservations: [:], prefer: "n2") == "n2")
        #expect(Placement.choose(request, nodes: nodes, reservations: [:], exclude: ["n1", "n2"]) == nil)
    }

    @Test func cordonedNodesAndWrongGPUsAreSkipped() {
        let nodes = [node("n1", gpus: ["a100-40gb"], cordoned: true), node("n2", gpus: ["t4-16gb"]), node("n3", gpus: ["a100-40gb", "a100-40gb"])]
        let request = Resources(gpuClass: "a100-40gb", gpuCount: 2)
        #expect(Placement.choose(request, nodes: nodes, reservations: [:]) == "n3")
        var reserved = Reservation()
        reserved.add(Resources(gpuClass: "a100-40gb", gpuCount: 1))
        #expect(Placement.choose(request, nodes: nodes, reservations: ["n3": reserved]) == nil)
    }

    @Test func jobsFillNodesFromTheLeastLoaded() {
        var fleet = Fleet(nodes: ["n1", "n2"], memory: 16 * gib)
        var placed: [String] = []
        for i in 1...5 {
            placed += decisions(fleet.submit(spec("job-\(i)", memory: 8 * gib)))
        }
        #expect(placed == ["assign job-1#1 → n1", "assign job-2#1 → n2", "assign job-3#1 → n1", "assign job-4#1 → n2"])
        #expect(fleet.job("job-5").status == .queued && fleet.job("job-5").nodeID.isEmpty)
        _ = fleet.start("job-1")
        #expect(decisions(fleet.complete("job-1")) == ["stop job-1#1 on n1", "assign job-5#1 → n1"])
    }
}
