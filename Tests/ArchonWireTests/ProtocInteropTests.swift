import ArchonModel
import ArchonWire
import Testing

/// What we encode, protoc (the reference implementation) reads, field by field.
@Suite struct ProtocInteropTests {
    /// Swift bytes → protoc text → protoc bytes → Swift value: every field survives the trip
    /// through an independent implementation.
    @Test(arguments: Fixtures.samples)
    func protocReadsEveryField(_ sample: Sample) throws {
        let text = try Protoc.decode(sample.bytes, as: sample.protoMessageName)
        let reencoded = try Protoc.encode(text, as: sample.protoMessageName)
        #expect(try sample.reencode(reencoded) == sample.bytes, "protoc read:\n\(text)")
    }

    @Test func exitedEventText() throws {
        let event = Fixtures.events.first { if case .exited = $0.body { true } else { false } }!
        let text = try Protoc.decode(event.encoded(), as: TrainingEvent.protoMessageName)
        for line in [
            #"job_id: "resnet-7""#,
            #"node_id: "gpu-node-3""#,
            "attempt: 2",
            "sequence: 7",
            "exited {",
            "exit_code: -1",
            "signal: 9",
            "oom_killed: true",
            "failure_class: FAILURE_CLASS_OUT_OF_MEMORY",
            #"log_tail: "epoch 6 step 6300""#,
            #"log_tail: """#,
            "runtime_seconds: 4875.25",
            "epochs_completed: 5",
            "stop_requested: true",
        ] {
            #expect(text.contains(line), "missing \(line) in:\n\(text)")
        }
    }

    @Test func lossValuesText() throws {
        let nan = try Protoc.decode(Fixtures.nanEpoch.encoded(), as: TrainingEvent.protoMessageName)
        #expect(nan.contains("loss: nan"), "\(nan)")
        let step = Fixtures.events.first { if case .step = $0.body { true } else { false } }!
        let inf = try Protoc.decode(step.encoded(), as: TrainingEvent.protoMessageName)
        #expect(inf.contains("loss: inf"), "\(inf)")
    }

    @Test func assignmentText() throws {
        let text = try Protoc.decode(Fixtures.assignment.encoded(), as: JobAssignment.protoMessageName)
        for line in [
            "desired_state: DESIRED_STATE_STOPPED",
            "fencing_epoch: 77",
            #"job_id: "resnet-7""#,
            #"command: "--arch=resnet50""#,
            "batch_size: 16",
            "gradient_accumulation_steps: 4",
            "kind: KIND_EXPONENTIAL",
            "decay_steps: 1000",
            "enabled: true",
            "per_epoch_seconds: 1800",
            "keep_last: 5",
            "gpu_count: 2",
            #"dataset_id: "imagenet-subset-v3""#,
            "seed: 1234567890123",
            #"key: "NCCL_DEBUG""#,
            #"value: "WARN""#,
            #"key: "kind""#,
            #"value: "resnet50""#,
        ] {
            #expect(text.contains(line), "missing \(line) in:\n\(text)")
        }
    }

    @Test func nodeStatusText() throws {
        let text = try Protoc.decode(Fixtures.nodeStatus.encoded(), as: NodeStatus.protoMessageName)
        for line in [
            #"key: "zone""#, #"value: "eu-1""#, #"key: "rack""#,
            "memory: ENFORCEMENT_CGROUP_V2", "cpu: ENFORCEMENT_CGROUP_V1", "pids: ENFORCEMENT_WATCHDOG",
            #"gpu_class: "h200-141gb""#, "index: 1", "cpu_cores: 64", #"running_jobs: "bert-2""#,
        ] {
            #expect(text.contains(line), "missing \(line) in:\n\(text)")
        }
    }

    @Test func escalationText() throws {
        let text = try Protoc.decode(Fixtures.escalation.encoded(), as: Escalation.protoMessageName)
        for line in [
            "kind: KIND_ACKNOWLEDGED",
            "cause: INCIDENT_CAUSE_BAD_DATASET",
            "level: ESCALATION_LEVEL_L2",
            "severity: SEVERITY_CRITICAL",
            "status: INCIDENT_STATUS_RESOLVED",
            #"subject: "Training Failure Escalation - resnet-7""#,
            "failure_class: FAILURE_CLASS_DATA_CORRUPTION",
            #"text: "resolved by bob""#,
            #"parent_id: "inc-0040""#,
            "respond_by_ms: 1732874000000",
        ] {
            #expect(text.contains(line), "missing \(line) in:\n\(text)")
        }
    }
}
