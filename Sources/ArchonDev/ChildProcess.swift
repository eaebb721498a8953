public import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// A child process (for tests and `archon chaos`), started with `posix_spawn` and every descriptor above stderr closed in the child.
///
/// Not Foundation's `Process`: on Linux it notices a child's exit when the child's end of a socketpair closes,
/// and that socketpair is not close-on-exec, so another child started at the same moment can inherit it and
/// hide the exit for as long as it lives; its `waitUntilExit()` also blocks the calling thread. With several
/// suites starting controllers, CLIs and nats-servers at once on two cores, that can stall the whole run.
/// Here a thread of its own waits in `waitpid`, and `exitStatus()` suspends without holding a thread.
public final class ChildProcess: Sendable {
    /// The exit code once known, and who waits for it. Shared with the reaper thread, which must not keep the
    /// `ChildProcess` alive: its `deinit` kills the child (a test that fails leaves nothing running).
    private final class Exit: Sendable {
        let state = Mutex<(status: Int32?, waiters: [CheckedContinuation<Int32, Never>])>((nil, []))
    }

    public let pid: pid_t
    private let exit = Exit()

    /// Starts `executable` with `arguments`; stdout and stderr are appended to the files given (or /dev/null).
    public init(_ executable: String, _ arguments: [String], environment: [String: String], stdout: String?, stderr: String?) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdout ?? "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, stderr ?? "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0o644)
        guard let closeFrom = Self.addCloseFrom else {
            throw DevError("posix_spawn_file_actions_addclosefrom_np is missing (glibc 2.34 or newer needed)")
        }
        _ = closeFrom(&actions, 3)

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for p in argv { free(p) }
            for p in envp { free(p) }
        }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, executable, &actions, nil, argv, envp)
        guard result == 0 else {
            throw DevError("cannot start \(executable): \(String(cString: strerror(result)))")
        }
        self.pid = pid
        let exit = self.exit
        let child = pid
        let reaper = Thread {
            var status: Int32 = 0
            while waitpid(child, &status, 0) == -1, errno == EINTR {}
            // Exit code, or 128 + signal as a shell reports it.
            let code = status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
            let waiters = exit.state.withLock { s -> [CheckedContinuation<Int32, Never>] in
                s.status = code
                defer { s.waiters = [] }
                return s.waiters
            }
            for waiter in waiters { waiter.resume(returning: code) }
        }
        reaper.start()
    }

    deinit { kill() }

    /// glibc's close-everything-from file action, looked up at run time: Swift's Glibc module does not
    /// export the GNU extensions of spawn.h.
    private static let addCloseFrom: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32)? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32).self)
    }()

    /// Sends `signal` (SIGKILL: a crash) unless it already exited.
    public func kill(_ signal: Int32 = SIGKILL) {
        if !hasExited { _ = Glibc.kill(pid, signal) }
    }

    public var hasExited: Bool { exit.state.withLock { $0.status != nil } }

    /// The exit code (128 + signal when killed by one), once it has exited.
    public func exitStatus() async -> Int32 {
        await withCheckedContinuation { continuation in
            let done = exit.state.withLock { s -> Int32? in
                if let status = s.status { return status }
                s.waiters.append(continuation)
                return nil
            }
            if let done { continuation.resume(returning: done) }
        }
    }
}

