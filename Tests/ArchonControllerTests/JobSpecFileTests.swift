import ArchonController
import Testing

/// Job specs as files and request bodies: what the API contract (docs/openapi.yaml, JobSpec) refuses, the parser refuses.
@Suite struct JobSpecFileTests {
    @Test func aMisspeltFieldIsRefusedWithItsPathNotIgnored() {
        #expect(throws: JobSpecFile.Problem.self) { try JobSpecFile.parse(#"{"id": "j", "command": ["python3"], "config": {"batchsize": 64}}"#) }
        do {
            _ = try JobSpecFile.parse("id: j\ncommand: [python3]\nconfig:\n  batchSize: 64\n  resources: {memory: 8}\nowner: sam\n")
            Issue.record("unknown fields accepted")
        } catch {
            #expect(error.description == "job spec: unknown fields config.resources.memory, owner (misspelt? the fields are in docs/openapi.yaml, JobSpec)")
        }
    }

    @Test func freeMapsTakeAnyKeyAndNullsAreRefused() throws {
        let spec = try JobSpecFile.parse(#"{"id": "j", "command": ["python3"], "env": {"ANY_NAME": "1"}, "labels": {"x.y/z": "w"}, "config": {"hyperparameters": {"lr_warmup": "5"}}}"#)
        #expect(spec.env["ANY_NAME"] == "1" && spec.labels["x.y/z"] == "w" && spec.config.hyperparameters["lr_warmup"] == "5")
        do {
            _ = try JobSpecFile.parse(#"{"id": "j", "command": ["python3"], "config": {"batchSize": null}}"#)
            Issue.record("null accepted")
        } catch {
            #expect(error.description == "job spec: config.batchSize must not be null (leave a field out for its default)")
        }
    }

    /// YAML is read by Yams, so anchors and multi-line strings work; a plain scalar in a text field stays the text it
    /// was written as (`1e-3` in hyperparameters is "1e-3", not 0.001), while numeric fields get numbers.
    @Test func yamlSpecsUseAllOfYAMLAndTextFieldsKeepTheirText() throws {
        let spec = try JobSpecFile.parse("""
            id: j
            command: [python3, 1e100, "train.py"]
            labels: {x.y/z: 1.5, kind: &k resnet}
            env: {SEED_TEXT: 0755, FLAG: yes}
            config:
              learningRate: 1e-3
              dataset: 2024
              hyperparameters:
                lr: 1e-3
                warmup: 10
                note: >-
                  spans
                  two lines
                same: *k
            """)
        #expect(spec.command == ["python3", "1e100", "train.py"])
        #expect(spec.labels == ["x.y/z": "1.5", "kind": "resnet"])
        #expect(spec.env == ["SEED_TEXT": "0755", "FLAG": "yes"])
        #expect(spec.config.learningRate == 0.001 && spec.config.dataset == "2024")
        #expect(spec.config.hyperparameters == ["lr": "1e-3", "warmup": "10", "note": "spans two lines", "same": "resnet"])
    }
}
