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
}
