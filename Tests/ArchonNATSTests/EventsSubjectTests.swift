import ArchonNATS
import Testing

/// The node and job an events subject names, read by hand: the same answer as splitting on dots (empty tokens
/// skipped), for well-formed and hostile subjects alike.
@Suite("Events subject tokens")
struct EventsSubjectTests {
    static func bySplitting(_ subject: String) -> (node: String, job: String)? {
        let parts = subject.split(separator: ".")
        guard parts.count == 5 else { return nil }
        return (String(parts[3]), String(parts[4]))
    }

    @Test(arguments: [
        "archon.v1.events.n1.job-7", "archon.v1.events.n1._node", "archon.v1.events.gpu-0042.train-ünï",
        "archon.v1.events.n1", "archon.v1.events.n1.job.extra", "archon.v1.events.n1.job.", ".archon.v1.events.n1.job",
        "archon..v1.events.n1.job", "archon.v1.events..job", "", ".", ".....", "a.b.c.d.e", "a.b.c.d.e.f.g.h",
        "archon.v1.events.n1.job-7.", "archon.v1.events.n1.job-7..",
    ])
    func agreesWithSplittingOnDots(_ subject: String) {
        let ours = Fleet.eventsSubjectTokens(subject)
        let expected = Self.bySplitting(subject)
        #expect(ours?.node == expected?.node && ours?.job == expected?.job, "\(subject)")
        #expect((ours == nil) == (expected == nil), "\(subject)")
    }
}
