import BridgeModel
import Foundation

/// How `ReportBuilder` filters and bounds a report.
public struct ReportOptions: Sendable {
    /// Only records whose `time` is at or after this count (`--since`); nil: all.
    public var since: RecordTime?
    /// The `--since` argument as given, echoed in the report.
    public var sinceText: String?
    /// Distinct rows kept per table (sources, failures, certificates, ...). A log from a sane deployment
    /// stays far below it; the cap keeps memory bounded whatever the input (see `SessionReport.omitted`).
    public var maxRows: Int
    /// Individual lines listed (malformed lines, upstream exceptions); all are counted.
    public var maxListed: Int

    public init(since: RecordTime? = nil, sinceText: String? = nil, maxRows: Int = 10_000, maxListed: Int = 100) {
        self.since = since
        self.sinceText = sinceText
        self.maxRows = maxRows
        self.maxListed = maxListed
    }
}

/// Builds a `SessionReport` from session logs, one record at a time: memory grows with the number of
/// distinct listeners, sources, reasons and certificates (each table capped by `ReportOptions.maxRows`),
/// never with the number of records. Blocking file I/O; not thread-safe.
public final class ReportBuilder {
    private let options: ReportOptions
    private let decoder = JSONDecoder()

    private var files: [SessionReport.FileSummary] = []
    private var totals = SessionReport.Totals(records: 0, outbound: 0, inbound: 0, beforeSince: 0, malformed: 0)
    private var firstTime: Stamp?
    private var lastTime: Stamp?
    private var sessions = Table<SessionKey, Int>()
    private var sources = Table<SourceKey, Seen>()
    private var sourceListeners: [SourceKey: Set<String>] = [:]
    private var backends = Table<BackendKey, Seen>()
    private var evidence = SessionReport.UpstreamEvidence(outbound: 0, verified: 0, reached: 0, byProtocol: [:],
                                                          exceptions: [], exceptionsTotal: 0, notDialled: 0,
                                                          refused: [], refusedTotal: 0)
    private var refused = Table<RefusedKey, Seen>()
    private var failures = Table<FailureKey, Seen>()
    private var failureSamples: [FailureKey: (String, LogLocation)] = [:]
    private var certificates = Table<CertificateKey, Seen>()
    private var malformed: [SessionReport.MalformedLine] = []

    public init(options: ReportOptions = ReportOptions()) {
        self.options = options
    }

    /// Reads one log (plain or gzip) to its end. Lines that are not session records are counted and
    /// listed, never fatal; a file that cannot be read (to its end) is noted in `files[].error` and the
    /// records before the problem still count. Returns that error, if any, so a caller can exit non-zero.
    @discardableResult
    public func read(file path: String) -> LogReadError? {
        var summary = SessionReport.FileSummary(path: path, lines: 0, records: 0, malformed: 0, compressed: false)
        defer { files.append(summary) }
        let reader: LogLineReader
        do {
            reader = try LogLineReader(path: path)
        } catch {
            summary.error = error.reason
            return error
        }
        while true {
            let line: LogLine
            do {
                guard let next = try reader.next() else { break }
                line = next
            } catch {
                summary.error = "\(error.reason) (after line \(error.afterLine))"
                summary.compressed = reader.isCompressed
                return error
            }
            summary.lines = line.number
            summary.compressed = reader.isCompressed
            let location = LogLocation(file: path, line: line.number)
            switch decode(line) {
            case .success(let record, let time):
                if add(record, time: time, at: location) { summary.records += 1 }
            case .failure(let reason):
                summary.malformed += 1
                addMalformed(reason, at: location)
            }
        }
        return nil
    }

    private enum Decoded {
        case success(SessionRecord, RecordTime)
        case failure(String)
    }

    private func decode(_ line: LogLine) -> Decoded {
        if line.isOversized { return .failure("line of \(line.length) bytes is longer than any session record") }
        if line.bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0d }) { return .failure("empty line") }
        let record: SessionRecord
        do {
            record = try decoder.decode(SessionRecord.self, from: Data(line.bytes))
        } catch let error as DecodingError {
            return .failure(Self.describe(error))
        } catch {
            return .failure("not a session record: \(error)")
        }
        guard let time = RecordTime.parse(record.time) else {
            return .failure("time \"\(record.time.prefix(40))\" is not RFC 3339")
        }
        return .success(record, time)
    }

    static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context, _ key: CodingKey? = nil) -> String {
            ((context.codingPath + (key.map { [$0] } ?? [])).map { $0.intValue.map(String.init) ?? $0.stringValue })
                .joined(separator: ".")
        }
        switch error {
        case .keyNotFound(let key, let context):
            return "not a session record: no \"\(path(context, key))\""
        case .valueNotFound(_, let context):
            return "not a session record: \"\(path(context))\" is null"
        case .typeMismatch(_, let context):
            return "not a session record: \"\(path(context))\" has the wrong type"
        case .dataCorrupted(let context):
            return context.codingPath.isEmpty ? "not JSON" : "not a session record: \"\(path(context))\" is invalid"
        @unknown default:
            return "not a session record"
        }
    }

    private func addMalformed(_ reason: String, at location: LogLocation) {
        totals.malformed += 1
        if malformed.count < options.maxListed {
            malformed.append(.init(at: location, reason: reason))
        }
    }

    /// Counts one record; false if `--since` leaves it out.
    @discardableResult
    func add(_ record: SessionRecord, time: RecordTime, at location: LogLocation) -> Bool {
        if let since = options.since, time < since {
            totals.beforeSince += 1
            return false
        }
        let stamp = Stamp(time: time, text: record.time)
        totals.records += 1
        if firstTime.map({ stamp.time < $0.time }) ?? true { firstTime = stamp }
        if lastTime.map({ stamp.time > $0.time }) ?? true { lastTime = stamp }
        let inbound = record.direction == "inbound"
        if inbound { totals.inbound += 1 } else if record.direction == "outbound" { totals.outbound += 1 }

        let downstreamProtocol = record.downstream.protocol ?? "none"
        sessions.update(SessionKey(listener: record.listener, direction: record.direction, protocol: downstreamProtocol,
                                   result: record.error == nil ? "ok" : record.close),
                        limit: options.maxRows, default: 0) { $0 += 1 }

        if inbound {
            if let protocolName = record.upstream.protocol, TLSVersion.isLegacy(protocolName) {
                backends.update(BackendKey(backend: record.upstream.name ?? "?", address: record.upstream.address ?? "?",
                                           protocol: protocolName),
                                limit: options.maxRows, default: Seen(stamp)) { $0.add(stamp) }
            }
        } else {
            addLegacySource(record, stamp)
            addEvidence(record, stamp, at: location)
        }
        if let error = record.error {
            let key = FailureKey(phase: record.phase, reason: FailureReason.group(error))
            let added = failures.update(key, limit: options.maxRows, default: Seen(stamp)) { $0.add(stamp) }
            if added { failureSamples[key] = (error, location) }
        }
        addCertificates(record, stamp)
        return true
    }

    private func addLegacySource(_ record: SessionRecord, _ stamp: Stamp) {
        let spoken = record.downstream.protocol ?? record.downstream.offered?.maxVersion
        guard let spoken, TLSVersion.isLegacy(spoken) else { return }
        let key = SourceKey(address: SourceAddress.host(of: record.downstream.address), protocol: spoken)
        if sources.update(key, limit: options.maxRows, default: Seen(stamp), { $0.add(stamp) }) || sourceListeners[key] != nil {
            sourceListeners[key, default: []].insert(record.listener)
        }
    }

    private func addEvidence(_ record: SessionRecord, _ stamp: Stamp, at location: LogLocation) {
        evidence.outbound += 1
        let upstream = record.upstream
        let reached = upstream.protocol != nil || record.bytes.up > 0 || record.bytes.down > 0
        let verified = upstream.protocol.map(TLSVersion.isAtLeast12) == true && upstream.verify == "ok"
        if verified {
            evidence.verified += 1
            evidence.byProtocol[upstream.protocol!, default: 0] += 1
        }
        if reached {
            evidence.reached += 1
            if !verified {
                evidence.exceptionsTotal += 1
                if evidence.exceptions.count < options.maxListed {
                    evidence.exceptions.append(.init(at: location, session: record.session, time: record.time,
                                                     upstream: upstream.name, protocol: upstream.protocol,
                                                     verify: upstream.verify, error: record.error))
                }
            }
            return
        }
        let phase = SessionRecord.Phase(rawValue: record.phase)
        if let error = record.error, phase?.isDial == true {
            evidence.refusedTotal += 1
            refused.update(RefusedKey(upstream: upstream.name, address: upstream.address, phase: record.phase,
                                      close: record.close, error: error),
                           limit: options.maxRows, default: Seen(stamp)) { $0.add(stamp) }
        } else if phase == .accept || phase == .downstreamHandshake || upstream.address == nil {
            evidence.notDialled += 1
        }
    }

    private func addCertificates(_ record: SessionRecord, _ stamp: Stamp) {
        var seen: [CertificateKey] = []
        let upstreamRole = record.direction == "inbound" ? "backend" : "upstream"
        if let subject = record.upstream.clientCert {
            seen.append(CertificateKey(role: "\(upstreamRole)_client", name: record.upstream.name, subject: subject, issuer: nil))
        }
        if let subject = record.upstream.peer {
            seen.append(CertificateKey(role: "\(upstreamRole)_peer", name: record.upstream.name, subject: subject,
                                       issuer: record.upstream.peerIssuer))
        }
        if let subject = record.downstream.clientCert {
            seen.append(CertificateKey(role: "downstream_client", name: record.listener, subject: subject, issuer: nil))
        }
        for key in seen {
            certificates.update(key, limit: options.maxRows, default: Seen(stamp)) { $0.add(stamp) }
        }
    }

    /// The report over everything read so far.
    public func finish() -> SessionReport {
        var upstream = evidence
        upstream.shareVerified = Self.share(upstream.verified, of: upstream.outbound)
        upstream.shareOfReached = Self.share(upstream.verified, of: upstream.reached)
        upstream.refused = refused.rows.map { key, seen in
            .init(upstream: key.upstream, address: key.address, phase: key.phase, close: key.close, error: key.error,
                  count: seen.count, firstSeen: seen.first.text, lastSeen: seen.last.text)
        }.sorted { ($0.upstream ?? "", $0.address ?? "", $0.error, $0.phase) < ($1.upstream ?? "", $1.address ?? "", $1.error, $1.phase) }

        var totals = self.totals
        totals.first = firstTime?.text
        totals.last = lastTime?.text
        var omitted: [String: Int] = [:]
        for (name, count) in [("sessions", sessions.omitted), ("legacy_sources", sources.omitted),
                              ("legacy_backends", backends.omitted), ("refused", refused.omitted),
                              ("failures", failures.omitted), ("certificates", certificates.omitted)] where count > 0 {
            omitted[name] = count
        }
        return SessionReport(
            files: files,
            since: options.sinceText,
            totals: totals,
            sessions: sessions.rows.map { key, count in
                .init(listener: key.listener, direction: key.direction, downstreamProtocol: key.protocol,
                      result: key.result, count: count)
            }.sorted { ($0.listener, $0.direction, $0.downstreamProtocol, $0.result)
                < ($1.listener, $1.direction, $1.downstreamProtocol, $1.result) },
            legacySources: sources.rows.map { key, seen in
                .init(address: key.address, protocol: key.protocol, listeners: (sourceListeners[key] ?? []).sorted(),
                      count: seen.count, firstSeen: seen.first.text, lastSeen: seen.last.text)
            }.sorted { (SourceAddress.sortKey($0.address), $0.protocol) < (SourceAddress.sortKey($1.address), $1.protocol) },
            legacyBackends: backends.rows.map { key, seen in
                .init(backend: key.backend, address: key.address, protocol: key.protocol, count: seen.count,
                      firstSeen: seen.first.text, lastSeen: seen.last.text)
            }.sorted { ($0.backend, $0.address, $0.protocol) < ($1.backend, $1.address, $1.protocol) },
            upstream: upstream,
            failures: failures.rows.map { key, seen in
                let sample = failureSamples[key]!
                return .init(phase: key.phase, reason: key.reason, count: seen.count, sample: sample.0, sampleAt: sample.1,
                             firstSeen: seen.first.text, lastSeen: seen.last.text)
            }.sorted { ($1.count, $0.phase, $0.reason) < ($0.count, $1.phase, $1.reason) },
            certificates: certificates.rows.map { key, seen in
                .init(role: key.role, name: key.name, subject: key.subject, issuer: key.issuer, count: seen.count,
                      firstSeen: seen.first.text, lastSeen: seen.last.text)
            }.sorted { ($0.role, $0.name ?? "", $0.subject, $0.issuer ?? "") < ($1.role, $1.name ?? "", $1.subject, $1.issuer ?? "") },
            certificateExpiry: SessionReport.certificateExpiryNote,
            malformed: malformed,
            malformedTotal: totals.malformed,
            omitted: omitted
        )
    }

    /// A fraction rounded to four decimals (stable across platforms), or nil for an empty denominator.
    static func share(_ part: Int, of whole: Int) -> Double? {
        whole == 0 ? nil : (Double(part) / Double(whole) * 10_000).rounded() / 10_000
    }
}

// MARK: - Aggregation keys

/// A record's time, parsed for ordering and kept as written for display.
struct Stamp {
    var time: RecordTime
    var text: String
}

/// Count and first/last time of a group.
struct Seen {
    var count: Int
    var first: Stamp
    var last: Stamp

    init(_ stamp: Stamp) {
        count = 0
        first = stamp
        last = stamp
    }

    mutating func add(_ stamp: Stamp) {
        count += 1
        if stamp.time < first.time { first = stamp }
        if stamp.time > last.time { last = stamp }
    }
}

/// A dictionary that stops taking new keys at a limit and counts what it turned away.
struct Table<Key: Hashable, Value> {
    private(set) var rows: [Key: Value] = [:]
    private(set) var omitted = 0

    /// Updates the row for `key`, creating it from `initial` if there is room. True if the row was created.
    @discardableResult
    mutating func update(_ key: Key, limit: Int, default initial: @autoclosure () -> Value,
                         _ change: (inout Value) -> Void) -> Bool {
        if rows[key] != nil {
            change(&rows[key]!)
            return false
        }
        guard rows.count < limit else {
            omitted += 1
            return false
        }
        var value = initial()
        change(&value)
        rows[key] = value
        return true
    }
}

struct SessionKey: Hashable {
    var listener, direction, `protocol`, result: String
}

struct SourceKey: Hashable {
    var address, `protocol`: String
}

struct BackendKey: Hashable {
    var backend, address, `protocol`: String
}

struct RefusedKey: Hashable {
    var upstream, address: String?
    var phase, close, error: String
}

struct FailureKey: Hashable {
    var phase, reason: String
}

struct CertificateKey: Hashable {
    var role: String
    var name: String?
    var subject: String
    var issuer: String?
}
