import BridgeModel
import Foundation
import Testing
@testable import BridgeReport

/// `tls-bridge report` over generated logs: every count traced back to the records written.
@Suite("Report")
struct ReportTests {
    private func report(_ files: [String], since: String? = nil) -> SessionReport {
        let builder = ReportBuilder(options: ReportOptions(since: since.flatMap { RecordTime.parse($0, allowDateOnly: true) },
                                                           sinceText: since))
        for file in files { builder.read(file: file) }
        return builder.finish()
    }

    /// 6 carried plain, 3 carried TLS 1.0, 2 refused upstream (closed port), 1 untrusted gateway,
    /// 2 TLS 1.0 merchants refused at the handshake.
    private func mixedLog() -> [SessionRecord] {
        var records: [SessionRecord] = []
        for n in 1...6 { records.append(Records.ok(n, source: "10.0.0.5:\(41000 + n)")) }
        for n in 7...9 { records.append(Records.ok(n, listener: "legacy", source: "10.0.0.10:\(42000 + n)", protocol: "TLSv1")) }
        records.append(Records.connectRefused(10, source: "10.0.0.5:40010"))
        records.append(Records.connectRefused(11, source: "10.0.0.5:40011"))
        records.append(Records.untrusted(12))
        records.append(Records.legacyHandshakeFailed(13, source: "10.0.0.9:43013"))
        records.append(Records.legacyHandshakeFailed(14, source: "10.0.0.9:43014"))
        return records
    }

    @Test func sessionsAreCountedByListenerDownstreamProtocolAndResult() throws {
        let dir = try ScratchDirectory()
        defer { dir.remove() }
        let log = try dir.write("sessions.jsonl", lines: mixedLog().map(Records.line))
        let r = report([log])
        #expect(r.totals.records == 14 && r.totals.outbound == 14 && r.totals.malformed == 0)
        let rows = r.sessions.map { "\($0.listener) \($0.downstreamProtocol) \($0.result) \($0.count)" }
        #expect(rows == ["legacy TLSv1 ok 3", "legacy none downstream_error 2", "plain plain ok 6",
                         "plain plain upstream_error 3"])
        #expect(r.sessions.map(\.count).reduce(0, +) == 14)
        #expect(r.totals.first == Records.time(1) && r.totals.last == Records.time(14))
        #expect(r.files.first?.records == 14 && r.files.first?.lines == 14)
    }

    @Test func everyLegacySourceIsListedByAddressWithoutPortAndFirstLastSeen() throws {
        let dir = try ScratchDirectory()
        defer { dir.remove() }
        var records = mixedLog()
        records.append(Records.ok(15, source: "10.0.0.10:42015", protocol: "TLSv1.2", upstream: Records.gateway))
        records.append(Records.ok(16, listener: "legacy", source: "[2001:db8::7]:5000", protocol: "TLSv1.1"))
        let r = report([try dir.write("sessions.jsonl", lines: records.map(Records.line))])
        let rows = r.legacySources.map { "\($0.address) \($0.protocol) \($0.listeners) \($0.count) \($0.firstSeen) \($0.lastSeen)" }
        #expect(rows == [
            "10.0.0.5 plain [\"plain\"] 9 \(Records.time(1)) \(Records.time(12))",
            "10.0.0.9 TLSv1 [\"legacy\"] 2 \(Records.time(13)) \(Records.time(14))",  // refused, but offered TLS 1.0
            "10.0.0.10 TLSv1 [\"legacy\"] 3 \(Records.time(7)) \(Records.time(9))",  // TLS 1.2 session 15 not listed
            "2001:db8::7 TLSv1.1 [\"legacy\"] 1 \(Records.time(16)) \(Records.time(16))",
        ])
    }

    @Test func upstreamEvidenceCountsVerifiedSessionsAndFindsNoExceptionInAGoodLog() throws {
        let dir = try ScratchDirectory()
        defer { dir.remove() }
        var records = mixedLog()
        var tls13 = Records.gateway
        tls13.protocol = "TLSv1.3"
        records.append(Records.ok(15, upstream: tls13))
        let e = report([try dir.write("sessions.jsonl", lines: records.map(Records.line))]).upstream
        #expect(e.outbound == 15)
        #expect(e.verified == 10 && e.reached == 10)
        #expect(e.byProtocol == ["TLSv1.2": 9, "TLSv1.3": 1])
        #expect(e.shareVerified == 0.6667 && e.shareOfReached == 1.0)
        #expect(e.exceptions.isEmpty && e.exceptionsTotal == 0)
        #expect(e.notDialled == 2)
        #expect(e.refusedTotal == 3)
    }

    @Test func aSessionCarriedWithoutVerifiedTLS12IsListedAsAnException() throws {
        let dir = try ScratchDirectory()
        defer { dir.remove() }
        var weak = Records.gateway
        weak.protocol = "TLSv1.1"
        var unverified = Records.gateway
        unverified.verify = "self-signed certificate"
        let log = try dir.write("sessions.jsonl", lines: [Records.ok(1), Records.ok(2, upstream: weak),
                                                         Records.ok(3, upstream: unverified)].map(Records.line))
        let e = report([log]).upstream
        #expect(e.verified == 1 && e.reached == 3 && e.exceptionsTotal == 2)
        #expect(e.exceptions.map(\.session) == ["s-2", "s-3"])
        #expect(e.exceptions.map(\.at) == [LogLocation(file: log, line: 2), LogLocation(file: log, line: 3)])
        #expect(e.exceptions.map(\.protocol) == ["TLSv1.1", "TLSv1.2"])
        #expect(e.exceptions.map(\.verify) == ["ok", "self-signed certificate"])
        #expect(e.shareOfReached == 0.3333)
    }

    @Test func refusedUpstreamsAreListedWithTheirReason() throws {
        let dir = try ScratchDirectory()
        defer { dir.remove() }
        let r = report([try dir.write("sessions.jsonl", lines: mixedLog().map(Records.line))])
        let rows = r.upstream.refused.map { "\($0.address ?? "-") \($0.phase) \($0.close) \($0.count) \($0.error)" }
        #expect(rows == [
            "127.0.0.1:5999 connect upstream_error 2 upstream 127.0.0.1:5999: Connection refused",
            "192.0.2.10:443 handshake upstream_error 1 upstream 192.0.2.10:443: certificate verify failed: certificate has expired",
        ])
        #expect(r.upstream.refused.first?.firstSeen == Records.time(10) && r.upstream.refused.first?.lastSeen == Records.time(11))
    }

    @Test func failuresAreGroupedByPhaseAndReasonHeadWithASample() throws {
        let dir = try ScratchDirectory()
        defer { dir.remove() }
        let records = mixedLog() + [Records.connectRefused(20, port: 6000)]
        let log = try dir.write("sessions.jsonl", lines: records.map(Records.line))
        let failures = report([log]).failures
        // Both closed ports are one reason; the merchant's ephemeral ports do not split the handshake failures.
        #expect(failures.map { "\($0.phase) | \($0.reason) | \($0.count)" } == [
            "connect | upstream <address> | 3",
            "downstream_handshake | TLS handshake with the merchant at <address> failed | 2",
            "handshake | upstream <address> | 1",
        ])
        #expect(failures[0].sample == "upstream 127.0.0.1:5999: Connection refused")
        #expect(failures[0].sampleAt == LogLocation(file: log, line: 10))
        #expect(failures[1].sample.hasSuffix("failed: unsupported protocol"))
    }

    @Test func reasonGroupsMaskAddressesButKeepNames() {
        #expect(FailureReason.group("downstream [2001:db8::1]:5000: reset by peer") == "downstream <address>")
        #expect(FailureReason.group("no connection to 10.1.2.3:443 within connect_timeout (10s), phase connect")
                == "no connection to <address> within connect_timeout (10s), phase connect")
        #expect(FailureReason.group("could not resolve nx.gateway.test: NXDOMAIN") == "could not resolve nx.gateway.test")
        #expect(FailureReason.group("max_sessions (4096) sessions are open; connection refused")
                == "max_sessions (4096) sessions are open; connection refused")
        #expect(FailureReason.group("TLSv1.2 only 1.2.3") == "TLSv1.2 only 1.2.3")
    }

    @Test func certificatesAreReportedBySubjectAndRoleWithAnExpiryNote() throws {
        let dir = try ScratchDirectory()
        defer { dir.remove() }
        var withClient = Records.ok(3, listener: "legacy", protocol: "TLSv1.2")
        withClient.downstream.clientCert = "CN=pos-terminal-7"
        let r = report([try dir.write("sessions.jsonl", lines: [Records.ok(1), Records.ok(2), withClient,
                                                               Records.connectRefused(4)].map(Records.line))])
        #expect(r.certificates.map { "\($0.role) \($0.name ?? "-") \($0.subject) \($0.issuer ?? "-") \($0.count)" } == [
            "downstream_client legacy CN=pos-terminal-7 - 1",
            "upstream_client gw CN=merchant-0001,O=Test Merchant - 3",
            "upstream_peer gw CN=gateway.test CN=Test CA 3",
        ])
        #expect(r.certificateExpiry.contains("`tls-bridge check`") && r.certificateExpiry.contains("`tls-bridge probe`"))
    }

    @Test func sinceKeepsRecordsAtOrAfterTheGivenTime() throws {
        let dir = try ScratchDirectory()
        defer { dir.remove() }
        let records = [Records.ok(1, day: 25), Records.ok(2, day: 26), Records.ok(3, day: 27), Records.ok(4, day: 28)]
        let log = try dir.write("sessions.jsonl", lines: records.map(Records.line))
        let byDate = report([log], since: "2026-11-27")
        #expect(byDate.totals.records == 2 && byDate.totals.beforeSince == 2 && byDate.since == "2026-11-27")
        #expect(byDate.totals.first == Records.time(3, day: 27))
        // 12:00:03Z on the 27th is 21:00:03 in Tokyo: that record itself is included.
        let byOffset = report([log], since: "2026-11-27T21:00:03+09:00")
        #expect(byOffset.totals.records == 2)
        let later = report([log], since: "2026-11-27T21:00:03.001+09:00")
        #expect(later.totals.records == 1 && later.sessions.map(\.count) == [1])
    }

    @Test func rotatedFilesPlainAndGzipAreReadAsOneLog() throws {
        let dir = try ScratchDirectory()
        defer { dir.remove() }
        let all = mixedLog()
        let oldest = try dir.writeGzip("sessions.jsonl.2.gz", lines: all[0..<5].map(Records.line))
        let older = try dir.write("sessions.jsonl.1", lines: all[5..<9].map(Records.line))
        let current = try dir.write("sessions.jsonl", lines: all[9...].map(Records.line))
        let rotated = report([current, older, oldest])
        let single = report([try dir.write("single.jsonl", lines: all.map(Records.line))])
        #expect(rotated.totals.records == 14)
        #expect(rotated.sessions == single.sessions && rotated.legacySources == single.legacySources
                && rotated.upstream == single.upstream && rotated.certificates == single.certificates)
        #expect(rotated.files.map(\.compressed) == [false, false, true])
        #expect(rotated.files.map(\.records) == [5, 4, 5])
    }

    @Test func malformedLinesAreCountedWithTheirPlaceAndNeverStopTheReport() throws {
        let dir = try ScratchDirectory()
        defer { dir.remove() }
        var badTime = Records.ok(9)
        badTime.time = "27/11/2026 12:00"
        let lines = [Records.line(Records.ok(1)), "not json at all", Records.line(Records.ok(2)), "",
                     #"{"time":"2026-11-27T12:00:00Z"}"#, Records.line(badTime),
                     String(Records.line(Records.ok(3)).dropLast(20)),  // cut short mid-write
                     String(repeating: "x", count: LogLineReader.maximumLineLength + 10),
                     Records.line(Records.ok(4))]
        let log = try dir.write("sessions.jsonl", lines: lines, finalNewline: false)
        let r = report([log])
        #expect(r.totals.records == 3 && r.totals.malformed == 6 && r.malformedTotal == 6)
        #expect(r.malformed.map(\.at.line) == [2, 4, 5, 6, 7, 8])
        #expect(r.malformed.allSatisfy { $0.at.file == log })
        #expect(r.malformed[0].reason == "not JSON")
        #expect(r.malformed[1].reason == "empty line")
        #expect(r.malformed[2].reason == #"not a session record: no "session""#)
        #expect(r.malformed[3].reason.contains("not RFC 3339"))
        #expect(r.malformed[5].reason.contains("longer than any session record"))
        #expect(r.files == [.init(path: log, lines: 9, records: 3, malformed: 6, compressed: false, error: nil)])
        #expect(r.text().contains("\(log):2: not JSON"))
    }

    @Test func aGzipFileCutShortKeepsItsEarlierRecordsAndSaysSo() throws {
        let dir = try ScratchDirectory()
        defer { dir.remove() }
        let lines = (1...2000).map { Records.line(Records.ok($0, source: "10.0.\($0 % 200).1:4000")) }
        let whole = try dir.writeGzip("whole.gz", lines: lines)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: whole))
        let cut = dir.file("cut.gz")
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: cut))
        let builder = ReportBuilder()
        let error = builder.read(file: cut)
        let missing = builder.read(file: dir.file("absent.jsonl"))
        let r = builder.finish()
        #expect(error != nil && missing != nil)
        #expect(r.files[0].error?.contains("ends early") == true)
        #expect(r.files[0].records > 0 && r.files[0].records < 2000 && r.totals.records == r.files[0].records)
        #expect(r.files[1].error == "No such file or directory")
    }

    @Test func inboundRecordsCountButStayOutOfTheUpstreamEvidence() throws {
        let dir = try ScratchDirectory()
        defer { dir.remove() }
        let inbound = SessionRecord(time: Records.time(2), session: "in-1", direction: "inbound", listener: "notify",
                                    downstream: .init(address: "203.0.113.5:50000", protocol: "TLSv1.3"),
                                    upstream: .init(name: "web", address: "10.0.0.20:443", protocol: "TLSv1"),
                                    phase: "open", close: "upstream_eof")
        let line = Records.line(inbound)
        #expect(line.contains(#""backend":{"#))
        let r = report([try dir.write("sessions.jsonl", lines: [Records.line(Records.ok(1)), line])])
        #expect(r.totals.inbound == 1 && r.totals.outbound == 1 && r.upstream.outbound == 1)
        #expect(r.legacySources.map(\.address) == ["10.0.0.5"])
        #expect(r.legacyBackends.map { "\($0.backend) \($0.address) \($0.protocol) \($0.count)" } == ["web 10.0.0.20:443 TLSv1 1"])
    }

    @Test func jsonIsOneStableDocumentWithSortedKeys() throws {
        let dir = try ScratchDirectory()
        defer { dir.remove() }
        let log = try dir.write("sessions.jsonl", lines: mixedLog().map(Records.line) + ["junk"])
        let first = report([log]).json()
        #expect(first == report([log]).json())
        let object = try #require(try JSONSerialization.jsonObject(with: Data(first.utf8)) as? [String: Any])
        #expect(object.keys.sorted() == ["certificate_expiry", "certificates", "failures", "files", "legacy_backends",
                                         "legacy_sources", "malformed", "malformed_total", "omitted", "sessions", "since",
                                         "totals", "upstream"])
        let keys = first.split(separator: "\n").filter { $0.hasPrefix("  \"") }.map { $0.split(separator: "\"")[1] }
        #expect(keys == keys.sorted())
        let decoded = try JSONDecoder().decode(SessionReport.self, from: Data(first.utf8))
        #expect(decoded == report([log]))
    }

    @Test func tablesStopGrowingAtTheRowLimitAndSaySo() throws {
        let dir = try ScratchDirectory()
        defer { dir.remove() }
        let records = (1...50).map { Records.ok($0, source: "10.0.1.\($0):4000") }
        let builder = ReportBuilder(options: ReportOptions(maxRows: 10))
        builder.read(file: try dir.write("sessions.jsonl", lines: records.map(Records.line)))
        let r = builder.finish()
        #expect(r.legacySources.count == 10 && r.omitted["legacy_sources"] == 40)
        #expect(r.totals.records == 50 && r.upstream.verified == 50)
    }

    @Test func theTextReportHasAlignedTables() throws {
        let dir = try ScratchDirectory()
        defer { dir.remove() }
        let text = report([try dir.write("sessions.jsonl", lines: mixedLog().map(Records.line))]).text()
        #expect(text.contains("exceptions (reached the upstream without TLS >= 1.2 and a verified certificate): none"))
        #expect(text.contains("upstream TLS >= 1.2 with a verified certificate: 9 (64.3% of outbound sessions)"))
        let table = text.split(separator: "\n").drop { !$0.hasPrefix("Sessions by") }.dropFirst().prefix(5)
        #expect(table.count == 5 && table.first?.hasPrefix("  LISTENER") == true)
        #expect(Set(table.map(\.count)).count == 1, "rows of the sessions table end in one column: \(Array(table))")
        #expect(!text.split(separator: "\n").contains { $0.hasSuffix(" ") })
    }
}
