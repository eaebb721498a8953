internal import CProtobufC

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Owns every C allocation of one protobuf-c message tree while it is built and packed.
///
/// protobuf-c messages hold `char *` strings and arrays of pointers to sub-messages; deep trees with
/// repeated strings and maps are far simpler to build from copies than from nested `withCString`
/// scopes. The arena copies, and frees everything in `deinit`: keep it alive (`withExtendedLifetime`)
/// until `pack` has returned, and let no pointer escape.
final class CArena {
    private var blocks: [UnsafeMutableRawPointer] = []

    init() {}

    deinit {
        for block in blocks {
            free(block)
        }
    }

    /// A NUL-terminated copy of `string`. protobuf-c strings end at the first NUL, so a Swift string
    /// containing one is cut there.
    func string(_ string: String) -> UnsafeMutablePointer<CChar> {
        let copy = string.withCString { strdup($0) }
        guard let copy else { preconditionFailure("strdup failed: out of memory") }
        blocks.append(UnsafeMutableRawPointer(copy))
        return copy
    }

    /// A `bytes` field: a copy of `bytes`.
    func bytes(_ bytes: [UInt8]) -> ProtobufCBinaryData {
        let copy = allocate(UInt8.self, count: bytes.count)
        copy.initialize(from: bytes, count: bytes.count)
        return ProtobufCBinaryData(len: bytes.count, data: copy)
    }

    /// Uninitialised memory for `count` values of a C type (trivial, so no deinitialisation).
    func allocate<T>(_: T.Type, count: Int) -> UnsafeMutablePointer<T> {
        guard let raw = malloc(Swift.max(1, count) * MemoryLayout<T>.stride) else {
            preconditionFailure("malloc failed: out of memory")
        }
        blocks.append(raw)
        return raw.bindMemory(to: T.self, capacity: Swift.max(1, count))
    }

    /// A repeated string field: its count and array.
    func strings(_ list: [String]) -> (count: Int, array: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) {
        guard !list.isEmpty else { return (0, nil) }
        let array = allocate(UnsafeMutablePointer<CChar>?.self, count: list.count)
        for (index, element) in list.enumerated() {
            (array + index).initialize(to: string(element))
        }
        return (list.count, array)
    }

    /// A singular sub-message, initialised by its generated `*__init` and filled from `value`.
    func message<Value: CMessageConvertible>(_ value: Value) -> UnsafeMutablePointer<Value.CMessage> {
        let message = allocate(Value.CMessage.self, count: 1)
        Value.cInit(message)
        value.fill(&message.pointee, in: self)
        return message
    }

    /// A repeated sub-message field: its count and array of pointers.
    func messages<Value: CMessageConvertible>(
        _ values: [Value]
    ) -> (count: Int, array: UnsafeMutablePointer<UnsafeMutablePointer<Value.CMessage>?>?) {
        guard !values.isEmpty else { return (0, nil) }
        let array = allocate(UnsafeMutablePointer<Value.CMessage>?.self, count: values.count)
        for (index, value) in values.enumerated() {
            (array + index).initialize(to: message(value))
        }
        return (values.count, array)
    }

    /// A `map<string, string>` field: repeated entry messages, sorted by key so that encoding is deterministic.
    func map<Entry>(
        _ dictionary: [String: String],
        _ initEntry: (UnsafeMutablePointer<Entry>?) -> Void,
        _ set: (inout Entry, _ key: UnsafeMutablePointer<CChar>, _ value: UnsafeMutablePointer<CChar>) -> Void
    ) -> (count: Int, array: UnsafeMutablePointer<UnsafeMutablePointer<Entry>?>?) {
        guard !dictionary.isEmpty else { return (0, nil) }
        let array = allocate(UnsafeMutablePointer<Entry>?.self, count: dictionary.count)
        for (index, (key, value)) in dictionary.sorted(by: { $0.key < $1.key }).enumerated() {
            let entry = allocate(Entry.self, count: 1)
            initEntry(entry)
            set(&entry.pointee, string(key), string(value))
            (array + index).initialize(to: entry)
        }
        return (dictionary.count, array)
    }
}
