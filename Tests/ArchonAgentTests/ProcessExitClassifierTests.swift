import ArchonAgent
import ArchonModel
import Testing

/// Every signature of the table, from realistic output.
@Suite struct ProcessExitClassifierTests {
    static let samples: [(String, [String], FailureClass)] = [
        ("PyTorch CUDA OOM", [
            "Traceback (most recent call last):",
            "  File \"train.py\", line 88, in <module>",
            "torch.cuda.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 39.59 GiB total capacity; 36.10 GiB already allocated)",
        ], .outOfMemory),
        ("Python MemoryError", ["  File \"digits_mlp.py\", line 120, in forward", "MemoryError"], .outOfMemory),
        ("numpy allocation", ["numpy.core._exceptions._ArrayMemoryError: Unable to allocate 3.00 GiB for an array with shape (1024, 393216) and data type float64"], .outOfMemory),
        ("C++ bad_alloc", ["terminate called after throwing an instance of 'std::bad_alloc'", "  what():  std::bad_alloc"], .outOfMemory),
        ("NaN loss", ["Epoch 3: loss=nan", "ValueError: Loss is NaN at step 1200, stopping"], .divergingLoss),
        ("FloatingPointError", ["FloatingPointError: Minimum loss scale reached (0.0001)."], .divergingLoss),
        ("dataset missing", ["FileNotFoundError: [Errno 2] No such file or directory: '/data/imagenet/train'"], .datasetNotFound),
        ("permission", ["PermissionError: [Errno 13] Permission denied: '/mnt/datasets/secret.bin'"], .permissionDenied),
        ("s3 access denied", ["botocore.exceptions.ClientError: An error occurred (AccessDenied) when calling the GetObject operation: Access Denied"], .permissionDenied),
        ("gzip corrupt", ["zlib.error: Error -3 while decompressing data: invalid block type"], .dataCorruption),
        ("pickle corrupt", ["_pickle.UnpicklingError: invalid load key, '\\x00'."], .dataCorruption),
        ("plain crash", ["RuntimeError: something unexpected"], .crash),
    ]

    @Test(arguments: 0..<samples.count)
    func signature(_ index: Int) {
        let (name, tail, expected) = Self.samples[index]
        let (found, detail) = ProcessExitClassifier().classify(ExitObservation(exitCode: 1, logTail: ["starting", "epoch 1"] + tail))
        #expect(found == expected, "\(name): \(detail)")
    }

    @Test func everySignatureRowHasASample() {
        for signature in ProcessExitClassifier.signatures {
            let covered = Self.samples.contains { sample in
                sample.2 == signature.failureClass && sample.1.contains { line in signature.substrings.contains { line.contains($0) } }
            }
            #expect(covered, "no sample exercises \(signature.name)")
        }
    }

    /// Node resource faults from real output: (name, tail, fault). The checkpoint folder is `checkpointDirectory`.
    static let checkpointDirectory = "/var/lib/archon/jobs/job-1/checkpoints"
    static let nodeResourceSamples: [(String, [String], NodeResourceFault)] = [
        ("Python ENOSPC", [
            "Traceback (most recent call last):",
            "  File \"fault_trainer.py\", line 120, in write_checkpoint",
            "OSError: [Errno 28] No space left on device: '/var/lib/archon/jobs/job-1/checkpoints/ckpt-epoch-0002.npz'",
        ], .diskFull),
        ("torch.save on a full disk", ["RuntimeError: [enforce fail at inline_container.cc:595] . unexpected pos 2048 vs 1984", "RuntimeError: PytorchStreamWriter failed writing file data/0: file write failed: No space left on device"], .diskFull),
        ("errno name", ["checkpoint: write failed: ENOSPC"], .diskFull),
        ("quota", ["OSError: [Errno 122] Disk quota exceeded: '/home/trainer/ckpt.pt'"], .diskFull),
        ("quota by errno name", ["save_checkpoint: write(fd=7) failed: EDQUOT"], .diskFull),
        ("read-only mount", ["OSError: [Errno 30] Read-only file system: '/var/lib/archon/jobs/job-1/checkpoints/ckpt-epoch-0001.npz'"], .checkpointDirectoryNotWritable),
        ("EROFS by name", ["tar: ckpt: Cannot open: EROFS"], .checkpointDirectoryNotWritable),
        ("permission on the checkpoint folder", ["PermissionError: [Errno 13] Permission denied: '/var/lib/archon/jobs/job-1/checkpoints/ckpt-epoch-0001.npz'"], .checkpointDirectoryNotWritable),
    ]

    @Test(arguments: 0..<nodeResourceSamples.count)
    func nodeResourceSignature(_ index: Int) {
        let (name, tail, fault) = Self.nodeResourceSamples[index]
        let observation = ExitObservation(exitCode: 1, logTail: ["starting", "epoch 1"] + tail, checkpointDirectory: Self.checkpointDirectory)
        let (found, detail) = ProcessExitClassifier().classify(observation)
        #expect(found == .nodeFault, "\(name): \(detail)")
        let parsed = NodeResourceFault.parse(detail)
        #expect(parsed?.fault == fault, "\(name): \(detail)")
        #expect(parsed?.what == tail.last, "\(name): the detail quotes the line")
    }

    @Test func everyNodeResourceSubstringHasASample() {
        for (fault, substrings) in ProcessExitClassifier.nodeResourceSignatures {
            for substring in substrings {
                let covered = Self.nodeResourceSamples.contains { $0.2 == fault && $0.1.contains { $0.contains(substring) } }
                #expect(covered, "no sample exercises \(substring)")
            }
        }
    }

    @Test func nodeResourceEvidenceOrder() {
        let classifier = ProcessExitClassifier()
        let full = "OSError: [Errno 28] No space left on device"
        // Outranks the trainer's own report: the helper reports an OSError as `crash`, a PermissionError as
        // `permission_denied`.
        #expect(classifier.classify(ExitObservation(exitCode: 1, reportedErrorClass: .crash, logTail: [full])).0 == .nodeFault)
        let denied = "PermissionError: [Errno 13] Permission denied: '\(Self.checkpointDirectory)/ckpt-1.npz'"
        #expect(classifier.classify(ExitObservation(exitCode: 1, reportedErrorClass: .permissionDenied, logTail: [denied], checkpointDirectory: Self.checkpointDirectory)).0 == .nodeFault)
        // The trainer's error message alone is enough: a full disk may have kept the traceback out of the log.
        let (found, detail) = classifier.classify(ExitObservation(exitCode: 1, reportedErrorClass: .crash, reportedErrorMessage: full, logTail: ["epoch 1"]))
        #expect(found == .nodeFault && detail == "disk full: \(full)")
        // Permission denied elsewhere stays a security concern.
        #expect(classifier.classify(ExitObservation(exitCode: 1, logTail: ["PermissionError: [Errno 13] Permission denied: '/data/secret'"], checkpointDirectory: Self.checkpointDirectory)).0 == .permissionDenied)
        // The agent's own reasons, the kernel's OOM kill and exit 0 still come first.
        #expect(classifier.classify(ExitObservation(exitCode: nil, signal: 15, killedByAgent: .hang, logTail: [full])).0 == .hang)
        #expect(classifier.classify(ExitObservation(exitCode: nil, signal: 9, cgroupOOMKill: true, logTail: [full])).0 == .outOfMemory)
        #expect(classifier.classify(ExitObservation(exitCode: 0, logTail: [full])).0 == .none)
    }

    @Test func evidenceOrder() {
        let classifier = ProcessExitClassifier()
        // The kernel's OOM kill wins over any text.
        #expect(classifier.classify(ExitObservation(exitCode: nil, signal: 9, cgroupOOMKill: true, logTail: ["PermissionError"])).0 == .outOfMemory)
        // SIGKILL without the cgroup counter is not an OOM.
        #expect(classifier.classify(ExitObservation(exitCode: nil, signal: 9)).0 == .crash)
        // The agent's own reason wins.
        #expect(classifier.classify(ExitObservation(exitCode: nil, signal: 15, killedByAgent: .hang)).0 == .hang)
        #expect(classifier.classify(ExitObservation(exitCode: nil, signal: 15, killedByAgent: .epochTimeout)).0 == .timeout)
        #expect(classifier.classify(ExitObservation(exitCode: nil, signal: 15, killedByAgent: .stopRequested)).0 == .none)
        // The trainer's own report wins over text.
        #expect(classifier.classify(ExitObservation(exitCode: 1, reportedErrorClass: .dataCorruption, logTail: ["FileNotFoundError"])).0 == .dataCorruption)
        // Exit 0 is success, whatever it printed.
        #expect(classifier.classify(ExitObservation(exitCode: 0, logTail: ["warning: MemoryError avoided"])).0 == .none)
        // The newest matching line decides.
        #expect(classifier.classify(ExitObservation(exitCode: 1, logTail: ["PermissionError (retried)", "MemoryError"])).0 == .outOfMemory)
    }

    /// A trainer that cannot read the checkpoint it was started from meets the checkpoint, not the dataset: the
    /// controller picks another checkpoint instead of failing the job and pausing its dataset.
    @Test func anErrorNamingTheResumeCheckpointIsCheckpointUnavailableNeverDatasetNotFound() {
        let classifier = ProcessExitClassifier()
        let resume = "/mnt/ckpt/job-1/attempt-2/ckpt-epoch-0004.npz"
        for line in [
            "FileNotFoundError: [Errno 2] No such file or directory: '\(resume)'",
            "_pickle.UnpicklingError: invalid load key, 'x' while loading \(resume)",
            "PermissionError: [Errno 13] Permission denied: '\(resume)'",
        ] {
            let (failureClass, detail) = classifier.classify(ExitObservation(exitCode: 1, logTail: ["Traceback (most recent call last):", line], resumePath: resume))
            #expect(failureClass == .checkpointUnavailable, "\(line)")
            #expect(detail.hasPrefix("the trainer could not read the checkpoint it resumed from: "))
        }
        // Also when the trainer itself reports the error as the dataset's.
        let reported = ExitObservation(exitCode: 1, reportedErrorClass: .datasetNotFound,
                                       reportedErrorMessage: "no such file: \(resume) (No such file or directory)", resumePath: resume)
        #expect(classifier.classify(reported).0 == .checkpointUnavailable)
        // The dataset's own missing file stays dataset_not_found, resumed or not.
        let dataset = ExitObservation(exitCode: 1, logTail: ["FileNotFoundError: [Errno 2] No such file or directory: '/data/ds-1/train.npz'"], resumePath: resume)
        #expect(classifier.classify(dataset).0 == .datasetNotFound)
        #expect(classifier.classify(ExitObservation(exitCode: 1, logTail: ["FileNotFoundError: '\(resume)'"])).0 == .datasetNotFound, "no resume: no checkpoint to blame")
    }
}
