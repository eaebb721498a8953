import ArchonModel
import Testing

@testable import ArchonCore

@Suite struct PolicyLoaderTests {
    @Test func theDefaultsAreTheRunbook() {
        let p = Policy.runbookDefaults
        #expect(p.detection.queueTimeout == .minutes(10))
        #expect(p.detection.epochTimeout == .minutes(15) && p.detection.totalTimeout == .hours(2))
        #expect(p.detection.poorPerformance.minImprovement == 0.01 && p.detection.poorPerformance.patienceEpochs == 3)
        #expect(p.detection.resourcePressureThreshold == 0.9)
        #expect(p.remediation.ladders.outOfMemory.steps == [.halveBatch, .halveBatch, .raiseMemory(factor: 2)])
        #expect(p.remediation.ladders.divergingLoss.steps == [
            .scaleLearningRate(factor: 0.1), .exponentialDecay(decayRate: 0.96, decaySteps: 1000),
            .gradientClipping(maxNorm: 1.0), .dataQualityCheck(escalateTo: .l2),
        ])
        #expect(p.remediation.ladders.timeout.steps == [.extendTimeouts(factor: 2, maxPerEpoch: .minutes(30), maxTotal: .hours(4)), .mixedPrecision])
        #expect(p.remediation.ladders.datasetNotFound.steps.isEmpty && p.remediation.ladders.permissionDenied.steps.isEmpty)
        #expect(p.remediation.ladders.permissionDenied.escalateTo == .l2 && p.remediation.ladders.permissionDenied.severity == .critical)
        #expect(p.correlation.badNode.minDistinctJobs == 3 && p.correlation.badNode.window == .minutes(30) && p.correlation.badNode.level == .l3)
        #expect(p.correlation.badDataset.minDistinctJobs == 2 && p.correlation.badDataset.level == .l2)
        #expect(p.correlation.systemResource.nodeFraction == 0.25 && p.correlation.systemResource.minDistinctNodes == 3 && p.correlation.systemResource.level == .l3)
        #expect(p.correlation.multiAgent.minDistinctNodes == 3 && p.correlation.multiAgent.window == .minutes(5) && p.correlation.multiAgent.level == .l2)
        #expect(p.correlation.security.level == .l2 && p.correlation.security.severity == .critical)
        #expect(EscalationLevel.allCases.map { p.escalation.levels[$0].responseTime } == [.minutes(15), .hours(1), .hours(2), .hours(4)])
        #expect(EscalationLevel.allCases.map { p.escalation.levels[$0].contact } == ["ML Ops Team", "Senior ML Engineer", "Platform Engineering", "VP Engineering"])
        #expect(p.validate().isEmpty)
    }

    @Test func anEmptyFileAndTheWrittenDefaultsBothReadAsTheDefaults() throws {
        #expect(try Policy.parse("{}") == .runbookDefaults)
        let text = Policy.runbookDefaults.jsonText()
        #expect(text.contains("\"queueTimeout\" : \"10m\""))
        #expect(try Policy.parse(text) == .runbookDefaults)
    }

    @Test func aFileNamesOnlyWhatItChanges() throws {
        let policy = try Policy.parse("""
            {
              "detection": { "queueTimeout": "5m", "divergence": { "spikeFactor": 4 } },
              "remediation": {
                "backoff": { "initial": "0s", "max": "0s" },
                "defaultMemoryRequest": "4GiB",
                "ladders": { "crash": { "steps": [ { "action": "restart" } ], "escalateTo": "L2" } }
              },
              "escalation": { "levels": { "L1": { "responseTime": "30s" } } }
            }
            """)
        #expect(policy.detection.queueTimeout == .minutes(5))
        #expect(policy.detection.divergence.spikeFactor == 4 && policy.detection.divergence.spikeWindow == 5)
        #expect(policy.remediation.backoff.initial == .seconds(0))
        #expect(policy.remediation.defaultMemoryRequest == .gibibytes(4))
        #expect(policy.remediation.ladders.crash == LadderPolicy(steps: [.restart], escalateTo: .l2))
        #expect(policy.escalation.levels.l1 == LevelPolicy(contact: "ML Ops Team", responseTime: .seconds(30)))
        #expect(policy.escalation.levels.l2 == Policy.runbookDefaults.escalation.levels.l2)
    }

    func issues(_ text: String, fileName: String = "policy.json") -> [String] {
        do {
            _ = try Policy.parse(text, fileName: fileName)
            return []
        } catch {
            return error.description.split(separator: "\n").map(String.init)
        }
    }

    @Test func unknownKeysAreRejectedAtTheirLineWithASuggestion() {
        #expect(issues("""
            {
              "detection": {
                "queueTimeot": "5m"
              },
              "paging": {}
            }
            """) == [
            "policy.json:3: detection.queueTimeot: unknown key; did you mean \"queueTimeout\"?",
            "policy.json:5: paging: unknown key; known keys here: correlation, detection, escalation, remediation, retention, validation",
        ])
    }

    @Test func valuesOfTheWrongTypeOrFormAreRejectedAtTheirLine() {
        #expect(issues("""
            {
              "remediation": {
                "maxRestartsPerJob": "ten"
              }
            }
            """) == ["policy.json:3: remediation.maxRestartsPerJob: expected an integer, found \"ten\""])
        #expect(issues("""
            {
              "detection": {
                "heartbeatWindow": "15x"
              }
            }
            """) == ["policy.json:3: detection.heartbeatWindow: expected a duration such as \"15m\" or \"1h30m\" (units ms, s, m, h, d), got \"15x\""])
        #expect(issues("""
            {
              "correlation": { "badNode": {
                "level": "L5" } }
            }
            """) == ["policy.json:3: correlation.badNode.level: must be one of L1, L2, L3, L4, found \"L5\""])
        #expect(issues("""
            {"remediation": {"ladders": {"outOfMemory": {"steps": [
              {"action": "halveBatch"},
              {"action": "halfBatch"}
            ]}}}}
            """) == ["policy.json:3: remediation.ladders.outOfMemory.steps[1].action: unknown action \"halfBatch\"; known: restart, replace, halveBatch, raiseMemory, scaleLearningRate, exponentialDecay, gradientClipping, extendTimeouts, mixedPrecision, dataQualityCheck"])
        #expect(issues("""
            {"remediation": {"ladders": {"timeout": {"steps": [
              {"action": "mixedPrecision", "factor": 2}
            ]}}}}
            """) == ["policy.json:2: remediation.ladders.timeout.steps[0].factor: \"mixedPrecision\" does not take \"factor\" (takes no parameters)"])
    }

    @Test func valuesOutOfRangeAreAllReportedAtTheirLines() {
        #expect(issues("""
            {
              "remediation": {
                "maxRestartsPerJob": -1,
                "ladders": {
                  "outOfMemory": { "steps": [ { "action": "halveBatch" }, { "action": "raiseMemory", "factor": 0.5 } ] },
                  "datasetNotFound": { "steps": [ { "action": "restart" } ] }
                }
              },
              "escalation": { "levels": {
                "L2": { "responseTime": "0s" } } }
            }
            """, fileName: "fleet-policy.json") == [
            "fleet-policy.json:3: remediation.maxRestartsPerJob: must be >= 0, got -1",
            "fleet-policy.json:5: remediation.ladders.outOfMemory.steps[1].factor: must be > 1, got 0.5",
            "fleet-policy.json:6: remediation.ladders.datasetNotFound.steps: must be empty: retrying cannot help with dataset not found",
            "fleet-policy.json:10: escalation.levels.L2.responseTime: must be longer than 0, got 0s",
        ])
    }

    @Test func syntaxErrorsNameTheirLine() {
        #expect(issues("""
            {
              "detection": { "queueTimeout": "5m" }
              "remediation": {}
            }
            """) == ["policy.json:3: expected ',' or '}' after the value of \"detection\", found '\"'"])
        #expect(issues("[1, 2]") == ["policy.json:1: a policy must be an object of sections (detection, remediation, …)"])
        #expect(issues("{\n  \"detection\": { \"queueTimeout\": 5m }\n}") == ["policy.json:2: detection: expected ',' or '}' after the value of \"queueTimeout\", found 'm'"])
    }

    @Test func yamlPoliciesReadTheSame() throws {
        let yaml = """
            # Archon Fleet policy
            detection:
              queueTimeout: 5m        # faster than the runbook
              poorPerformance:
                patienceEpochs: 4
            remediation:
              ladders:
                outOfMemory:
                  steps:
                    - action: halveBatch
                    - {action: raiseMemory, factor: 2}
                  escalateTo: L1
              gpuUpgrades:
                - from: a100-40gb
                  to: a100-80gb
            correlation:
              badDataset:
                symptoms: [dataCorruption, divergingLoss]
            escalation:
              levels:
                L1: {contact: "ML Ops (pager #7)", responseTime: 10m}
            """
        let policy = try Policy.parse(yaml, fileName: "policy.yaml")
        #expect(policy.detection.queueTimeout == .minutes(5))
        #expect(policy.detection.poorPerformance.patienceEpochs == 4)
        #expect(policy.remediation.ladders.outOfMemory.steps == [.halveBatch, .raiseMemory(factor: 2)])
        #expect(policy.remediation.gpuUpgrades == [GPUUpgrade(from: "a100-40gb", to: "a100-80gb")])
        #expect(policy.correlation.badDataset.symptoms == [.dataCorruption, .divergingLoss])
        #expect(policy.escalation.levels.l1 == LevelPolicy(contact: "ML Ops (pager #7)", responseTime: .minutes(10)))

        #expect(issues("""
            detection:
              queueTimeout: 5m
               heartbeatWindow: 2m
            """, fileName: "policy.yaml") == ["policy.yaml:3: mapping values are not allowed in this context"])
        #expect(issues("""
            remediation:
              maxRestartsPerJob: 0
              backoff:
                multiplier: 0.5
            """, fileName: "policy.yml") == ["policy.yml:4: remediation.backoff.multiplier: must be >= 1, got 0.5"])
    }

    /// All of YAML, through Yams: anchors and merge keys share settings, block scalars span lines, and what is wrong is
    /// still reported at its line.
    @Test func fullYAMLAnchorsMergeKeysAndMultiLineStrings() throws {
        let yaml = """
            escalation:
              levels:
                L1: &pager {contact: "ML Ops", responseTime: 10m}
                L2:
                  <<: *pager
                  contact: >-
                    Senior ML Engineer
                    (second line of the same contact)
            remediation:
              ladders:
                crash: &restartTwice
                  steps: [{action: restart}, {action: restart}]
                hang: *restartTwice
            """
        let policy = try Policy.parse(yaml, fileName: "policy.yaml")
        #expect(policy.escalation.levels.l1 == LevelPolicy(contact: "ML Ops", responseTime: .minutes(10)))
        #expect(policy.escalation.levels.l2 == LevelPolicy(contact: "Senior ML Engineer (second line of the same contact)", responseTime: .minutes(10)))
        #expect(policy.remediation.ladders.hang.steps == policy.remediation.ladders.crash.steps)
        #expect(policy.remediation.ladders.hang.steps.count == 2)

        #expect(issues("detection:\n  queueTimeout: *nowhere\n", fileName: "policy.yaml") == ["policy.yaml:2: found undefined alias"])
        #expect(issues("detection:\n  queueTimeout: 5m\n  queueTimeout: 6m\n", fileName: "policy.yaml").first?.hasPrefix("policy.yaml:") == true)
        #expect(issues("detection:\n  queueTimeout: .inf\n", fileName: "policy.yaml") == ["policy.yaml:2: detection.queueTimeout: .inf is not a finite number"])
        #expect(issues("remediation:\n  backoff:\n    multiplier: 0.5\n", fileName: "policy.yaml") == ["policy.yaml:3: remediation.backoff.multiplier: must be >= 1, got 0.5"])
    }

    @Test func durationsAndSizesReadAndWriteInUnits() {
        #expect(PolicyDuration(parsing: "1h30m") == .minutes(90))
        #expect(PolicyDuration(parsing: "500ms") == .milliseconds(500))
        #expect(PolicyDuration(parsing: "2d")?.description == "2d")
        #expect(PolicyDuration(parsing: "15") == nil && PolicyDuration(parsing: "m") == nil)
        #expect(PolicyDuration.minutes(90).description == "1h30m")
        #expect(ByteCount(parsing: "8GiB") == .gibibytes(8))
        #expect(ByteCount(parsing: "16 GB")?.bytes == 16_000_000_000)
        #expect(ByteCount.mebibytes(512).description == "512MiB")
        #expect(ByteCount(parsing: "8 bananas") == nil)
    }
}
