import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A TCP relay on a loopback port to another loopback port, that can be cut: what `archon chaos` puts on every
/// route between two nats-servers, so that one server can be cut from its peers while its clients still reach it.
///
/// `cut()` closes every relayed connection and refuses new ones (accepted, then closed at once, as a dropped link
/// looks to a server that redials) until `heal()`. Blocking sockets, a thread per direction: a handful of routes.
public final class RouteProxy: Sendable {
    public let port: Int
    public let target: Int
    private let listener: Int32
    private let state = Mutex<(cut: Bool, open: Set<Int32>, closed: Bool)>((false, [], false))

    /// Listens on a free loopback port and relays each connection to `127.0.0.1:<target>`.
    public init(target: Int) throws {
        self.target = target
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw DevError("socket() failed: \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = Self.loopback(port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 16) == 0 else {
            close(fd)
            throw DevError("cannot listen on a loopback port: \(String(cString: strerror(errno)))")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        listener = fd
        port = Int(UInt16(bigEndian: address.sin_port))
        let thread = Thread { [self] in acceptLoop() }
        thread.name = "archon.chaos.proxy.\(port)"
        thread.start()
    }

    deinit { stop() }

    /// Drops every relayed connection and refuses new ones until ``heal()``.
    public func cut() {
        let open = state.withLock { s -> Set<Int32> in
            s.cut = true
            return s.open
        }
        for fd in open { shutdown(fd, Int32(SHUT_RDWR)) }
    }

    public func heal() { state.withLock { $0.cut = false } }

    /// Stops listening and drops every connection.
    public func stop() {
        let open = state.withLock { s -> Set<Int32> in
            guard !s.closed else { return [] }
            s.closed = true
            s.cut = true
            return s.open
        }
        for fd in open { shutdown(fd, Int32(SHUT_RDWR)) }
        shutdown(listener, Int32(SHUT_RDWR))
    }

    private func acceptLoop() {
        while true {
            let client = accept(listener, nil, nil)
            if client < 0 {
                if errno == EINTR { continue }
                break
            }
            guard !state.withLock({ $0.cut }), let upstream = connectTarget() else {
                close(client)
                continue
            }
            let admitted = state.withLock { s -> Bool in
                guard !s.cut else { return false }
                s.open.formUnion([client, upstream])
                return true
            }
            guard admitted else {
                close(client)
                close(upstream)
                continue
            }
            for (from, to) in [(client, upstream), (upstream, client)] {
                let pump = Thread { [self] in relay(from: from, to: to) }
                pump.start()
            }
        }
        close(listener)
    }

    private func connectTarget() -> Int32? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        var address = Self.loopback(port: target)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(fd)
            return nil
        }
        return fd
    }

    /// Copies `from` to `to` until either side ends, then ends both (the other direction's pump sees it too);
    /// the second pump to finish closes the descriptors.
    private func relay(from: Int32, to: Int32) {
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        loop: while true {
            let n = buffer.withUnsafeMutableBytes { read(from, $0.baseAddress, $0.count) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { break }
            var sent = 0
            while sent < n {
                let w = buffer.withUnsafeBytes { send(to, $0.baseAddress! + sent, n - sent, Int32(MSG_NOSIGNAL)) }
                if w < 0, errno == EINTR { continue }
                guard w > 0 else { break loop }
                sent += w
            }
        }
        shutdown(from, Int32(SHUT_RDWR))
        shutdown(to, Int32(SHUT_RDWR))
        let last = state.withLock { s -> Bool in
            // The first pump to end removes the pair; the second finds it gone and closes.
            if s.open.contains(from) {
                s.open.remove(from)
                s.open.remove(to)
                return false
            }
            return true
        }
        if last {
            close(from)
            close(to)
        }
    }

    private static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        return address
    }
}
