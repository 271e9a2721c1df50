import BridgeModel
import Foundation

/// One line of the demo bridge's session log, read as the `SessionRecord` it is.
struct DemoRecord {
    let record: SessionRecord

    init?(line: Substring) {
        guard let record = try? JSONDecoder().decode(SessionRecord.self, from: Data(line.utf8)) else { return nil }
        self.record = record
    }

    var listener: String? { record.listener }

    /// Indented JSON with sorted keys, for reading.
    var pretty: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(record), let text = String(data: data, encoding: .utf8) else {
            return "\(record)"
        }
        return text
    }

    /// `downstream.protocol → upstream.protocol`, for the summary line.
    var protocols: String { "\(record.downstream.protocol ?? "?") → \(record.upstream.protocol ?? "?")" }

    /// What keeps this record from being the proof the demo wants, or an empty list when it is: the
    /// merchant side spoke `downstream`, the gateway side TLS 1.2+, the gateway's certificate verified,
    /// the merchant certificate presented, no error, and an answer came back.
    func problems(expectingDownstream downstream: String) -> [String] {
        var problems: [String] = []
        let spoken = record.downstream.protocol ?? "null"
        if spoken != downstream {
            problems.append("downstream.protocol is \(spoken), expected \(downstream)")
        }
        if let error = record.error {
            // The rest (no protocol, no verification, no bytes) follows from the error.
            return problems + ["error: \(error)" + (record.hint.map { " (hint: \($0))" } ?? "")]
        }
        let upstream = record.upstream.protocol ?? "null"
        if upstream != "TLSv1.2" && upstream != "TLSv1.3" {
            problems.append("upstream.protocol is \(upstream), not TLSv1.2 or TLSv1.3")
        }
        let verify = record.upstream.verify ?? "null"
        if verify != "ok" {
            problems.append("upstream.verify is \(verify), not ok")
        }
        if record.upstream.clientCert == nil {
            problems.append("upstream.client_cert is null: no merchant certificate was presented to the gateway")
        }
        if record.bytes.down == 0 {
            problems.append("bytes.down is 0: nothing came back from the gateway")
        }
        return problems
    }
}

enum DemoRecords {
    /// Every session record in the log at `path` (lines that are not JSON objects are skipped).
    static func read(_ path: String) -> [DemoRecord] {
        guard let text = DemoFiles.read(path) else { return [] }
        return text.split(separator: "\n").compactMap { DemoRecord(line: $0) }
    }

    /// Waits up to `seconds` until the log holds a record from each of `listeners`; returns what is
    /// there by then. Records are written when a session ends, just after the merchant's side closes.
    static func wait(for listeners: [String], in path: String, seconds: Double) -> [DemoRecord] {
        let deadline = DemoDeadline(seconds: seconds)
        while true {
            let records = read(path)
            let seen = Set(records.compactMap(\.listener))
            if listeners.allSatisfy(seen.contains) || deadline.passed
                || demoInterruption.load(ordering: .relaxed) != 0 {
                return records
            }
            demoPause(milliseconds: 50)
        }
    }
}

/// An HTTP response as the demo shows it: status line and first line of the body.
struct DemoHTTPAnswer {
    let statusLine: String
    let body: String

    init?(_ bytes: [UInt8]) {
        let text = String(decoding: bytes, as: UTF8.self)
        guard text.hasPrefix("HTTP/"), let headEnd = text.range(of: "\r\n\r\n") ?? text.range(of: "\n\n") else {
            return nil
        }
        let head = text[..<headEnd.lowerBound]
        // "\r\n" is one Character in Swift: split on newlines, not on "\n".
        statusLine = String(head.split(whereSeparator: \.isNewline).first ?? "")
        body = String(text[headEnd.upperBound...])
    }

    var isOK: Bool { statusLine.split(separator: " ").dropFirst().first == "200" }
}
