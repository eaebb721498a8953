public import ArchonModel
import Dispatch
import Foundation
public import Logging
import Synchronization

/// This node's GPU facts from nvidia-smi, refreshed on its own schedule so that supervision only ever reads the
/// latest answer and never waits for the driver.
///
/// A hung nvidia-smi (a wedged driver leaves it in uninterruptible sleep) costs one `timeout`; it is killed, and
/// while it lingers no second one is started. No nvidia-smi, a failure or a timeout all mean "no GPU facts":
/// the GPUs seen last stay in the node's capacity (hardware does not vanish), usage reads as unknown (zero).
public final class GPUSampler: Sendable {
    /// How one nvidia-smi run ended.
    public enum Outcome: Sendable, Equatable {
        /// Exit 0, with its standard output.
        case output(String)
        /// It could not start or exited non-zero.
        case failed(String)
        /// Still running at the timeout: SIGKILLed and not waited for.
        case timedOut(pid: Int32)
    }

    struct State {
        var facts: GPUFacts?
        var factsAt: ContinuousClock.Instant?
        var capacity: [GPU] = []
        /// The nvidia-smi that timed out, while it is still alive: (pid, start time).
        var lingering: (pid: Int32, startTime: UInt64)?
        var healthy = true
    }

    let executable: String?
    let timeout: Duration
    let logger: Logger
    private let state = Mutex(State())

    /// - Parameter executable: nvidia-smi, or nil where there is none (then this never runs anything).
    public init(executable: String? = NvidiaSMI.locate(), timeout: Duration = .seconds(5), logger: Logger) {
        self.executable = executable
        self.timeout = timeout
        self.logger = logger
    }

    /// The GPUs of the last successful query.
    public var gpus: [GPU] { state.withLock { $0.capacity } }

    /// The latest facts if taken within `maxAge`; nil otherwise (nothing to report beats a stale number).
    public func facts(maxAge: Duration, now: ContinuousClock.Instant = .now) -> GPUFacts? {
        state.withLock { s in
            guard let at = s.factsAt, now - at <= maxAge else { return nil }
            return s.facts
        }
    }

    /// Refreshes every `interval` until cancelled, off the cooperative pool (nvidia-smi blocks for up to `timeout`).
    public func run(every interval: Duration) async {
        guard executable != nil else { return }
        while !Task.isCancelled {
            await refreshOffPool()
            try? await Task.sleep(for: interval)
        }
    }

    /// One refresh on a dispatch thread.
    public func refreshOffPool() async {
        guard executable != nil else { return }
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async {
                self.refresh()
                done.resume()
            }
        }
    }

    /// Queries the GPUs, then their processes; blocks for at most two timeouts.
    public func refresh() {
        guard let executable else { return }
        let busy = state.withLock { s -> Bool in
            guard let stuck = s.lingering else { return false }
            if NodeProbe.startTime(pid: stuck.pid) == stuck.startTime { return true }
            s.lingering = nil
            return false
        }
        if busy { return }
        let gpuOutcome = Self.run(executable, NvidiaSMI.gpuQuery, timeout: timeout)
        guard case .output(let gpuText) = gpuOutcome else { return failed(gpuOutcome, query: "gpu") }
        let gpus = NvidiaSMI.parseGPUs(gpuText)
        var apps = NvidiaSMI.Parsed<NvidiaSMI.ComputeApp>(items: [], skipped: [])
        let appsOutcome = Self.run(executable, NvidiaSMI.computeAppsQuery, timeout: timeout)
        switch appsOutcome {
        case .output(let text): apps = NvidiaSMI.parseComputeApps(text)
        case .failed, .timedOut: return failed(appsOutcome, query: "compute-apps")
        }
        let skipped = gpus.skipped + apps.skipped
        if !skipped.isEmpty {
            logger.debug("agent.gpu.lines_skipped", metadata: ["gpu.skipped": "\(skipped.count)", "gpu.first_skipped": "\(skipped[0].prefix(200))"])
        }
        let facts = GPUFacts(gpus: gpus.items, apps: apps.items)
        let recovered = state.withLock { s -> Bool in
            s.facts = facts
            s.factsAt = .now
            if !facts.gpus.isEmpty { s.capacity = facts.capacity }
            defer { s.healthy = true }
            return !s.healthy
        }
        if recovered { logger.info("agent.gpu.nvidia_smi_recovered") }
    }

    private func failed(_ outcome: Outcome, query: String) {
        let (first, why) = state.withLock { s -> (Bool, String) in
            s.facts = nil
            s.factsAt = nil
            let why: String
            switch outcome {
            case .output: why = "no output"
            case .failed(let message): why = message
            case .timedOut(let pid):
                s.lingering = NodeProbe.startTime(pid: pid).map { (pid, $0) }
                why = "no answer within \(timeout), killed pid \(pid)"
            }
            defer { s.healthy = false }
            return (s.healthy, why)
        }
        // Once per outage: a broken driver must not flood the log every sample.
        if first {
            logger.warning("agent.gpu.nvidia_smi_failed", metadata: ["gpu.query": "\(query)", "reason": "\(why)"])
        }
    }

    /// Runs a program, waiting at most `timeout`; on timeout it is SIGKILLed and not waited for.
    public static func run(_ executable: String, _ arguments: [String], timeout: Duration) -> Outcome {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        let exited = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in exited.signal() }
        do {
            try process.run()
        } catch {
            return .failed("cannot run \(executable): \(error)")
        }
        // Read while it runs: a full pipe would block it.
        let output = OutputBuffer()
        let reader = pipe.fileHandleForReading
        let drained = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            output.store(reader.readDataToEndOfFile())
            drained.signal()
        }
        let pid = process.processIdentifier
        if exited.wait(timeout: .now() + .milliseconds(Int(clamping: timeout.millis))) == .timedOut {
            kill(pid, SIGKILL)
            return .timedOut(pid: pid)
        }
        // A grandchild could hold the pipe open; do not wait for it long.
        guard drained.wait(timeout: .now() + .seconds(1)) == .success else {
            return .failed("\(executable) exited but its output stayed open")
        }
        guard process.terminationReason == .exit, process.terminationStatus == 0 else {
            return .failed("\(executable) \(arguments.first ?? "") ended with status \(process.terminationStatus)")
        }
        return .output(String(decoding: output.data, as: UTF8.self))
    }
}

/// Hands the reader thread's bytes to the waiting caller.
private final class OutputBuffer: Sendable {
    private let bytes = Mutex(Data())
    func store(_ data: Data) { bytes.withLock { $0 = data } }
    var data: Data { bytes.withLock { $0 } }
}
