import Synchronization

/// A bounded buffer between a C thread (producer) and one Swift consumer that takes batches.
///
/// The producer never blocks: when the buffer is full the element is dropped and counted
/// (the owner surfaces the count in logs and metrics). The consumer suspends while empty.
final class BatchBuffer<Element: Sendable>: Sendable {
    private struct State {
        var items: [Element] = []
        var waiter: CheckedContinuation<[Element]?, Never>?
        var finished = false
        var dropped = 0
    }

    private let state = Mutex(State())
    let limit: Int
    let maxBatch: Int

    init(limit: Int, maxBatch: Int) {
        self.limit = max(limit, 1)
        self.maxBatch = max(maxBatch, 1)
    }

    /// Adds an element; returns false (and counts a drop) when full or finished.
    @discardableResult
    func push(_ element: Element) -> Bool {
        let (accepted, resume): (Bool, (CheckedContinuation<[Element]?, Never>, [Element])?) = state.withLock { s in
            guard !s.finished, s.items.count < limit else {
                s.dropped += 1
                return (false, nil)
            }
            s.items.append(element)
            guard let waiter = s.waiter else { return (true, nil) }
            s.waiter = nil
            return (true, (waiter, takeBatch(&s)))
        }
        if let (waiter, batch) = resume { waiter.resume(returning: batch) }
        return accepted
    }

    /// No more elements will come; the consumer drains what is left, then gets nil.
    func finish() {
        let waiter: CheckedContinuation<[Element]?, Never>? = state.withLock { s in
            s.finished = true
            defer { s.waiter = nil }
            return s.items.isEmpty ? s.waiter : nil
        }
        waiter?.resume(returning: nil)
    }

    var dropped: Int { state.withLock { $0.dropped } }

    /// The next batch (1...maxBatch elements), or nil when finished and drained or the task is cancelled.
    func next() async -> [Element]? {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<[Element]?, Never>) in
                let immediate: [Element]?? = state.withLock { s in
                    if !s.items.isEmpty { return .some(takeBatch(&s)) }
                    if s.finished || Task.isCancelled { return .some(nil) }
                    precondition(s.waiter == nil, "BatchBuffer has one consumer")
                    s.waiter = continuation
                    return .none
                }
                if let immediate { continuation.resume(returning: immediate) }
            }
        } onCancel: {
            let waiter = state.withLock { s in
                defer { s.waiter = nil }
                return s.waiter
            }
            waiter?.resume(returning: nil)
        }
    }

    private func takeBatch(_ s: inout State) -> [Element] {
        if s.items.count <= maxBatch {
            defer { s.items.removeAll(keepingCapacity: true) }
            return s.items
        }
        let batch = Array(s.items.prefix(maxBatch))
        s.items.removeFirst(maxBatch)
        return batch
    }
}
