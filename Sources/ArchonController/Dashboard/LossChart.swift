public import ArchonCore
public import ArchonModel
import Foundation

/// A job's loss across all its attempts, built from the events its agents published (the dashboard reads them back
/// from `ARCHON_EVENTS`), and the restarts between the attempts. Bounded whatever the job's length: past
/// ``maxPoints`` points of a kind, every other one is dropped and only every other new one is kept, so a long run is
/// drawn at a coarser grain, never with more points.
public struct LossCurve: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        case train, validation, step
    }

    public struct Point: Sendable, Equatable {
        public var attempt: Int
        public var kind: Kind
        public var timeMs: Int64
        public var epoch: Int
        public var step: Int
        /// As reported: NaN and ±Inf are kept (a diverging run shows where it broke), drawn at the top edge.
        public var value: Double
    }

    /// A restart: where attempt `attempt` began, and the decision that started it.
    public struct Marker: Sendable, Equatable {
        public var attempt: Int
        public var timeMs: Int64
        public var label: String

        public init(attempt: Int, timeMs: Int64, label: String) {
            self.attempt = attempt
            self.timeMs = timeMs
            self.label = label
        }
    }

    public static let maxPoints = 1500

    public private(set) var points: [Point] = []
    public private(set) var markers: [Marker] = []
    /// Per attempt, the node it ran on (events from any other node about this job are not believed) and the highest
    /// event sequence taken (a republished event is taken once).
    private var nodes: [Int: String] = [:]
    private var taken: [Int: UInt64] = [:]
    /// Per kind, keep one point in `stride` (doubles each time the kind is thinned).
    private var stride: [Kind: Int] = [:]
    private var arrived: [Kind: Int] = [:]
    /// Points kept per kind (what `points` holds of it).
    private var kept: [Kind: Int] = [:]

    public init() {}

    /// Attempts, nodes and restart markers from the job's record; call again when the record changes.
    public mutating func update(job: JobRecord) {
        update(nodes: Dictionary(job.history.map { ($0.attempt, $0.nodeID) }, uniquingKeysWith: { _, last in last }), markers: Self.markers(job))
    }

    /// Attempt → the node it ran on, and the restarts.
    public mutating func update(nodes: [Int: String], markers: [Marker]) {
        self.nodes = nodes
        self.markers = markers
    }

    /// Whether the job's record named this attempt when last given (``update(job:)``).
    public func knows(attempt: Int) -> Bool { nodes[attempt] != nil }

    /// Takes one event of the job; true when it added a point.
    @discardableResult
    public mutating func add(_ event: TrainingEvent) -> Bool {
        guard let node = nodes[event.attempt], node == event.nodeID else { return false }
        guard event.sequence > taken[event.attempt, default: 0] else { return false }
        taken[event.attempt] = event.sequence
        switch event.body {
        case .epoch(let m):
            var added = append(Point(attempt: event.attempt, kind: .train, timeMs: event.timeMs, epoch: m.epoch, step: m.step, value: m.loss))
            if let v = m.validation {
                added = append(Point(attempt: event.attempt, kind: .validation, timeMs: event.timeMs, epoch: m.epoch, step: m.step, value: v.loss)) || added
            }
            return added
        case .step(let s):
            return append(Point(attempt: event.attempt, kind: .step, timeMs: event.timeMs, epoch: s.epoch, step: s.step, value: s.loss))
        default:
            return false
        }
    }

    private mutating func append(_ point: Point) -> Bool {
        let kind = point.kind
        arrived[kind, default: 0] += 1
        let every = stride[kind, default: 1]
        guard (arrived[kind]! - 1) % every == 0 else { return false }
        points.append(point)
        kept[kind, default: 0] += 1
        if kept[kind]! > Self.maxPoints {
            var seen = 0
            points.removeAll { p in
                guard p.kind == kind else { return false }
                seen += 1
                return seen % 2 == 0
            }
            kept[kind] = seen - seen / 2
            stride[kind] = every * 2
        }
        return true
    }

    /// One marker per attempt after the first, at its start (its assignment while it has not started).
    static func markers(_ job: JobRecord) -> [Marker] {
        zip(job.history, job.history.dropFirst()).map { previous, attempt in
            Marker(attempt: attempt.attempt, timeMs: attempt.startedAtMs != 0 ? attempt.startedAtMs : attempt.assignedAtMs,
                   label: label(after: previous, attempt))
        }
    }

    /// "OOM: batch 1024 → 512, accumulation ×2, resumed from epoch 3".
    static func label(after previous: AttemptRecord, _ attempt: AttemptRecord) -> String {
        let why: String = switch previous.failureClass {
        case .outOfMemory: "OOM"
        case .divergingLoss: "divergence"
        case .none: previous.drain != nil ? "moved" : (previous.symptom?.title ?? "restart")
        default: previous.symptom?.title ?? previous.failureClass.rawValue.replacingOccurrences(of: "_", with: " ")
        }
        var parts = [attempt.configChange.isEmpty ? shortAction(attempt.action) : readable(attempt.configChange)]
        if let epoch = attempt.resumeCheckpoint?.epoch { parts.append("resumed from epoch \(epoch)") }
        return "\(why): " + parts.filter { !$0.isEmpty }.joined(separator: ", ")
    }

    /// "batchSize 1024 -> 512, gradientAccumulationSteps 1 -> 2, learningRate 0.01 -> 0.001" as
    /// "batch 1024 → 512, accumulation ×2, LR 0.01 → 0.001".
    public static func readable(_ change: String) -> String {
        change.components(separatedBy: ", ").map { item -> String in
            let words = item.components(separatedBy: " -> ")
            guard words.count == 2, let space = words[0].lastIndex(of: " ") else { return item }
            let field = String(words[0][..<space])
            let old = String(words[0][words[0].index(after: space)...])
            let new = words[1]
            switch field {
            case "gradientAccumulationSteps":
                if let a = Int(old), let b = Int(new), a > 0, b % a == 0 { return "accumulation ×\(b / a)" }
                return "accumulation \(old) → \(new)"
            case "batchSize": return "batch \(old) → \(new)"
            case "learningRate": return "LR \(old) → \(new)"
            default: return "\(field) \(old) → \(new)"
            }
        }.joined(separator: ", ")
    }

    /// The remedy of an action such as "out of memory: halve the batch size": the part after the symptom.
    private static func shortAction(_ action: String) -> String {
        guard let colon = action.range(of: ": ") else { return action }
        return String(action[colon.upperBound...])
    }
}

/// The loss chart as SVG, drawn on the server: no script, no library, readable in light and dark mode (colours come
/// from CSS classes). x is time across all attempts, y the loss (logarithmic when it spans more than two decades).
public enum LossChart {
    public static let width = 760.0
    public static let height = 300.0
    static let left = 56.0, right = 12.0, top = 16.0, bottom = 28.0

    public static func svg(_ curve: LossCurve) -> String {
        var out = #"<svg class="chart" id="loss-chart" viewBox="0 0 \#(Int(width)) \#(Int(height))" role="img" aria-label="loss per attempt">"#
        let finite = curve.points.filter { $0.value.isFinite }
        let times = curve.points.map(\.timeMs) + curve.markers.map(\.timeMs)
        guard let t0 = times.min(), let t1 = times.max(), !curve.points.isEmpty else {
            out += #"<text class="empty" x="\#(Int(width / 2))" y="\#(Int(height / 2))" text-anchor="middle">no loss reported yet</text></svg>"#
            return out
        }
        let values = finite.map(\.value)
        let low = values.min() ?? 0, high = values.max() ?? 1
        let logScale = low > 0 && high / low > 100
        func yValue(_ v: Double) -> Double { logScale ? log10(v) : v }
        var y0 = yValue(low), y1 = yValue(high)
        if y1 - y0 < 1e-12 { y0 -= 0.5; y1 += 0.5 }
        let span = Double(max(t1 - t0, 1))
        let plotW = width - left - right, plotH = height - top - bottom
        func x(_ t: Int64) -> Double { left + Double(t - t0) / span * plotW }
        func y(_ v: Double) -> Double {
            guard v.isFinite else { return top }
            return top + (1 - (yValue(v) - y0) / (y1 - y0)) * plotH
        }
        // Axes and labels.
        out += #"<line class="axis" x1="\#(f(left))" y1="\#(f(top + plotH))" x2="\#(f(width - right))" y2="\#(f(top + plotH))"/>"#
        out += #"<line class="axis" x1="\#(f(left))" y1="\#(f(top))" x2="\#(f(left))" y2="\#(f(top + plotH))"/>"#
        for i in 0...4 {
            let v = y0 + (y1 - y0) * Double(i) / 4
            let shown = logScale ? pow(10, v) : v
            let py = top + (1 - Double(i) / 4) * plotH
            out += #"<text class="tick" x="\#(f(left - 6))" y="\#(f(py + 4))" text-anchor="end">\#(number(shown))</text>"#
        }
        let minutes = span / 60_000
        out += #"<text class="tick" x="\#(f(left))" y="\#(f(height - 8))">0</text>"#
        out += #"<text class="tick" x="\#(f(width - right))" y="\#(f(height - 8))" text-anchor="end">\#(minutes < 2 ? "\(Int((span / 1000).rounded())) s" : "\(number(minutes)) min")</text>"#
        // Restarts.
        for m in curve.markers {
            let mx = x(m.timeMs)
            out += #"<g class="marker" data-attempt="\#(m.attempt)"><line x1="\#(f(mx))" y1="\#(f(top))" x2="\#(f(mx))" y2="\#(f(top + plotH))"/>"#
            out += #"<text x="\#(f(mx + 4))" y="\#(f(top + 12))">\#(HTML.escape(m.label))</text><title>attempt \#(m.attempt): \#(HTML.escape(m.label))</title></g>"#
        }
        // One polyline per (attempt, kind), and a dot per point with its numbers as a tooltip.
        let attempts = Set(curve.points.map(\.attempt)).sorted()
        for attempt in attempts {
            for kind in LossCurve.Kind.allCases {
                let series = curve.points.filter { $0.attempt == attempt && $0.kind == kind }
                guard !series.isEmpty else { continue }
                let path = series.map { "\(f(x($0.timeMs))),\(f(y($0.value)))" }.joined(separator: " ")
                out += #"<polyline class="series \#(kind.rawValue) a\#(attempt % 6)" points="\#(path)"/>"#
                if kind == .step { continue }
                for p in series {
                    let cls = p.value.isFinite ? "point" : "point nonfinite"
                    out += #"<circle class="\#(cls) \#(kind.rawValue) a\#(attempt % 6)" data-attempt="\#(attempt)" data-kind="\#(kind.rawValue)" data-epoch="\#(p.epoch)" cx="\#(f(x(p.timeMs)))" cy="\#(f(y(p.value)))" r="3.5"><title>attempt \#(attempt) · epoch \#(p.epoch) · \#(kind == .train ? "training" : "validation") loss \#(number(p.value))</title></circle>"#
                }
            }
        }
        out += "</svg>"
        return out
    }

    private static func f(_ v: Double) -> String { String(format: "%.1f", v) }

    /// 0.0123, 1.23, 123, 1.2e+06.
    static func number(_ v: Double) -> String {
        guard v.isFinite else { return v.isNaN ? "NaN" : (v > 0 ? "+Inf" : "-Inf") }
        let a = abs(v)
        if a != 0, a < 0.001 || a >= 100_000 { return String(format: "%.2g", v) }
        if a >= 100 { return String(format: "%.0f", v) }
        return String(format: "%.3g", v)
    }
}
