import Dispatch

/// A reader thread handing what it reads to an async iterator, with back-pressure: the thread takes a credit before
/// each element and waits while `limit` elements are unread; the iterator gives one back per element it takes. Nothing
/// is dropped. What ``KVWatch`` and ``StreamReplay`` share.
final class CreditedPump<Element: Sendable>: @unchecked Sendable {
    private let stream: AsyncStream<Element>
    private let credits: DispatchSemaphore
    private let done = DispatchSemaphore(value: 0)

    /// Starts `read` on a Dispatch thread of its own; it passes each element to `send` and returns when its source ends.
    init(label: String, limit: Int, read: @escaping @Sendable (_ send: (Element) -> Void) -> Void) {
        // Made at 0 and raised: libdispatch traps when a semaphore is freed below the value it was made with, and a
        // reader stopped early leaves credits taken.
        let credits = DispatchSemaphore(value: 0)
        for _ in 0..<max(limit, 1) { credits.signal() }
        let (stream, continuation) = AsyncStream.makeStream(of: Element.self, bufferingPolicy: .unbounded)
        self.stream = stream
        self.credits = credits
        let done = self.done
        DispatchQueue(label: label).async {
            read { element in
                credits.wait()
                continuation.yield(element)
            }
            continuation.finish()
            done.signal()
        }
    }

    /// Once the source is told to stop: lets the thread go on should it wait for a credit, and waits until it ended.
    func awaitReaderEnd() {
        credits.signal()
        done.wait()
    }

    struct Iterator {
        var base: AsyncStream<Element>.AsyncIterator
        let pump: CreditedPump

        mutating func next() async -> Element? {
            let element = await base.next()
            if element != nil { pump.credits.signal() }
            return element
        }
    }

    func makeIterator() -> Iterator { Iterator(base: stream.makeAsyncIterator(), pump: self) }
}
