import Testing

@testable import ArchonCore

@Suite struct SequenceWindowTests {
    @Test func eachSequenceIsAppliedOnce() {
        var window = SequenceWindow()
        let first = [window.insert(1), window.insert(3), window.insert(2)]
        #expect(first == [true, true, true])
        let again = [window.insert(2), window.insert(3), window.insert(1), window.insert(0)]
        #expect(again == [false, false, false, false])
        #expect(window.contiguous == 3 && window.ahead.isEmpty)
        let ten = window.insert(10)
        #expect(ten && window.contains(10) && !window.contains(9))
    }

    @Test func aGapThatNeverFillsStaysBounded() {
        var window = SequenceWindow()
        for sequence in UInt64(2)...UInt64(3000) { _ = window.insert(sequence) }
        #expect(window.ahead.count <= SequenceWindow.maxAhead)
        let repeated = window.insert(2999)
        #expect(!repeated)
    }
}
