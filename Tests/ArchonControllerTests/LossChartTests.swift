import ArchonController
import ArchonModel
import Testing

/// The dashboard's loss curve and its SVG, pure: no server, no clock.
@Suite("Loss curve and chart")
struct LossChartTests {
    static func epoch(_ attempt: Int, _ sequence: UInt64, node: String = "n1", epoch: Int, loss: Double, at ms: Int64) -> TrainingEvent {
        TrainingEvent(jobID: "j", nodeID: node, attempt: attempt, sequence: sequence, timeMs: ms,
                      body: .epoch(EpochMetrics(epoch: epoch, totalEpochs: 9, loss: loss, validation: Validation(loss: loss * 1.1))))
    }

    @Test func onlyEventsOfTheAttemptsOwnNodeCountAndEachOnce() {
        var curve = LossCurve()
        curve.update(nodes: [1: "n1", 2: "n2"], markers: [])
        let taken = [
            curve.add(Self.epoch(1, 1, epoch: 1, loss: 2, at: 1000)),
            curve.add(Self.epoch(1, 1, epoch: 1, loss: 2, at: 1000)),  // republished
            curve.add(Self.epoch(1, 2, node: "n2", epoch: 2, loss: 1e9, at: 2000)),  // n2 did not run attempt 1
            curve.add(Self.epoch(3, 1, epoch: 1, loss: 1, at: 3000)),  // an attempt the job never had
            curve.add(Self.epoch(2, 1, node: "n2", epoch: 2, loss: 1, at: 4000)),
        ]
        #expect(taken == [true, false, false, false, true])
        #expect(curve.points.map(\.attempt) == [1, 1, 2, 2])
        #expect(curve.points.filter { $0.kind == .validation }.count == 2)
        #expect(curve.knows(attempt: 2) && !curve.knows(attempt: 3))
    }

    @Test func aLongRunIsDrawnCoarserNeverWithMorePoints() {
        var curve = LossCurve()
        curve.update(nodes: [1: "n1"], markers: [])
        for i in 1...20_000 {
            curve.add(TrainingEvent(jobID: "j", nodeID: "n1", attempt: 1, sequence: UInt64(i), timeMs: Int64(i) * 1000,
                                    body: .step(StepProgress(step: i, epoch: 1, loss: 1 / Double(i)))))
        }
        let steps = curve.points.filter { $0.kind == .step }
        #expect(steps.count <= LossCurve.maxPoints && steps.count > LossCurve.maxPoints / 2)
        #expect(steps.first?.step == 1 && steps.last!.step > 19_000, "the whole run stays on the chart")
        #expect(steps.map(\.step) == steps.map(\.step).sorted())
    }

    @Test func hostileNumbersStayOnTheChartAndNaNIsMarked() {
        var curve = LossCurve()
        curve.update(nodes: [1: "n1", 2: "n1"], markers: [LossCurve.Marker(attempt: 2, timeMs: 3500, label: "divergence: LR 0.1 → 0.01 <b>")])
        curve.add(Self.epoch(1, 1, epoch: 1, loss: 2.3, at: 1000))
        curve.add(Self.epoch(1, 2, epoch: 2, loss: 1e300, at: 2000))
        curve.add(Self.epoch(1, 3, epoch: 3, loss: .nan, at: 3000))
        curve.add(Self.epoch(2, 1, epoch: 3, loss: -.infinity, at: 4000))
        let svg = LossChart.svg(curve)
        #expect(svg.contains(#"class="point nonfinite train a1""#))
        #expect(svg.contains("loss NaN") && svg.contains("loss -Inf") && svg.contains("1e+300"))
        // Every coordinate is a finite number: no NaN or Inf reaches the SVG's geometry.
        for attribute in ["cx=\"", "cy=\"", "x1=\"", "points=\""] {
            for part in svg.components(separatedBy: attribute).dropFirst() {
                let value = part.prefix { $0 != "\"" }
                #expect(!value.lowercased().contains("nan") && !value.lowercased().contains("inf"), "\(attribute)\(value)")
            }
        }
        #expect(svg.contains("divergence: LR 0.1 → 0.01 &lt;b&gt;"), "a label is escaped")
        #expect(LossChart.svg(LossCurve()).contains("no loss reported yet"))
    }

    @Test func configChangesReadLikeTheDecision() {
        #expect(LossCurve.readable("batchSize 1024 -> 512, gradientAccumulationSteps 1 -> 2") == "batch 1024 → 512, accumulation ×2")
        #expect(LossCurve.readable("learningRate 0.01 -> 0.001") == "LR 0.01 → 0.001")
        #expect(LossCurve.readable("gradientAccumulationSteps 3 -> 4") == "accumulation 3 → 4")
        #expect(LossCurve.readable("mixedPrecision false -> true") == "mixedPrecision false → true")
        #expect(HTML.escape(#"<script>alert("x")</script> & 'y'"#) == "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;")
    }
}
