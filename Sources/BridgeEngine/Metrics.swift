import BridgeIO
import BridgeModel
import Synchronization

/// Counters for `/metrics`, fed once per ended session from its record (never per read), by
/// reloads, by session-limit refusals and by each verified upstream handshake (the gateway's
/// certificate). Shared by the workers and the admin thread; carried over across reloads.
///
/// "result" means the same as in `tls-bridge report`: `ok` for a session that ended without an
/// error, otherwise its `close` value. Connections refused at accept (`limit`, `refused`) count too.
///
/// Series an alert watches for a first increase exist from the start at 0 (each limit; each
/// configured upstream's handshake failure reasons, spare outcomes and connection sources):
/// Prometheus' `increase()` cannot see the first count of a series that appears with it.
public final class Metrics: Sendable {
    /// Distinct merchant addresses `tls_bridge_downstream_sessions_total` names; later ones are
    /// counted under `source="other"`, so a scan from many addresses cannot grow the scrape.
    static let sourceLimit = 100

    private struct SessionKey: Hashable {
        var listener: String
        var downstreamProtocol: String
        var result: String
    }

    private struct SourceKey: Hashable {
        var source: String
        var downstreamProtocol: String
    }

    /// The gateway's certificate, as last verified in a handshake with one upstream.
    struct VerifiedCertificate: Equatable {
        var subject: String
        var expiresAt: Int64
    }

    private struct State {
        var sessions: [SessionKey: Int] = [:]
        var bytesUp = 0
        var bytesDown = 0
        var handshakeFailures: [String: [String: Int]] = [:]
        var handshakeSeconds = Histogram(bounds: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10])
        var sessionSeconds = Histogram(bounds: [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900])
        var reloads: [String: Int] = ["success": 0, "failure": 0]
        /// Per upstream: spares ready now (across workers), and what became of spares.
        var sparesReady: [String: Int] = [:]
        var spareEvents: [String: [String: Int]] = [:]
        /// Per upstream: connections sessions got, from a spare or dialled on the session's path.
        var upstreamConnections: [String: [String: Int]] = [:]
        var bySource: [SourceKey: Int] = [:]
        var sources: Set<String> = []
        var limitRefusals: [SessionLimit: Int] = Dictionary(uniqueKeysWithValues: SessionLimit.allCases.map { ($0, 0) })
        var upstreamCertificates: [String: VerifiedCertificate] = [:]
    }

    private let state = Mutex(State())

    public init() {}

    /// Counts one ended session. `handshakeFailure` is the label of its failed upstream handshake
    /// (see `Dialer.Failure.handshakeLabel`), if it had one.
    func observe(_ record: SessionRecord, handshakeFailure: String? = nil) {
        state.withLock { state in
            let key = SessionKey(listener: record.listener, downstreamProtocol: record.downstream.protocol ?? "none",
                                 result: record.error == nil ? "ok" : record.close)
            state.sessions[key, default: 0] += 1
            state.bytesUp += record.bytes.up
            state.bytesDown += record.bytes.down
            // A connection refused at accept never was a session: counted, but not a duration.
            if record.phase != "accept" {
                state.sessionSeconds.observe(Double(record.durationMs) / 1000)
            }
            if let milliseconds = record.upstream.handshakeMs {
                state.handshakeSeconds.observe(Double(milliseconds) / 1000)
            }
            // A session that reached its upstream either took a spare or dialled while the merchant waited.
            if record.direction == "outbound", let upstream = record.upstream.name, record.upstream.address != nil {
                let source = record.upstream.spareAgeMs == nil ? "dial" : "spare"
                state.upstreamConnections[upstream, default: [:]][source, default: 0] += 1
            }
            if let handshakeFailure, record.upstream.protocol == nil {
                state.handshakeFailures[record.upstream.name ?? "-", default: [:]][handshakeFailure, default: 0] += 1
            }
            if record.direction == "outbound" {
                // As `report` reads it: what the merchant spoke, or for a failed handshake the most it offered.
                let spoken = record.downstream.protocol ?? record.downstream.offered?.maxVersion ?? "none"
                var source = record.downstream.host
                if !state.sources.contains(source) {
                    if state.sources.count < Self.sourceLimit { state.sources.insert(source) } else { source = "other" }
                }
                state.bySource[SourceKey(source: source, downstreamProtocol: spoken), default: 0] += 1
            }
        }
    }

    /// Counts what a spare pool of `upstream` reported.
    func spare(_ event: SparePool.Event, upstream: String) {
        state.withLock { state in
            let name: String
            switch event {
            case .ready:
                state.sparesReady[upstream, default: 0] += 1
                return
            case .handedOver: name = "handed_over"
            case .expired: name = "expired"
            case .foundDead: name = "found_dead"
            case .dialFailed: name = "dial_failed"
            case .closed(let count):
                state.sparesReady[upstream, default: 0] -= count
                return
            }
            if name != "dial_failed" { state.sparesReady[upstream, default: 0] -= 1 }
            state.spareEvents[upstream, default: [:]][name, default: 0] += 1
        }
    }

    func reloaded(success: Bool) {
        state.withLock { $0.reloads[success ? "success" : "failure", default: 0] += 1 }
    }

    /// Counts a connection refused by `limit` (its record is counted by `observe` as `result="limit"`).
    func refused(by limit: SessionLimit) {
        state.withLock { $0.limitRefusals[limit, default: 0] += 1 }
    }

    /// Remembers the certificate `upstream` presented in a completed handshake, if it was verified.
    func upstreamHandshake(_ upstream: String, _ tls: TLSDetails) {
        guard tls.verification == "ok", let subject = tls.peerSubject, let expiresAt = tls.peerExpiresAt else { return }
        upstreamVerified(upstream, subject: subject, expiresAt: expiresAt)
    }

    /// Remembers the certificate `upstream` presented in a handshake that verified it; the last one
    /// wins, so a gateway that renews its certificate is seen with the new one.
    func upstreamVerified(_ upstream: String, subject: String, expiresAt: Int64) {
        state.withLock { $0.upstreamCertificates[upstream] = VerifiedCertificate(subject: subject, expiresAt: expiresAt) }
    }

    /// The gateway certificates last verified, by upstream name.
    func verifiedUpstreamCertificates() -> [String: VerifiedCertificate] {
        state.withLock { $0.upstreamCertificates }
    }

    /// The Prometheus text exposition (version 0.0.4). `upstreams` are the configured upstream names
    /// (their handshake failure, spare and connection series start at 0); `certificates` the configured ones and the
    /// gateways' (`kind="upstream"`).
    func render(active: Int, maxSessions: Int, upstreams: [String],
                certificates: [(kind: String, name: String, subject: String, expiresAt: Int64)]) -> String {
        let state = self.state.withLock { $0 }
        var out = ""
        func family(_ name: String, _ type: String, _ help: String) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
        }
        family("tls_bridge_sessions_total", "counter", "Sessions ended (and connections refused at accept), by listener, downstream protocol and result (ok, or the close reason).")
        for (key, count) in state.sessions.sorted(by: { "\($0.key)" < "\($1.key)" }) {
            out += "tls_bridge_sessions_total{listener=\"\(escape(key.listener))\",downstream_protocol=\"\(escape(key.downstreamProtocol))\","
                + "result=\"\(escape(key.result))\"} \(count)\n"
        }
        family("tls_bridge_sessions_active", "gauge", "Sessions open now, across workers.")
        out += "tls_bridge_sessions_active \(active)\n"
        family("tls_bridge_max_sessions", "gauge", "The configured limits.max_sessions: more open sessions are refused.")
        out += "tls_bridge_max_sessions \(maxSessions)\n"
        family("tls_bridge_limit_refusals_total", "counter", "Connections refused because a session limit was reached, by limit (max_sessions, max_sessions_per_source).")
        for (limit, count) in state.limitRefusals.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            out += "tls_bridge_limit_refusals_total{limit=\"\(limit.rawValue)\"} \(count)\n"
        }
        family("tls_bridge_downstream_sessions_total", "counter", "Outbound sessions by merchant source address and the protocol it spoke"
            + " (plain, a TLS version, or for a failed handshake the highest it offered; none if unknown). After \(Self.sourceLimit) addresses, source=\"other\".")
        for (key, count) in state.bySource.sorted(by: { ($0.key.source, $0.key.downstreamProtocol) < ($1.key.source, $1.key.downstreamProtocol) }) {
            out += "tls_bridge_downstream_sessions_total{source=\"\(escape(key.source))\",downstream_protocol=\"\(escape(key.downstreamProtocol))\"} \(count)\n"
        }
        family("tls_bridge_bytes_total", "counter", "Payload bytes carried, by direction (up: merchant to gateway).")
        out += "tls_bridge_bytes_total{direction=\"up\"} \(state.bytesUp)\ntls_bridge_bytes_total{direction=\"down\"} \(state.bytesDown)\n"
        family("tls_bridge_upstream_handshake_failures_total", "counter", "Failed upstream TLS handshakes, by upstream and reason.")
        var failures = state.handshakeFailures
        for upstream in upstreams {
            for reason in Dialer.Failure.handshakeLabels { failures[upstream, default: [:]][reason, default: 0] += 0 }
        }
        for (upstream, reasons) in failures.sorted(by: { $0.key < $1.key }) {
            for (reason, count) in reasons.sorted(by: { $0.key < $1.key }) {
                out += "tls_bridge_upstream_handshake_failures_total{upstream=\"\(escape(upstream))\",reason=\"\(reason)\"} \(count)\n"
            }
        }
        family("tls_bridge_upstream_handshake_seconds", "histogram", "Upstream TLS handshake time.")
        out += state.handshakeSeconds.render("tls_bridge_upstream_handshake_seconds")
        family("tls_bridge_session_duration_seconds", "histogram", "Session length, accept to close.")
        out += state.sessionSeconds.render("tls_bridge_session_duration_seconds")
        family("tls_bridge_certificate_expiry_timestamp_seconds", "gauge", "When each certificate expires (Unix time), by kind: client"
            + " (presented to an upstream), listener (presented to merchants), upstream (the gateway's, as last verified).")
        for certificate in certificates {
            out += "tls_bridge_certificate_expiry_timestamp_seconds{kind=\"\(certificate.kind)\",name=\"\(escape(certificate.name))\","
                + "subject=\"\(escape(certificate.subject))\"} \(certificate.expiresAt)\n"
        }
        family("tls_bridge_upstream_spares_ready", "gauge", "Pre-opened upstream connections (preconnect) ready now, across workers, by upstream.")
        var sparesReady = state.sparesReady
        var spareEvents = state.spareEvents
        var connections = state.upstreamConnections
        for upstream in upstreams {
            sparesReady[upstream, default: 0] += 0
            for outcome in ["handed_over", "expired", "found_dead", "dial_failed"] { spareEvents[upstream, default: [:]][outcome, default: 0] += 0 }
            for source in ["spare", "dial"] { connections[upstream, default: [:]][source, default: 0] += 0 }
        }
        for (upstream, count) in sparesReady.sorted(by: { $0.key < $1.key }) {
            out += "tls_bridge_upstream_spares_ready{upstream=\"\(escape(upstream))\"} \(count)\n"
        }
        family("tls_bridge_upstream_spares_total", "counter", "What became of pre-opened upstream connections, by upstream and outcome"
            + " (handed_over, expired unused, found_dead: closed by the gateway before use, dial_failed).")
        for (upstream, outcomes) in spareEvents.sorted(by: { $0.key < $1.key }) {
            for (outcome, count) in outcomes.sorted(by: { $0.key < $1.key }) {
                out += "tls_bridge_upstream_spares_total{upstream=\"\(escape(upstream))\",outcome=\"\(outcome)\"} \(count)\n"
            }
        }
        family("tls_bridge_upstream_connections_total", "counter", "Upstream connections sessions used, by upstream and source"
            + " (spare: pre-opened; dial: dialled on the session's critical path).")
        for (upstream, sources) in connections.sorted(by: { $0.key < $1.key }) {
            for (source, count) in sources.sorted(by: { $0.key < $1.key }) {
                out += "tls_bridge_upstream_connections_total{upstream=\"\(escape(upstream))\",source=\"\(source)\"} \(count)\n"
            }
        }
        family("tls_bridge_config_reloads_total", "counter", "Configuration reloads (SIGHUP), by result.")
        for (result, count) in state.reloads.sorted(by: { $0.key < $1.key }) {
            out += "tls_bridge_config_reloads_total{result=\"\(result)\"} \(count)\n"
        }
        return out
    }

    private func escape(_ value: String) -> String {
        value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n")
    }
}

/// A cumulative histogram with fixed bucket bounds (seconds).
struct Histogram: Sendable {
    let bounds: [Double]
    var counts: [Int]
    var sum = 0.0
    var count = 0

    init(bounds: [Double]) {
        self.bounds = bounds
        counts = Array(repeating: 0, count: bounds.count)
    }

    mutating func observe(_ value: Double) {
        for (index, bound) in bounds.enumerated() where value <= bound { counts[index] += 1 }
        sum += value
        count += 1
    }

    func render(_ name: String) -> String {
        var out = ""
        for (bound, count) in zip(bounds, counts) {
            out += "\(name)_bucket{le=\"\(bound)\"} \(count)\n"
        }
        out += "\(name)_bucket{le=\"+Inf\"} \(count)\n\(name)_sum \(sum)\n\(name)_count \(count)\n"
        return out
    }
}
