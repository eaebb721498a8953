import ArchonModel
import Foundation

/// The runbook, staged: each failure it describes happens for real on the dev fleet (`archon dev`), with the
/// real numpy trainer (`examples/trainers/digits_mlp.py`) or, where that trainer cannot fail so, the fault
/// trainer (`fault_trainer.py`); the last scenario with the PyTorch trainer (`torch_mlp.py`) — and the fleet must
/// handle it as the runbook says.
public enum ScenarioCatalog {
    /// The node `archon dev --scenarios` brings in broken for scenario 7 (cordoned until then).
    public static let brokenNode = "n3"
    /// What a job on the broken node really gets, while it advertises as much as the others.
    public static let brokenNodeMemory: UInt64 = 64 << 20

    /// Every scenario, in the order the demo runs them. `trainers` is the folder holding the example trainers.
    public static func all(trainers: String) -> [Scenario] {
        let digits = "\(trainers)/digits_mlp.py"
        let fault = "\(trainers)/fault_trainer.py"
        let torch = "\(trainers)/torch_mlp.py"

        let oom = spec("digits-oom", digits, kind: "digits-oom", batch: 1024, lr: 0.01, epochs: 3, memory: 320 << 20, hyper: ["hidden": "12288"])
        let oomAgain = spec("digits-oom-restart", digits, kind: "digits-oom", batch: 1024, lr: 0.01, epochs: 3, memory: 320 << 20,
                           hyper: ["hidden": "12288"])

        return [
            Scenario(
                number: 1, title: "Out of memory", setup: "batch 1024 × hidden 12288 does not fit the job's 320 MiB limit",
                jobs: [oom],
                settled: { $0.job(oom.id)?.status == "completed" || $0.job(oom.id)?.status == "failed" },
                verify: { o in
                    var e = Expectations()
                    completedWithoutPage(o, oom.id, &e)
                    let j = o.job(oom.id)
                    e.expect(j?.history.first?.failureClass == "out_of_memory", "attempt 1 should fail out of memory")
                    e.expect(j?.config.batchSize == 512 && j?.config.gradientAccumulationSteps == 2,
                             "the batch should be halved with accumulation doubled, is \(j?.config.batchSize ?? 0)×\(j?.config.gradientAccumulationSteps ?? 0)")
                    return e.problems
                }),
            Scenario(
                number: 2, title: "Diverging loss", setup: "learning rate 5, ten times too high: the loss explodes to infinity",
                jobs: [spec("digits-diverge", digits, kind: "digits-diverge", lr: 5, epochs: 5, mixed: true, hyper: ["hidden": "64"])],
                settled: { ["completed", "failed"].contains($0.job("digits-diverge")?.status ?? "") },
                verify: { o in
                    var e = Expectations()
                    completedWithoutPage(o, "digits-diverge", &e)
                    let j = o.job("digits-diverge")
                    e.expect(j?.history.first?.failureClass == "diverging_loss", "attempt 1 should diverge, was \(j?.history.first?.failureClass ?? "-")")
                    e.expect(j.map { abs($0.config.learningRate - 0.5) < 1e-9 } ?? false, "the learning rate should be cut to 0.5, is \(j?.config.learningRate ?? 0)")
                    e.expect(j?.history.count == 2, "one cut should be enough, took \(j?.history.count ?? 0) attempts")
                    e.expect(j?.lastMetrics.map { $0.loss.isFinite && $0.loss < 1.0 } ?? false,
                             "after the cut the loss should come down (below 1.0), is \(j?.lastMetrics?.loss ?? .nan)")
                    return e.problems
                }),
            Scenario(
                number: 3, title: "Dataset not found",
                setup: "the job names dataset digits-v9: the registry still lists it, but its files are gone",
                jobs: [spec("digits-missing", digits, kind: "digits-missing", dataset: "digits-v9")],
                prepare: { context in
                    // A wrong id that is not in the registry at all is refused at submission (validation); this one
                    // passes validation and fails where the runbook meets it: when the trainer opens the data.
                    let body = try JSONSerialization.data(withJSONObject: [
                        "id": "digits-v9", "location": "\(context.directory)/datasets/digits-v9.csv.gz", "status": "ready",
                    ])
                    _ = try await context.client.call("POST", "/v1/datasets", body: body)
                },
                settled: { o in o.job("digits-missing")?.status == "failed" && o.pages.contains { $0.jobs.contains("digits-missing") } },
                verify: { o in
                    var e = Expectations()
                    let j = o.job("digits-missing")
                    e.expect(j?.history.count == 1, "no restart: retrying cannot help, ran \(j?.history.count ?? 0) attempts")
                    let page = o.pages.first { $0.jobs.contains("digits-missing") }
                    e.expect(page?.level == "L1", "one L1 incident, got \(page?.level ?? "none")")
                    let named = page?.symptoms.contains { symptom in
                        symptom.components(separatedBy: "ready datasets: ").last?.components(separatedBy: ", ").contains("digits") ?? false
                    } ?? false
                    e.expect(named, "the incident should name the ready datasets: \(page?.symptoms ?? [])")
                    return e.problems
                }),
            Scenario(
                number: 4, title: "Permission denied", setup: "the trainer opens a dataset file it may not read (a real EACCES)",
                jobs: [spec("secret-data", fault, kind: "permission", hyper: ["fault": "permission"])],
                settled: { o in o.job("secret-data")?.status == "failed" && o.pages.contains { $0.jobs.contains("secret-data") } },
                verify: { o in
                    var e = Expectations()
                    e.expect(o.job("secret-data")?.history.count == 1, "no restart for a permission error")
                    let page = o.pages.first { $0.jobs.contains("secret-data") }
                    e.expect(page?.level == "L2" && page?.severity == "critical", "an L2 critical security incident, got \(page?.level ?? "none") \(page?.severity ?? "")")
                    return e.problems
                }),
            Scenario(
                number: 5, title: "Timeout", setup: "epochs take 1.5 s against a 1 s per-epoch limit (15 min, scaled down)",
                // The fault trainer's slow epochs wait rather than compute: how long a numpy epoch takes depends on the
                // machine and its load, and the scenario is about the limit, not the arithmetic.
                jobs: [spec("slow-epochs", fault, kind: "slow", epochs: 3, hyper: ["fault": "slow", "epochSeconds": "1.5"],
                           timeouts: Timeouts(perEpochSeconds: 1, totalSeconds: 300))],
                settled: { ["completed", "failed"].contains($0.job("slow-epochs")?.status ?? "") },
                verify: { o in
                    var e = Expectations()
                    completedWithoutPage(o, "slow-epochs", &e)
                    let j = o.job("slow-epochs")
                    e.expect(j?.history.first?.failureClass == "timeout", "attempt 1 should time out, was \(j?.history.first?.failureClass ?? "-")")
                    e.expect((j?.config.timeouts.perEpochSeconds ?? 0) >= 2, "the epoch limit should be raised, is \(j?.config.timeouts.perEpochSeconds ?? 0) s")
                    return e.problems
                }),
            Scenario(
                number: 6, title: "Hang", setup: "the trainer stops reporting after epoch 1 while its process lives",
                jobs: [spec("stuck-loop", fault, kind: "hang", epochs: 4, hyper: ["fault": "hang_once", "epochSeconds": "0.3"],
                           timeouts: Timeouts(totalSeconds: 300, heartbeatSeconds: 3))],
                settled: { ["completed", "failed"].contains($0.job("stuck-loop")?.status ?? "") },
                verify: { o in
                    var e = Expectations()
                    completedWithoutPage(o, "stuck-loop", &e)
                    let j = o.job("stuck-loop")
                    e.expect(j?.history.first?.failureClass == "hang", "attempt 1 should be killed as hung, was \(j?.history.first?.failureClass ?? "-")")
                    e.expect(!(j?.history.last?.resumeFrom.isEmpty ?? true), "attempt 2 should resume from a checkpoint")
                    return e.problems
                }),
            badNode(digits: digits),
            badDataset(digits: digits),
            Scenario(
                number: 9, title: "Exhausted ladder", setup: "the job needs 400 MiB whatever its batch; every remediation fails",
                jobs: [spec("hopeless", fault, kind: "hopeless", batch: 8, epochs: 2, memory: 96 << 20, hyper: ["fault": "memory", "allocMB": "400"])],
                settled: { o in o.pages.contains { $0.jobs.contains("hopeless") && $0.level == "L2" } },
                verify: { o in
                    var e = Expectations()
                    e.expect(o.job("hopeless")?.status == "failed", "the job should be given up, is \(o.job("hopeless")?.status ?? "-")")
                    let page = o.pages.first { $0.jobs.contains("hopeless") }
                    e.expect((page?.stepsTaken.count ?? 0) >= 3, "the incident should list every step taken, has \(page?.stepsTaken.count ?? 0)")
                    e.expect(page?.level == "L2", "unacknowledged, it should climb from L1 to L2, is \(page?.level ?? "none")")
                    e.expect(page?.timeline.contains { $0.text.contains("L2") } ?? false, "the climb should be in the timeline")
                    return e.problems
                },
                timeout: .seconds(120)),
            Scenario(
                number: 10, title: "Controller restart mid-remediation", setup: "scenario 1 again; the controller dies right after the OOM",
                jobs: [oomAgain],
                during: { context, o in
                    if o.job(oomAgain.id)?.history.first?.failureClass == "out_of_memory", context.once("restart") {
                        print("    ✝ killing the controller; starting a new one")
                        await context.fleet.stopController()
                        try await context.fleet.startController()
                    }
                },
                settled: { ["completed", "failed"].contains($0.job(oomAgain.id)?.status ?? "") },
                verify: { o in
                    var e = Expectations()
                    completedWithoutPage(o, oomAgain.id, &e)
                    e.expect(o.job(oomAgain.id)?.history.count == 2, "exactly one restart, nothing applied twice: \(o.job(oomAgain.id)?.history.count ?? 0) attempts")
                    return e.problems
                }),
            pytorch(torch: torch),
        ]
    }

    static func spec(
        _ id: String, _ script: String, kind: String, batch: Int = 32, lr: Double = 0.1, epochs: Int = 4, memory: UInt64 = 512 << 20,
        mixed: Bool = false, dataset: String = "digits", hyper: [String: String] = [:], timeouts: Timeouts = Timeouts(totalSeconds: 300),
        env: [String: String] = [:]
    ) -> JobSpec {
        JobSpec(id: id, name: id, team: "ml-research", command: ["python3", script], env: env,
                config: TrainingConfig(batchSize: batch, learningRate: lr, mixedPrecision: mixed, epochs: epochs, timeouts: timeouts,
                                       checkpoint: CheckpointPolicy(everyEpochs: 1, keepLast: 3),
                                       resources: Resources(memoryBytes: memory, cpuCores: 0.5), dataset: dataset,
                                       hyperparameters: hyper, seed: 1),
                labels: ["kind": kind])
    }

    static func completedWithoutPage(_ o: Observation, _ id: String, _ e: inout Expectations) {
        e.expect(o.job(id)?.status == "completed", "\(id) should complete, is \(o.job(id)?.status ?? "missing")")
        e.expect(!o.pages.contains { $0.jobs.contains(id) && $0.cause == "job" }, "\(id) should raise no incident")
    }

    /// 7: a node that advertises 8 GiB but really gives each job 64 MiB is brought into service. Two long jobs
    /// already fill the healthy nodes, so the next three land on it — and fail there, while the same kind of job
    /// runs fine elsewhere.
    static func badNode(digits: String) -> Scenario {
        let node = brokenNode
        let tests = ["fleet-a", "fleet-b", "fleet-c"].map {
            spec($0, digits, kind: "digits-fleet", batch: 256, lr: 0.01, epochs: 3, memory: 2 << 30, hyper: ["hidden": "12288"])
        }
        let references = ["fleet-ref-1", "fleet-ref-2"].map {
            spec($0, digits, kind: "digits-fleet", batch: 32, lr: 0.1, epochs: 12, memory: 7 << 30, hyper: ["hidden": "4096"])
        }
        return Scenario(
            number: 7, title: "Bad node",
            setup: "node \(node) joins advertising 8 GiB but gives each job 64 MiB; three jobs are placed on it",
            jobs: tests,
            prepare: { context in
                for reference in references { try await context.client.submit(try jsonText(reference)) }
                _ = try await waitUntil("the reference jobs to run", timeout: .seconds(30)) {
                    let jobs = try await context.client.jobs()
                    return references.allSatisfy { ref in jobs.contains { $0.id == ref.id && $0.status == "running" } } ? true : nil
                }
                print("    reference jobs fleet-ref-1, fleet-ref-2 fill n1 and n2; bringing \(node) into service")
                _ = try await context.client.call("POST", "/v1/nodes/\(node)/uncordon")
            },
            settled: { o in
                o.incidents.contains { $0.cause == "bad_node" } && tests.allSatisfy { ["completed", "failed"].contains(o.job($0.id)?.status ?? "") }
            },
            verify: { o in
                var e = Expectations()
                let fleetPages = o.pages.filter { $0.cause == "bad_node" }
                e.expect(fleetPages.count == 1, "exactly one bad-node incident, got \(fleetPages.count)")
                e.expect(fleetPages.first?.level == "L3" && fleetPages.first?.nodes == [node],
                         "the incident should be L3 about \(node), is \(fleetPages.first?.level ?? "-") \(fleetPages.first?.nodes ?? [])")
                e.expect(o.nodes.first { $0.id == node }?.cordoned == true, "\(node) should be cordoned")
                for t in tests {
                    let j = o.job(t.id)
                    e.expect(j?.status == "completed", "\(t.id) should complete elsewhere, is \(j?.status ?? "-")")
                    e.expect(j?.history.last?.node != node, "\(t.id) should finish off \(node)")
                    e.expect(!o.pages.contains { $0.cause == "job" && $0.jobs.contains(t.id) }, "\(t.id) should not page on its own")
                }
                return e.problems
            },
            timeout: .seconds(150))
    }

    /// 8: a dataset file full of garbage, read by two jobs.
    static func badDataset(digits: String) -> Scenario {
        let jobs = ["corrupt-a", "corrupt-b"].map { spec($0, digits, kind: "digits-corrupt", dataset: "digits-corrupt") }
        return Scenario(
            number: 8, title: "Bad dataset", setup: "dataset digits-corrupt is a file of random bytes; two jobs read it",
            jobs: jobs,
            prepare: { context in
                let path = "\(context.directory)/digits-corrupt.csv.gz"
                var generator = SystemRandomNumberGenerator()
                try Data((0..<65536).map { _ in UInt8.random(in: 0...255, using: &generator) }).write(to: URL(fileURLWithPath: path))
                let body = try JSONSerialization.data(withJSONObject: ["id": "digits-corrupt", "location": path, "status": "ready"])
                _ = try await context.client.call("POST", "/v1/datasets", body: body)
            },
            settled: { o in
                o.incidents.contains { $0.cause == "bad_dataset" } && jobs.allSatisfy { ["paused", "failed"].contains(o.job($0.id)?.status ?? "") }
            },
            verify: { o in
                var e = Expectations()
                let pages = o.pages.filter { $0.cause == "bad_dataset" }
                e.expect(pages.count == 1 && pages.first?.level == "L2" && pages.first?.dataset == "digits-corrupt",
                         "one L2 bad-dataset incident about digits-corrupt, got \(pages.map { "\($0.level) \($0.dataset)" })")
                for j in jobs {
                    e.expect(o.job(j.id)?.status == "paused", "\(j.id) should be paused, not retried, is \(o.job(j.id)?.status ?? "-")")
                    e.expect(!o.pages.contains { $0.cause == "job" && $0.jobs.contains(j.id) }, "\(j.id) should not page on its own")
                }
                return e.problems
            })
    }

    /// 11: the same two failures in a PyTorch trainer (`torch_mlp.py`, through `archon_trainer.pytorch`): PyTorch's
    /// own memory use and its own numerics, answered by the same remediations.
    static func pytorch(torch: String) -> Scenario {
        // hidden 32768: batch 1024 peaks at ~0.7 GiB (killed under 512 MiB), batch 512 × 2 at ~0.45 GiB of cgroup memory.
        let oom = spec("torch-oom", torch, kind: "torch-oom", batch: 1024, lr: 0.05, epochs: 2, memory: 512 << 20,
                       hyper: ["hidden": "32768"])
        // A loss guard (maxLoss) stops the exploding run inside epoch 1, before any checkpoint holds its weights.
        let diverge = spec("torch-diverge", torch, kind: "torch-diverge", lr: 5, epochs: 4, memory: 1 << 30,
                           hyper: ["hidden": "256", "maxLoss": "100"])
        return Scenario(
            number: 11, title: "PyTorch: out of memory and a diverging loss",
            setup: "the PyTorch trainer: batch 1024 × hidden 32768 in 512 MiB, and a learning rate of 5 in another job",
            jobs: [oom, diverge],
            settled: { o in [oom, diverge].allSatisfy { ["completed", "failed"].contains(o.job($0.id)?.status ?? "") } },
            verify: { o in
                var e = Expectations()
                completedWithoutPage(o, oom.id, &e)
                completedWithoutPage(o, diverge.id, &e)
                let big = o.job(oom.id)
                e.expect(big?.history.first?.failureClass == "out_of_memory", "torch-oom attempt 1 should run out of memory, was \(big?.history.first?.failureClass ?? "-")")
                e.expect(big?.config.batchSize == 512 && big?.config.gradientAccumulationSteps == 2,
                         "the batch should be halved with accumulation doubled, is \(big?.config.batchSize ?? 0)×\(big?.config.gradientAccumulationSteps ?? 0)")
                let hot = o.job(diverge.id)
                e.expect(hot?.history.first?.failureClass == "diverging_loss", "torch-diverge attempt 1 should diverge, was \(hot?.history.first?.failureClass ?? "-")")
                e.expect(hot.map { abs($0.config.learningRate - 0.5) < 1e-9 } ?? false, "the learning rate should be cut to 0.5, is \(hot?.config.learningRate ?? 0)")
                e.expect(hot?.lastMetrics.map { $0.loss.isFinite && $0.loss < 1.0 } ?? false,
                         "after the cut the loss should come down (below 1.0), is \(hot?.lastMetrics?.loss ?? .nan)")
                return e.problems
            },
            timeout: .seconds(150))
    }

    /// A job spec as the API takes it.
    static func jsonText(_ spec: JobSpec) throws -> String {
        String(decoding: try JSONEncoder().encode(spec), as: UTF8.self)
    }
}

/// Polls `probe` until it returns a value or `timeout` passes.
func waitUntil<T>(_ what: String, timeout: Duration, _ probe: () async throws -> T?) async throws -> T {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if let value = try await probe() { return value }
        try await Task.sleep(for: .milliseconds(250))
    }
    throw DevError("timed out waiting for \(what)")
}
