// Fuzz targets for every decoder of bytes from the wire and for the trainer-line parser (issue #14 part 3).
//
// Built two ways from this one file:
// - normally (`swift build`): `archon-fuzz replay <target> <files or folders>…` runs inputs through a target (the
//   committed corpus in Fuzz/corpus is replayed by `make test`: every crash ever found stays fixed), and
//   `archon-fuzz seed <folder>` writes the seed corpus;
// - with libFuzzer (`make fuzz`: `--sanitize fuzzer --sanitize address -Xswiftc -DFUZZING`): libFuzzer's own `main`
//   calls `LLVMFuzzerTestOneInput`, the target named by ARCHON_FUZZ_TARGET.
import ArchonAgent
import ArchonCore
import ArchonModel
import ArchonWire
import Foundation

/// What a target feeds its bytes to.
enum FuzzTarget: String, CaseIterable {
    /// An agent's event: decoded, sanitised, and applied to a controller core that placed its job (the whole path an
    /// event from NATS takes in the controller).
    case event
    /// `archon_desired` values as an agent reads them: signed envelopes and the assignment inside.
    case assignment
    /// A node status (`archon.v1.events.<node>._node` and KV).
    case status
    /// Escalations as platform teams' consumers decode them.
    case escalation
    /// Log requests and replies (the agent's log service and the controller's client of it).
    case logs
    /// A line a trainer prints on its stdout (the training-process contract).
    case trainerLine = "trainer-line"
}

/// A controller core with node n1 and job j placed there as attempt 1: what fuzzed events land on.
private let placedCore: FleetController = {
    var core = FleetController(policy: .runbookDefaults)
    _ = core.eventReceived(seedEvents()[5], subjectNode: "n1", at: 1_767_225_600_000)
    _ = core.datasetRegistered(Dataset(id: "ds", location: "/data/ds"), at: 1_767_225_600_000)
    _ = core.jobSubmitted(spec, at: 1_767_225_600_000)
    return core
}()

private let spec: JobSpec = {
    var spec = JobSpec(id: "j", team: "t")
    spec.command = ["python3", "train.py"]
    spec.config.dataset = "ds"
    return spec
}()

func fuzz(_ target: FuzzTarget, _ bytes: [UInt8]) {
    switch target {
    case .event:
        guard let event = try? TrainingEvent.decode(bytes) else { return }
        let (clean, _) = EventSanitizer.sanitize(event, at: 1_767_225_660_000)
        var core = placedCore
        _ = core.eventReceived(clean, subjectNode: clean.nodeID, at: 1_767_225_660_000)
        _ = core.tick(at: 1_767_225_660_000 + 86_400_000)  // every deadline it armed, a day later
        _ = clean.encoded()
    case .assignment:
        if let signed = try? SignedAssignment.decode(bytes) { _ = try? signed.unverifiedAssignment() }
        _ = try? JobAssignment.decode(bytes)
    case .status:
        _ = (try? NodeStatus.decode(bytes))?.encoded()
    case .escalation:
        _ = try? Escalation.decode(bytes)
        _ = try? Incident.decode(bytes)
    case .logs:
        _ = try? LogRequest.decode(bytes)
        _ = try? LogReply.decode(bytes)
    case .trainerLine:
        _ = try? TrainerLine.parse(String(decoding: bytes, as: UTF8.self))
    }
}

/// Valid inputs the fuzzer starts from, per target.
func seedEvents() -> [TrainingEvent] {
    let t: Int64 = 1_767_225_600_000
    let status = NodeStatus(nodeID: "n1", hostname: "n1",
                            capacity: NodeCapacity(cpuCores: 16, memoryBytes: 64 << 30, gpus: [GPU(index: 0, name: "A100", gpuClass: "a100-40gb", memoryBytes: 40 << 30)], diskBytes: 1 << 40))
    return [
        TrainingEvent(jobID: "j", nodeID: "n1", attempt: 1, sequence: 1, timeMs: t, body: .accepted(JobAccepted(fencingEpoch: 1))),
        TrainingEvent(jobID: "j", nodeID: "n1", attempt: 1, sequence: 2, timeMs: t, body: .started(JobStarted(pid: 42))),
        TrainingEvent(jobID: "j", nodeID: "n1", attempt: 1, sequence: 3, timeMs: t, body: .epoch(EpochMetrics(epoch: 1, totalEpochs: 10, loss: 0.5, durationSeconds: 60, step: 100))),
        TrainingEvent(jobID: "j", nodeID: "n1", attempt: 1, sequence: 4, timeMs: t, body: .exited(JobExited(exitCode: -1, signal: 9, oomKilled: true))),
        TrainingEvent(jobID: "j", nodeID: "n1", attempt: 1, sequence: 5, timeMs: t, body: .heartbeat(Heartbeat())),
        TrainingEvent(jobID: "", nodeID: "n1", attempt: 0, sequence: 1, timeMs: t, body: .nodeStatus(status)),
    ]
}

func seeds(_ target: FuzzTarget) -> [[UInt8]] {
    switch target {
    case .event: return seedEvents().map { $0.encoded() }
    case .assignment: return [JobAssignment(spec: spec, attempt: 1, fencingEpoch: 1, desiredState: .running, nodeID: "n1").encoded()]
    case .status:
        if case .nodeStatus(let status) = seedEvents()[5].body { return [status.encoded()] }
        return []
    case .escalation:
        let incident = Incident(id: "INC-1", dedupKey: "job:j", cause: .job, level: .l2, severity: .high, subject: "Training Failure Escalation - j")
        return [Escalation(kind: .opened, incident: incident, timeMs: 1).encoded(), incident.encoded()]
    case .logs: return [LogRequest(jobID: "j", tail: 100).encoded(), LogReply(lines: ["epoch 1"], error: "").encoded()]
    case .trainerLine:
        return [#"{"type":"epoch","epoch":1,"totalEpochs":5,"loss":0.5,"learningRate":0.01,"durationSeconds":1.2,"step":57,"validation":{"loss":0.6,"accuracy":0.9}}"#,
                #"{"type":"step","step":100,"epoch":2,"loss":"NaN","learningRate":0.01,"samplesPerSecond":900}"#,
                #"{"type":"checkpoint","path":"/abs/ckpt-epoch-0003.npz","epoch":3,"step":171}"#,
                #"{"type":"error","errorClass":"dataset_not_found","message":"no such file"}"#, #"{"type":"heartbeat"}"#].map { Array($0.utf8) }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    fuzz(selectedTarget, Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}

private let selectedTarget: FuzzTarget = {
    let name = ProcessInfo.processInfo.environment["ARCHON_FUZZ_TARGET"] ?? ""
    guard let target = FuzzTarget(rawValue: name) else {
        FileHandle.standardError.write(Data("set ARCHON_FUZZ_TARGET to one of \(FuzzTarget.allCases.map(\.rawValue).joined(separator: ", "))\n".utf8))
        exit(2)
    }
    return target
}()

#if !FUZZING
@main
struct ArchonFuzzReplay {
    static func main() throws {
        let arguments = Array(CommandLine.arguments.dropFirst())
        switch arguments.first {
        case "seed":
            guard arguments.count == 2 else { return usage() }
            for target in FuzzTarget.allCases {
                let folder = URL(fileURLWithPath: arguments[1]).appendingPathComponent(target.rawValue)
                try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
                for (i, input) in seeds(target).enumerated() {
                    try Data(input).write(to: folder.appendingPathComponent("seed-\(i)"))
                }
            }
        case "replay":
            guard arguments.count >= 3, let target = FuzzTarget(rawValue: arguments[1]) else { return usage() }
            var count = 0
            for path in arguments.dropFirst(2) {
                var isFolder: ObjCBool = false
                guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else { continue }
                let files = isFolder.boolValue
                    ? try FileManager.default.contentsOfDirectory(atPath: path).sorted().map { "\(path)/\($0)" } : [path]
                for file in files {
                    fuzz(target, [UInt8](try Data(contentsOf: URL(fileURLWithPath: file))))
                    count += 1
                }
            }
            print("archon-fuzz: \(target.rawValue): \(count) inputs replayed, none crashed")
        default:
            usage()
        }
    }

    static func usage() {
        print("usage: archon-fuzz seed <folder> | archon-fuzz replay <\(FuzzTarget.allCases.map(\.rawValue).joined(separator: "|"))> <files or folders>…")
        exit(2)
    }
}
#endif
