import BridgeModel
import Foundation
import Testing
@testable import BridgeReport

/// The tamper-evidence chain: what `report --verify` catches, where it says the break is, and what it
/// by design cannot see.
@Suite("Log chain")
struct ChainTests {
    /// A chained log as `[log] chain = true` writes it: each record gains "prev" (sorted in with the
    /// other keys), the hash of the line before; the first is "genesis" unless `after` continues a chain.
    private func chained(_ records: [SessionRecord], after previous: String? = nil) -> [String] {
        var lines: [String] = []
        var prev = previous.map { LogChain.digest(ofLine: Array($0.utf8)) } ?? LogChain.genesis
        for record in records {
            let line = withPrev(Records.line(record), prev)
            lines.append(line)
            prev = LogChain.digest(ofLine: Array(line.utf8))
        }
        return lines
    }

    private func withPrev(_ line: String, _ prev: String) -> String {
        var object = try! JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
        object["prev"] = prev
        let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self)
    }

    private func records(_ range: ClosedRange<Int>) -> [SessionRecord] {
        range.map { Records.ok($0, source: "10.0.0.\($0 % 250):4000") }
    }

    @Test func theDigestIsTheLowercaseHexSHA256OfTheLineBytes() {
        #expect(LogChain.digest(ofLine: Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(LogChain.digest(ofLine: []) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }

    @Test func anUntouchedChainIsIntact() throws {
        let dir = try ScratchDirectory()
        defer { dir.remove() }
        let lines = chained(records(1...20))
        #expect(lines[0].contains(#""prev":"genesis""#))
        let log = try dir.write("sessions.jsonl", lines: lines)
        let result = LogChain.verify(files: [log])
        #expect(result.intact && result.records == 20 && result.breaks.isEmpty && result.restarts.isEmpty)
        #expect(result.last == .init(at: LogLocation(file: log, line: 20), sha256: LogChain.digest(ofLine: Array(lines[19].utf8))))
        #expect(result.text().hasPrefix("intact (20 records)"))
    }

    @Test func anEditedLineBreaksTheLinkFromItsSuccessor() throws {
        let dir = try ScratchDirectory()
        defer { dir.remove() }
        var lines = chained(records(1...20))
        lines[6] = lines[6].replacingOccurrences(of: #""protocol":"plain""#, with: #""protocol":"TLSv1.2""#)
        let log = try dir.write("sessions.jsonl", lines: lines)
        let result = LogChain.verify(files: [log])
        #expect(!result.intact && result.breaksTotal == 1)
        let failure = try #require(result.breaks.first)
        #expect(failure.kind == .prevMismatch)
        #expect(failure.at == LogLocation(file: log, line: 8) && failure.previous == LogLocation(file: log, line: 7))
        #expect(failure.expected == LogChain.digest(ofLine: Array(lines[6].utf8)))
        #expect(result.text().hasPrefix("BROKEN at \(log):8: prev does not match the SHA-256 of line 7"))
    }

    @Test func aDeletedLineBreaksTheChainWhereItWas() throws {
        let dir = try ScratchDirectory()
        defer { dir.remove() }
        var lines = chained(records(1...20))
        lines.remove(at: 11)  // line 12
        let result = LogChain.verify(files: [try dir.write("sessions.jsonl", lines: lines)])
        #expect(!result.intact && result.breaksTotal == 1)
        #expect(result.breaks.first?.at.line == 12 && result.breaks.first?.previous?.line == 11)
        #expect(result.records == 19)
    }

    @Test func anInsertedLineIsDetectedEvenWithACorrectPrev() throws {
        let dir = try ScratchDirectory()
        defer { dir.remove() }
        var lines = chained(records(1...10))
        // A forger who links the new record to line 5 still breaks the link from the old line 6.
        lines.insert(chained([Records.ok(99)], after: lines[4])[0], at: 5)
        let result = LogChain.verify(files: [try dir.write("sessions.jsonl", lines: lines)])
        #expect(result.breaks.map(\.at.line) == [7])
    }

    @Test func aRecordWithoutPrevOrNotJSONInsideTheChainIsABreak() throws {
        let dir = try ScratchDirectory()
        defer { dir.remove() }
        var lines = chained(records(1...6))
        lines[2] = Records.line(Records.ok(3))
        lines[4] = "garbage"
        let result = LogChain.verify(files: [try dir.write("sessions.jsonl", lines: lines)])
        #expect(result.breaks.map { "\($0.at.line) \($0.kind.rawValue)" }
                == ["3 missing_prev", "4 prev_mismatch", "5 not_a_record", "6 prev_mismatch"])
    }

    @Test func aChainContinuesAcrossRotationPlainAndGzip() throws {
        let dir = try ScratchDirectory()
        defer { dir.remove() }
        let lines = chained(records(1...30))
        let oldest = try dir.writeGzip("sessions.jsonl.2.gz", lines: Array(lines[0..<10]))
        let older = try dir.write("sessions.jsonl.1", lines: Array(lines[10..<20]))
        let current = try dir.write("sessions.jsonl", lines: Array(lines[20...]))
        let result = LogChain.verify(files: [oldest, older, current])
        #expect(result.intact && result.records == 30)
        #expect(result.files.map(\.lines) == [10, 10, 10])
        // Given newest first, the first link across files fails at the boundary, with a hint.
        let reversed = LogChain.verify(files: [current, older, oldest])
        #expect(!reversed.intact && reversed.breaks.first?.at == LogLocation(file: older, line: 1))
        #expect(reversed.text().contains("give them oldest first"))
    }

    @Test func aLineDeletedAtTheEndOfARotatedFileIsFoundAtTheNextFile() throws {
        let dir = try ScratchDirectory()
        defer { dir.remove() }
        let lines = chained(records(1...20))
        let older = try dir.write("sessions.jsonl.1", lines: Array(lines[0..<9]))  // line 10 removed
        let current = try dir.write("sessions.jsonl", lines: Array(lines[10...]))
        let result = LogChain.verify(files: [older, current])
        #expect(result.breaks.map(\.description).first?.hasPrefix("\(current):1: prev does not match the SHA-256 of \(older):9") == true)
    }

    @Test func aGenesisInTheMiddleIsAListedRestartNotABreak() throws {
        let dir = try ScratchDirectory()
        defer { dir.remove() }
        let lines = chained(records(1...5)) + chained(records(6...9))
        let log = try dir.write("sessions.jsonl", lines: lines)
        let result = LogChain.verify(files: [log])
        #expect(result.intact && result.restarts == [LogLocation(file: log, line: 6)])
        #expect(result.text().contains("chain restart (\"genesis\") at \(log):6"))
    }

    @Test func linesWrittenBeforeChainingWasTurnedOnAreCountedNotBroken() throws {
        let dir = try ScratchDirectory()
        defer { dir.remove() }
        let plain = records(1...3).map(Records.line)
        let lines = plain + chained(records(4...6), after: plain[2])
        let result = LogChain.verify(files: [try dir.write("sessions.jsonl", lines: lines)])
        #expect(result.intact && result.unchained == 3)
        // Editing one of those unchained lines is still caught by the first chained record.
        var edited = lines
        edited[2] = edited[2].replacingOccurrences(of: "s-3", with: "s-X")
        #expect(LogChain.verify(files: [try dir.write("edited.jsonl", lines: edited)]).breaks.map(\.at.line) == [4])
    }

    @Test func filesStartingMidChainAreNotedAndCheckedFromThere() throws {
        let dir = try ScratchDirectory()
        defer { dir.remove() }
        let lines = chained(records(1...10))
        let log = try dir.write("sessions.jsonl.1", lines: Array(lines[4...]))
        let result = LogChain.verify(files: [log])
        #expect(result.intact && result.continuesFrom?.at == LogLocation(file: log, line: 1))
        #expect(result.continuesFrom?.prev == LogChain.digest(ofLine: Array(lines[3].utf8)))
    }

    /// Documented limit: a chain cut short at the end is still a valid chain. The hash `verify` prints for
    /// the last record is what lets someone who kept it elsewhere notice.
    @Test func truncatingTheTailIsNotDetectableFromTheLogAlone() throws {
        let dir = try ScratchDirectory()
        defer { dir.remove() }
        let lines = chained(records(1...10))
        let whole = LogChain.verify(files: [try dir.write("whole.jsonl", lines: lines)])
        let cut = LogChain.verify(files: [try dir.write("cut.jsonl", lines: Array(lines[..<7]))])
        #expect(whole.intact && cut.intact && cut.records == 7)
        #expect(whole.last?.sha256 != cut.last?.sha256)
    }

    @Test func anUnreadableFileIsABreak() throws {
        let dir = try ScratchDirectory()
        defer { dir.remove() }
        let log = try dir.write("sessions.jsonl", lines: chained(records(1...3)))
        let result = LogChain.verify(files: [dir.file("sessions.jsonl.1"), log])
        #expect(!result.intact && result.breaks.first?.kind == .unreadable)
        #expect(result.text().contains("No such file or directory"))
    }

    @Test func verificationJSONIsStable() throws {
        let dir = try ScratchDirectory()
        defer { dir.remove() }
        var lines = chained(records(1...5))
        lines.remove(at: 2)
        let log = try dir.write("sessions.jsonl", lines: lines)
        let json = LogChain.verify(files: [log]).json()
        #expect(json == LogChain.verify(files: [log]).json())
        let decoded = try JSONDecoder().decode(ChainVerification.self, from: Data(json.utf8))
        #expect(decoded.breaks.first?.at.line == 3 && decoded.breaksTotal == 1 && !decoded.intact)
        #expect(json.contains(#""breaks_total" : 1"#))
    }
}

/// The line reader under the report and the verifier.
@Suite("Log line reader")
struct LogLineReaderTests {
    @Test func linesComeOutExactlyWithNumbersAndALastLineWithoutNewline() throws {
        let dir = try ScratchDirectory()
        defer { dir.remove() }
        let path = try dir.write("a.jsonl", lines: ["one", "", "three\r", "four"], finalNewline: false)
        let reader = try LogLineReader(path: path)
        var got: [(Int, String)] = []
        while let line = try reader.next() { got.append((line.number, String(decoding: line.bytes, as: UTF8.self))) }
        #expect(got.map(\.0) == [1, 2, 3, 4])
        #expect(got.map(\.1) == ["one", "", "three\r", "four"])
    }

    @Test func lineslongerThanTheChunkAreJoinedAndOversizedOnesSkipped() throws {
        let dir = try ScratchDirectory()
        defer { dir.remove() }
        let long = String(repeating: "a", count: 700_000)
        let huge = String(repeating: "b", count: LogLineReader.maximumLineLength + 1)
        let reader = try LogLineReader(path: try dir.writeGzip("a.gz", lines: [long, huge, "end"]))
        let first = try #require(try reader.next())
        let second = try #require(try reader.next())
        let third = try #require(try reader.next())
        #expect(try reader.next() == nil)
        #expect(first.bytes.count == 700_000 && !first.isOversized)
        #expect(second.isOversized && second.bytes.isEmpty && second.length == huge.utf8.count)
        #expect(third.bytes == Array("end".utf8) && third.number == 3 && reader.isCompressed)
    }

    @Test func aDirectoryIsRefusedWithAReason() throws {
        let dir = try ScratchDirectory()
        defer { dir.remove() }
        #expect(throws: LogReadError.self) { try LogLineReader(path: dir.path) }
    }
}
