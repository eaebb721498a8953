import ArchonCore
import HeapModule

/// The core's timers, earliest first: scheduling, cancelling and taking the due ones cost O(log n), whatever the
/// number of jobs. Cancelled or moved timers leave stale heap entries behind, skipped when they come up and
/// dropped when they outnumber the live ones.
struct TimerQueue {
    private struct Entry: Comparable {
        var atMs: Int64
        var id: TimerID
        static func < (a: Entry, b: Entry) -> Bool { a.atMs != b.atMs ? a.atMs < b.atMs : a.id < b.id }
    }

    private var due: [TimerID: Int64] = [:]
    private var heap = Heap<Entry>()

    mutating func schedule(_ id: TimerID, at ms: Int64) {
        due[id] = ms
        heap.insert(Entry(atMs: ms, id: id))
        if heap.count > 2 * due.count + 1024 { heap = Heap(due.map { Entry(atMs: $0.value, id: $0.key) }) }
    }

    mutating func cancel(_ id: TimerID) { due[id] = nil }

    /// The timers due at `now`, earliest first; they are no longer scheduled.
    mutating func popDue(atMs now: Int64) -> [TimerID] {
        var out: [TimerID] = []
        while let first = heap.min, first.atMs <= now {
            heap.removeMin()
            if due[first.id] == first.atMs {
                due[first.id] = nil
                out.append(first.id)
            }
        }
        return out
    }

    mutating func removeAll() {
        due = [:]
        heap = Heap()
    }
}
