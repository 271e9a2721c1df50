import Foundation

/// The two renderings of a report: aligned text for people, stable JSON for scripts.
extension SessionReport {
    /// One JSON document, keys sorted, indented, ending in a newline (see `SessionReport` for the fields).
    public func json() -> String {
        stableJSON(self)
    }

    /// Aligned plain-text tables, section by section; an empty section says so in one line.
    public func text() -> String {
        var out = header()
        out += "\n" + sessionsSection()
        out += "\n" + evidenceSection()
        out += "\n" + legacySection()
        out += "\n" + failuresSection()
        out += "\n" + certificatesSection()
        if malformedTotal > 0 { out += "\n" + malformedSection() }
        if !omitted.isEmpty {
            out += "\nRows not listed (table limit reached; their sessions are counted in the totals): "
                + omitted.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ") + "\n"
        }
        return out
    }

    private func header() -> String {
        var out = "tls-bridge report: \(totals.records) session record\(totals.records == 1 ? "" : "s") "
            + "(\(totals.outbound) outbound, \(totals.inbound) inbound) in \(files.count) file\(files.count == 1 ? "" : "s")"
        if let first = totals.first, let last = totals.last { out += ", \(first) to \(last)" }
        out += "\n"
        if let since {
            out += "  since \(since): \(totals.beforeSince) earlier record\(totals.beforeSince == 1 ? "" : "s") left out\n"
        }
        for file in files {
            out += "  \(file.path): \(file.lines) lines, \(file.records) records"
            if file.compressed { out += ", gzip" }
            if file.malformed > 0 { out += ", \(file.malformed) malformed" }
            if let error = file.error { out += "; NOT READ TO THE END: \(error)" }
            out += "\n"
        }
        if malformedTotal > 0 {
            out += "  \(malformedTotal) line\(malformedTotal == 1 ? " is not a session record" : "s are not session records")"
                + " (listed at the end)\n"
        }
        return out
    }

    private func sessionsSection() -> String {
        let out = "Sessions by listener, downstream protocol and result\n"
        guard !sessions.isEmpty else { return out + "  none\n" }
        var table = TextTable(headers: ["LISTENER", "DIRECTION", "DOWNSTREAM", "RESULT", "SESSIONS"], numeric: [4])
        for row in sessions {
            table.add([row.listener, row.direction, row.downstreamProtocol, row.result, String(row.count)])
        }
        return out + table.render()
    }

    private func evidenceSection() -> String {
        let evidence = upstream
        var out = "Upstream evidence (outbound sessions to the gateway)\n"
        out += "  outbound sessions: \(evidence.outbound)\n"
        out += "  upstream TLS >= 1.2 with a verified certificate: \(evidence.verified)"
        if let share = evidence.shareVerified { out += " (\(percent(share)) of outbound sessions)" }
        out += "\n"
        if !evidence.byProtocol.isEmpty {
            out += "    by protocol: " + evidence.byProtocol.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }
                .joined(separator: ", ") + "\n"
        }
        out += "  reached the upstream: \(evidence.reached)"
        if let share = evidence.shareOfReached { out += ", of which \(percent(share)) with TLS >= 1.2 and a verified certificate" }
        out += "\n"
        if evidence.exceptionsTotal == 0 {
            out += "  exceptions (reached the upstream without TLS >= 1.2 and a verified certificate): none\n"
        } else {
            out += "  EXCEPTIONS (reached the upstream without TLS >= 1.2 and a verified certificate): \(evidence.exceptionsTotal)\n"
            var table = TextTable(headers: ["AT", "SESSION", "TIME", "UPSTREAM", "PROTOCOL", "VERIFY"])
            for row in evidence.exceptions {
                table.add([row.at.description, row.session, row.time, row.upstream ?? "-", row.protocol ?? "-", row.verify ?? "-"])
            }
            out += table.render(indent: "    ")
        }
        out += "  ended before an upstream was dialled: \(evidence.notDialled)\n"
        out += "  refused by or unreachable upstream: \(evidence.refusedTotal)\n"
        if !evidence.refused.isEmpty {
            var table = TextTable(headers: ["UPSTREAM", "ADDRESS", "PHASE", "CLOSE", "SESSIONS", "LAST SEEN", "REASON"],
                                  numeric: [4])
            for row in evidence.refused {
                table.add([row.upstream ?? "-", row.address ?? "-", row.phase, row.close, String(row.count), row.lastSeen,
                           row.error])
            }
            out += table.render(indent: "    ")
        }
        return out
    }

    private func legacySection() -> String {
        var out = "Merchant systems still on plain TCP or TLS below 1.2\n"
        if legacySources.isEmpty && legacyBackends.isEmpty { return out + "  none\n" }
        if !legacySources.isEmpty {
            var table = TextTable(headers: ["SOURCE", "PROTOCOL", "LISTENERS", "SESSIONS", "FIRST SEEN", "LAST SEEN"],
                                  numeric: [3])
            for row in legacySources {
                table.add([row.address, row.protocol, row.listeners.joined(separator: ","), String(row.count),
                           row.firstSeen, row.lastSeen])
            }
            out += table.render()
        }
        if !legacyBackends.isEmpty {
            out += "  backends on the notification path:\n"
            var table = TextTable(headers: ["BACKEND", "ADDRESS", "PROTOCOL", "SESSIONS", "FIRST SEEN", "LAST SEEN"],
                                  numeric: [3])
            for row in legacyBackends {
                table.add([row.backend, row.address, row.protocol, String(row.count), row.firstSeen, row.lastSeen])
            }
            out += table.render(indent: "    ")
        }
        return out
    }

    private func failuresSection() -> String {
        var out = "Failures by phase and reason\n"
        guard !failures.isEmpty else { return out + "  none\n" }
        var table = TextTable(headers: ["PHASE", "SESSIONS", "LAST SEEN", "REASON"], numeric: [1])
        for row in failures {
            table.add([row.phase, String(row.count), row.lastSeen, row.reason])
        }
        out += table.render()
        out += "  samples:\n"
        for row in failures {
            out += "    \(row.phase) / \(row.reason):\n      \(row.sample)  (\(row.sampleAt))\n"
        }
        return out
    }

    private func certificatesSection() -> String {
        var out = "Certificates seen\n"
        if certificates.isEmpty {
            out += "  none\n"
        } else {
            var table = TextTable(headers: ["ROLE", "NAME", "SESSIONS", "LAST SEEN", "SUBJECT", "ISSUER"], numeric: [2])
            for row in certificates {
                table.add([row.role, row.name ?? "-", String(row.count), row.lastSeen, row.subject, row.issuer ?? ""])
            }
            out += table.render()
        }
        return out + "  note: \(certificateExpiry)\n"
    }

    private func malformedSection() -> String {
        var out = "Lines that are not session records: \(malformedTotal)"
        out += malformed.count < malformedTotal ? " (first \(malformed.count) listed)\n" : "\n"
        for line in malformed {
            out += "  \(line.at): \(line.reason)\n"
        }
        return out
    }

    private func percent(_ share: Double) -> String {
        let tenths = (share * 1000).rounded()
        return "\(Int(tenths) / 10).\(Int(tenths) % 10)%"
    }
}

extension ChainVerification {
    /// One JSON document, keys sorted, indented, ending in a newline.
    public func json() -> String {
        stableJSON(self)
    }

    /// "intact (N records)" or where the chain first breaks and how, then restarts and the anchor hash.
    public func text() -> String {
        let fileList = files.map { "\($0.file) (\($0.lines))" }.joined(separator: ", ")
        var out: String
        if intact {
            out = "intact (\(records) record\(records == 1 ? "" : "s")) in \(fileList)\n"
        } else {
            let first = breaks[0]
            out = "BROKEN at \(first)\n"
            if first.previous.map({ $0.file != first.at.file }) == true && first.kind == .prevMismatch {
                out += "  (the break is at a file boundary: if these files are rotations of one log, give them oldest first)\n"
            }
            out += "  \(records) record\(records == 1 ? "" : "s") read in \(fileList); \(breaksTotal) break\(breaksTotal == 1 ? "" : "s")"
            out += breaks.count < breaksTotal ? " (first \(breaks.count) listed)\n" : "\n"
            for failure in breaks.dropFirst() {
                out += "  \(failure)\n"
            }
        }
        if unchained > 0 {
            out += "  \(unchained) line\(unchained == 1 ? "" : "s") before the chain begins carry no \"prev\" (written before chain = true)\n"
        }
        if let continuesFrom {
            out += "  \(continuesFrom.at) continues an earlier chain (prev \(continuesFrom.prev)): older records were not given, "
                + "so nothing before it is checked\n"
        }
        for restart in restarts {
            out += "  chain restart (\"genesis\") at \(restart): the writer began a new chain there\n"
        }
        if let last {
            out += "  last record \(last.at), SHA-256 \(last.sha256)\n"
            out += "  (truncation and wholesale rewrites are not detectable from the log alone: keep this hash off-host "
                + "and check later that the chain still passes through it)\n"
        }
        return out
    }
}

/// Sorted keys, indented, no escaped slashes, trailing newline: byte-stable for the same value.
func stableJSON<T: Encodable>(_ value: T) -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
    guard let data = try? encoder.encode(value) else { return "{}\n" }
    return String(decoding: data, as: UTF8.self) + "\n"
}
