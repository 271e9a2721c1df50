import BridgeChain
import BridgeModel
import Foundation

/// The session log's tamper-evidence chain (`[log] chain = true`).
///
/// Each record then carries a top-level string `"prev"`: the lowercase hex SHA-256 of the previous line's
/// exact bytes (without its newline), or `"genesis"` for the first record of a new chain. The writer
/// continues the chain across restarts and rotation (from the last line of the existing file, or for a
/// fresh file after rotation from the last line it wrote), so rotated files given oldest first read as
/// one chain.
///
/// What it protects against: editing, deleting or inserting a record anywhere before the last one
/// breaks the link from the record after it, and `verify` names that place. A `genesis` in the middle is
/// a restart (the writer lost its state, or someone started a new chain there); it is listed, not
/// treated as a break.
///
/// What it does not protect against: anyone who can write the log can drop records from the end
/// (truncation leaves a valid chain), or rewrite every record from some point on with freshly computed
/// hashes, since SHA-256 is a public function and no key is involved. Against that, ship the log
/// off-host as it is written (syslog/SIEM, append-only storage), or note the last record's hash that
/// `verify` prints somewhere the log's writer cannot change, and check later that the chain still
/// passes through it.
public enum LogChain {
    /// The `prev` of the first record of a chain.
    public static let genesis = ChainDigest.genesis

    /// The `prev` the record after `line` must carry (see `ChainDigest`).
    public static func digest(ofLine line: [UInt8]) -> String {
        ChainDigest.digest(ofLine: line)
    }

    /// Reads `files` in the given order as one chain and checks every link. Never throws: a file that
    /// cannot be read is itself a break (the chain cannot be shown intact without it).
    ///
    /// Memory stays bounded whatever the size of the files: lines are read one at a time and at most
    /// `maxListed` breaks and restarts are kept (all are counted).
    public static func verify(files: [String], maxListed: Int = 100) -> ChainVerification {
        var verifier = ChainVerifier(maxListed: maxListed)
        for file in files {
            verifier.read(file)
        }
        return verifier.result
    }
}

/// The outcome of `LogChain.verify`: intact, or where and how the chain breaks. Encodes (sorted keys) as
/// the JSON of `tls-bridge report --verify --json`.
public struct ChainVerification: Codable, Sendable, Equatable {
    /// True when no link is broken (restarts and a chain that continues one from earlier files are not breaks).
    public var intact: Bool
    /// Lines read, over all files.
    public var records: Int
    /// Each file, in the order read, with its line count.
    public var files: [FileLines]
    /// The first `maxListed` breaks, in order; `breaks.first` is where the chain first breaks.
    public var breaks: [ChainBreak]
    /// All breaks, also those not listed.
    public var breaksTotal: Int
    /// Records whose `prev` is `genesis` after the chain had started: restarts, listed but not breaks.
    public var restarts: [LogLocation]
    /// Lines before the first chained record that carry no `prev` (written before `chain = true`).
    public var unchained: Int
    /// Set when the first chained record continues a chain from records that were not given (older
    /// rotations left out, or removed): that record's location and `prev`.
    @NullIfAbsent public var continuesFrom: ContinuedChain?
    /// The last line read and its SHA-256: note it somewhere else to detect later truncation or rewrites.
    @NullIfAbsent public var last: ChainLink?

    public struct FileLines: Codable, Sendable, Equatable {
        public var file: String
        public var lines: Int
    }

    public struct ContinuedChain: Codable, Sendable, Equatable {
        public var at: LogLocation
        public var prev: String
    }

    public struct ChainLink: Codable, Sendable, Equatable {
        public var at: LogLocation
        public var sha256: String
    }

    enum CodingKeys: String, CodingKey {
        case intact, records, files, breaks, breaksTotal = "breaks_total", restarts, unchained
        case continuesFrom = "continues_from", last
    }
}

/// One place where the chain does not hold.
public struct ChainBreak: Codable, Sendable, Equatable, CustomStringConvertible {
    /// The record whose link fails.
    public var at: LogLocation
    /// The line its `prev` should be the hash of (nil for the first line of the first file).
    @NullIfAbsent public var previous: LogLocation?
    public var kind: Kind
    /// The hash of the previous line (for `prevMismatch`).
    @NullIfAbsent public var expected: String?
    /// What the record carries instead (for `prevMismatch`), or the read error (for `unreadable`).
    @NullIfAbsent public var found: String?

    public enum Kind: String, Codable, Sendable {
        /// `prev` is not the hash of the line before: that line was changed, or lines between were
        /// removed or inserted.
        case prevMismatch = "prev_mismatch"
        /// A record without `prev` after the chain started: rewritten or inserted.
        case missingPrev = "missing_prev"
        /// Not a JSON object (or `prev` not a string): damaged, or not written by tls-bridge.
        case notARecord = "not_a_record"
        /// Longer than any record: skipped; the next link cannot be checked either.
        case oversized
        /// The file could not be read (to its end); the chain cannot be followed through it.
        case unreadable
    }

    public var description: String {
        let before = previous.map { $0.file == at.file ? "line \($0.line)" : $0.description } ?? "the line before"
        switch kind {
        case .prevMismatch:
            return "\(at): prev does not match the SHA-256 of \(before): \(before) was changed, or lines between "
                + "them were deleted or inserted (expected \(expected ?? "?"), found \(found ?? "?"))"
        case .missingPrev:
            return "\(at): record has no \"prev\" although the chain started earlier: rewritten or inserted"
        case .notARecord:
            return "\(at): not a JSON record with a string \"prev\": damaged or not written by tls-bridge"
        case .oversized:
            return "\(at): longer than \(LogLineReader.maximumLineLength) bytes, not a record; the next link is not checked"
        case .unreadable:
            return "\(at.file): cannot be read\(at.line > 0 ? " after line \(at.line)" : ""): \(found ?? "?")"
        }
    }
}

/// The link-by-link state of one verification.
struct ChainVerifier {
    let maxListed: Int
    private(set) var result = ChainVerification(intact: true, records: 0, files: [], breaks: [], breaksTotal: 0,
                                                restarts: [], unchained: 0, continuesFrom: nil, last: nil)
    /// SHA-256 of the previous line; nil before the first line and after an oversized one.
    private var expected: String?
    private var previous: LogLocation?
    private var started = false
    private let decoder = JSONDecoder()

    init(maxListed: Int) {
        self.maxListed = maxListed
    }

    private struct Link: Decodable {
        var prev: String?
    }

    private enum Prev {
        case value(String)
        case missing
        case invalid
    }

    mutating func read(_ file: String) {
        var lines = 0
        defer { result.files.append(.init(file: file, lines: lines)) }
        let reader: LogLineReader
        do {
            reader = try LogLineReader(path: file)
        } catch {
            fail(ChainBreak(at: LogLocation(file: file, line: 0), previous: previous, kind: .unreadable, found: error.reason))
            expected = nil
            return
        }
        while true {
            let line: LogLine
            do {
                guard let next = try reader.next() else { return }
                line = next
            } catch {
                fail(ChainBreak(at: LogLocation(file: file, line: error.afterLine), previous: previous, kind: .unreadable,
                                found: error.reason))
                expected = nil
                return
            }
            lines = line.number
            check(line, at: LogLocation(file: file, line: line.number))
        }
    }

    private mutating func check(_ line: LogLine, at location: LogLocation) {
        result.records += 1
        defer { previous = location }
        guard !line.isOversized else {
            fail(ChainBreak(at: location, previous: previous, kind: .oversized))
            expected = nil
            result.last = nil
            return
        }
        let digest = LogChain.digest(ofLine: line.bytes)
        defer {
            expected = digest
            result.last = .init(at: location, sha256: digest)
        }
        switch prev(of: line.bytes) {
        case .invalid:
            fail(ChainBreak(at: location, previous: previous, kind: .notARecord))
        case .missing:
            if started {
                fail(ChainBreak(at: location, previous: previous, kind: .missingPrev))
            } else {
                result.unchained += 1
            }
        case .value(let prev):
            defer { started = true }
            if prev == LogChain.genesis {
                if started { append(location, to: &result.restarts) }
            } else if previous == nil {
                // The very first line given continues an older chain: older rotations were left out.
                result.continuesFrom = .init(at: location, prev: prev)
            } else if let expected, prev != expected {
                fail(ChainBreak(at: location, previous: previous, kind: .prevMismatch, expected: expected, found: prev))
            }
        }
    }

    private func prev(of bytes: [UInt8]) -> Prev {
        guard bytes.first == UInt8(ascii: "{"), let link = try? decoder.decode(Link.self, from: Data(bytes)) else {
            return .invalid
        }
        return link.prev.map(Prev.value) ?? .missing
    }

    private mutating func fail(_ failure: ChainBreak) {
        result.intact = false
        result.breaksTotal += 1
        if result.breaks.count < maxListed { result.breaks.append(failure) }
    }

    private func append(_ location: LogLocation, to list: inout [LogLocation]) {
        if list.count < maxListed { list.append(location) }
    }
}
