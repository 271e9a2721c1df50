import BridgeModel

/// What `tls-bridge report` found in a set of session logs: the audit evidence and the migration list.
///
/// `--json` prints this value as one JSON document with sorted keys, indented; every array is sorted
/// as stated below, so two runs over the same files print the same bytes. Fields (snake_case):
///
/// - `files`: `[{path, lines, records, malformed, compressed, error}]` in the order given; `error` is
///   null, or why the file could not be read (to its end).
/// - `since`: the `--since` argument as given, or null. `totals`: `{records, outbound, inbound,
///   before_since, malformed, first, last}`: records counted (after `--since`), by direction, records
///   skipped as older, malformed lines, and the earliest/latest record `time` (null without records).
/// - `sessions`: `[{listener, direction, downstream_protocol, result, count}]`, sorted by listener,
///   direction, protocol, result. `downstream_protocol` is `plain`, a TLS version, or `none` (the
///   merchant's handshake never completed); `result` is `ok` when `error` is null, else the `close` value.
/// - `legacy_sources`: `[{address, protocol, listeners, count, first_seen, last_seen}]`, sorted by
///   address then protocol: outbound downstream IPs (no port) that spoke `plain`, `TLSv1` or `TLSv1.1`
///   (or `SSLv3`), or offered at most TLS 1.0/1.1 in a refused handshake.
/// - `legacy_backends`: the same for the notification path: `[{backend, address, protocol, count,
///   first_seen, last_seen}]`, inbound sessions whose backend spoke `plain`, `TLSv1` or `TLSv1.1`.
/// - `upstream`: the evidence for the gateway (outbound sessions only): `outbound`, `verified` (upstream
///   handshake completed with TLS ≥ 1.2 and `verify` = `ok`), `share_verified` (verified / outbound, or
///   null), `reached` (handshake completed or any payload byte moved), `share_of_reached`,
///   `by_protocol` (`{version: count}` over verified sessions), `exceptions` (`[{at, session, time,
///   upstream, protocol, verify, error}]`: sessions that reached the upstream without TLS ≥ 1.2 and a
///   verified certificate; expected empty) with `exceptions_total`, `not_dialled` (ended before an
///   upstream was dialled), `refused` (`[{upstream, address, phase, close, error, count, first_seen,
///   last_seen}]`, sorted by upstream, address, error: every upstream the bridge could not reach or would
///   not trust, with the reason) and `refused_total` (sessions).
/// - `failures`: `[{phase, reason, count, sample, sample_at, first_seen, last_seen}]`, sorted by count
///   (descending), then phase and reason: sessions with an `error`, grouped by phase and by the error
///   text up to its first ": " with addresses replaced by `<address>`; `sample` is one full error.
/// - `certificates`: `[{role, name, subject, issuer, count, first_seen, last_seen}]`, sorted by role,
///   name, subject: `role` is `upstream_client` (sent to the gateway; `name` = upstream), `upstream_peer`
///   (the gateway's, with `issuer`) or `downstream_client` (the merchant's, `name` = listener); inbound
///   sessions add `backend_client` and `backend_peer` (`name` = backend).
///   `certificate_expiry` says where expiry dates come from: session records do not carry them.
/// - `malformed`: `[{at, reason}]`, the first 100 lines that are not session records, in reading order;
///   `malformed_total` counts them all.
/// - `omitted`: `{table: rows}` for tables that reached `ReportOptions.maxRows` distinct keys (their
///   further sessions are counted in `totals` but not listed); empty normally.
public struct SessionReport: Codable, Sendable, Equatable {
    public var files: [FileSummary]
    @NullIfAbsent public var since: String?
    public var totals: Totals
    public var sessions: [SessionCount]
    public var legacySources: [LegacySource]
    public var legacyBackends: [LegacyBackend]
    public var upstream: UpstreamEvidence
    public var failures: [FailureGroup]
    public var certificates: [CertificateSeen]
    public var certificateExpiry: String
    public var malformed: [MalformedLine]
    public var malformedTotal: Int
    public var omitted: [String: Int]

    enum CodingKeys: String, CodingKey {
        case files, since, totals, sessions, legacySources = "legacy_sources", legacyBackends = "legacy_backends"
        case upstream, failures, certificates, certificateExpiry = "certificate_expiry", malformed
        case malformedTotal = "malformed_total", omitted
    }

    /// Said in every report: the records name certificates but carry no expiry dates.
    public static let certificateExpiryNote = "session records carry certificate subjects, not expiry dates: "
        + "`tls-bridge check` shows when the configured client and listener certificates expire, "
        + "`tls-bridge probe` when the gateway's does"

    /// One input file.
    public struct FileSummary: Codable, Sendable, Equatable {
        public var path: String
        public var lines: Int
        public var records: Int
        public var malformed: Int
        public var compressed: Bool
        @NullIfAbsent public var error: String?
    }

    public struct Totals: Codable, Sendable, Equatable {
        public var records: Int
        public var outbound: Int
        public var inbound: Int
        public var beforeSince: Int
        public var malformed: Int
        @NullIfAbsent public var first: String?
        @NullIfAbsent public var last: String?

        enum CodingKeys: String, CodingKey {
            case records, outbound, inbound, beforeSince = "before_since", malformed, first, last
        }
    }

    /// Sessions for one listener × direction × downstream protocol × result.
    public struct SessionCount: Codable, Sendable, Equatable {
        public var listener: String
        public var direction: String
        public var downstreamProtocol: String
        public var result: String
        public var count: Int

        enum CodingKeys: String, CodingKey {
            case listener, direction, downstreamProtocol = "downstream_protocol", result, count
        }
    }

    /// A merchant system that still connects with plain TCP or TLS below 1.2.
    public struct LegacySource: Codable, Sendable, Equatable {
        public var address: String
        public var `protocol`: String
        public var listeners: [String]
        public var count: Int
        public var firstSeen: String
        public var lastSeen: String

        enum CodingKeys: String, CodingKey {
            case address, `protocol`, listeners, count, firstSeen = "first_seen", lastSeen = "last_seen"
        }
    }

    /// A merchant backend (notification path) still reached with plain TCP or TLS below 1.2.
    public struct LegacyBackend: Codable, Sendable, Equatable {
        public var backend: String
        public var address: String
        public var `protocol`: String
        public var count: Int
        public var firstSeen: String
        public var lastSeen: String

        enum CodingKeys: String, CodingKey {
            case backend, address, `protocol`, count, firstSeen = "first_seen", lastSeen = "last_seen"
        }
    }

    /// The PCI DSS evidence: how outbound sessions reached the gateway.
    public struct UpstreamEvidence: Codable, Sendable, Equatable {
        public var outbound: Int
        public var verified: Int
        @NullIfAbsent public var shareVerified: Double?
        public var reached: Int
        @NullIfAbsent public var shareOfReached: Double?
        public var byProtocol: [String: Int]
        public var exceptions: [UpstreamException]
        public var exceptionsTotal: Int
        public var notDialled: Int
        public var refused: [RefusedUpstream]
        public var refusedTotal: Int

        enum CodingKeys: String, CodingKey {
            case outbound, verified, shareVerified = "share_verified", reached, shareOfReached = "share_of_reached"
            case byProtocol = "by_protocol", exceptions, exceptionsTotal = "exceptions_total"
            case notDialled = "not_dialled", refused, refusedTotal = "refused_total"
        }
    }

    /// A session that reached the upstream without TLS ≥ 1.2 and a verified certificate.
    public struct UpstreamException: Codable, Sendable, Equatable {
        public var at: LogLocation
        public var session: String
        public var time: String
        @NullIfAbsent public var upstream: String?
        @NullIfAbsent public var `protocol`: String?
        @NullIfAbsent public var verify: String?
        @NullIfAbsent public var error: String?
    }

    /// Sessions refused by (or unable to reach) one upstream for one reason.
    public struct RefusedUpstream: Codable, Sendable, Equatable {
        @NullIfAbsent public var upstream: String?
        @NullIfAbsent public var address: String?
        public var phase: String
        public var close: String
        public var error: String
        public var count: Int
        public var firstSeen: String
        public var lastSeen: String

        enum CodingKeys: String, CodingKey {
            case upstream, address, phase, close, error, count, firstSeen = "first_seen", lastSeen = "last_seen"
        }
    }

    /// Failed sessions with one phase and reason.
    public struct FailureGroup: Codable, Sendable, Equatable {
        public var phase: String
        public var reason: String
        public var count: Int
        public var sample: String
        public var sampleAt: LogLocation
        public var firstSeen: String
        public var lastSeen: String

        enum CodingKeys: String, CodingKey {
            case phase, reason, count, sample, sampleAt = "sample_at", firstSeen = "first_seen", lastSeen = "last_seen"
        }
    }

    /// A certificate subject seen in one role.
    public struct CertificateSeen: Codable, Sendable, Equatable {
        public var role: String
        @NullIfAbsent public var name: String?
        public var subject: String
        @NullIfAbsent public var issuer: String?
        public var count: Int
        public var firstSeen: String
        public var lastSeen: String

        enum CodingKeys: String, CodingKey {
            case role, name, subject, issuer, count, firstSeen = "first_seen", lastSeen = "last_seen"
        }
    }

    /// A line that is not a session record.
    public struct MalformedLine: Codable, Sendable, Equatable {
        public var at: LogLocation
        public var reason: String
    }
}
