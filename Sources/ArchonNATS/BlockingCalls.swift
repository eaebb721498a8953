import Dispatch
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Runs blocking nats.c calls (JetStream publish, fetch, KV) on Dispatch threads,
/// never on the Swift concurrency pool, which has one thread per core.
struct BlockingCalls: Sendable {
    let queue: DispatchQueue

    init(label: String, serial: Bool = false) {
        queue = DispatchQueue(label: label, attributes: serial ? [] : .concurrent)
    }

    func run<T: Sendable>(_ body: @escaping @Sendable () throws(NATSError) -> T) async throws(NATSError) -> T {
        let result: Result<T, NATSError> = await withCheckedContinuation { continuation in
            queue.async {
                do throws(NATSError) {
                    continuation.resume(returning: .success(try body()))
                } catch {
                    continuation.resume(returning: .failure(error))
                }
            }
        }
        return try result.get()
    }
}

/// C strings that live as long as this object: for nats.c option structs that hold `const char *`.
final class CStrings {
    private var pointers: [UnsafeMutablePointer<CChar>] = []

    func add(_ string: String) -> UnsafePointer<CChar> {
        let p = strdup(string)!
        pointers.append(p)
        return UnsafePointer(p)
    }

    func add(_ string: String?) -> UnsafePointer<CChar>? {
        string.map { add($0) }
    }

    deinit {
        for p in pointers { free(p) }
    }
}
