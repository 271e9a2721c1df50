/// One line of the session log: everything an operator or an assessor needs to know about one
/// session, and nothing of what it carried. No field ever holds payload bytes, keys or passphrases.
///
/// Written once, when the session ends. Optional fields encode as JSON `null` rather than being
/// left out, so every record has the same keys and a reader can rely on them.
public struct SessionRecord: Codable, Sendable, Equatable {
    /// Session start, RFC 3339 UTC with milliseconds.
    public var time: String
    /// Unique id of the session within this log.
    public var session: String
    /// `"outbound"`: merchant → gateway.
    public var direction: String
    /// Name of the listener that accepted the connection.
    public var listener: String
    public var downstream: Downstream
    /// The far side: the upstream, or for inbound sessions the backend (encoded as `backend`).
    public var upstream: Upstream
    public var bytes: Bytes
    /// Milliseconds from accept to close.
    public var durationMs: Int
    /// The phase the session was in when it ended: one of `Phase`'s values. Kept as text so that a
    /// log written by another version still reads.
    public var phase: String
    /// Who ended the session and how: one of `Close`'s values (text, as `phase`).
    public var close: String
    /// `nil` for a normal end; otherwise an operator-readable reason with OpenSSL's error text.
    public var error: String?
    /// A plain-language suggestion for a failed handshake ("use the plain listener"), or `nil`.
    public var hint: String?
    /// With `[log] chain = true`: the SHA-256 (hex) of the previous line, or "genesis". Absent otherwise.
    public var prev: String?

    public struct Downstream: Codable, Sendable, Equatable {
        /// Peer `IP:port` of the merchant's connection.
        public var address: String
        /// `"plain"`, or the TLS version the merchant spoke (`nil` if its TLS handshake failed).
        @NullIfAbsent public var `protocol`: String?
        /// The TLS cipher the merchant negotiated.
        @NullIfAbsent public var cipher: String?
        /// The server name the merchant sent (SNI).
        @NullIfAbsent public var sni: String?
        /// Subject (RFC 2253) of the certificate the merchant presented.
        @NullIfAbsent public var clientCert: String?
        /// What the merchant's TLS client offered; `nil` on plain listeners.
        @NullIfAbsent public var offered: Offered?
        /// http-proxy: the CONNECT target (`host:port`).
        @NullIfAbsent public var connect: String?
        /// http-proxy: the host of an absolute-form request (never its path or query).
        @NullIfAbsent public var requestHost: String?
        /// http-proxy: the status the bridge answered with itself (200 for an established CONNECT).
        @NullIfAbsent public var httpStatus: Int?

        public init(address: String, protocol: String?, cipher: String? = nil, sni: String? = nil,
                    clientCert: String? = nil, offered: Offered? = nil, connect: String? = nil,
                    requestHost: String? = nil, httpStatus: Int? = nil) {
            self.address = address
            self.protocol = `protocol`
            self.cipher = cipher
            self.sni = sni
            self.clientCert = clientCert
            self.offered = offered
            self.connect = connect
            self.requestHost = requestHost
            self.httpStatus = httpStatus
        }

        /// The IP part of `address` (`IP:port` or `[IPv6]:port`), as written there.
        public var host: String { Self.host(of: address) }

        /// The IP part of a record's `IP:port` / `[IPv6]:port` address.
        public static func host(of address: String) -> String {
            if address.hasPrefix("["), let close = address.firstIndex(of: "]") {
                return String(address[address.index(after: address.startIndex)..<close])
            }
            if address.filter({ $0 == ":" }).count == 1, let colon = address.lastIndex(of: ":") {
                return String(address[..<colon])
            }
            return address  // a bare IPv6 address, or no port at all ("unknown")
        }

        enum CodingKeys: String, CodingKey {
            case address, `protocol`, cipher, sni, clientCert = "client_cert", offered, connect
            case requestHost = "request_host", httpStatus = "http_status"
        }
    }

    /// A merchant TLS client's ClientHello, summarised: enough to explain a refusal.
    public struct Offered: Codable, Sendable, Equatable {
        /// Highest version offered, OpenSSL's spelling ("TLSv1").
        public var maxVersion: String
        /// The SNI name, or `nil` when none was sent.
        @NullIfAbsent public var sni: String?
        /// The first suites offered (OpenSSL names, or code points this OpenSSL does not know).
        public var ciphers: [String]

        public init(maxVersion: String, sni: String?, ciphers: [String]) {
            self.maxVersion = maxVersion
            self.sni = sni
            self.ciphers = ciphers
        }

        enum CodingKeys: String, CodingKey {
            case maxVersion = "max_version", sni, ciphers
        }
    }

    public struct Upstream: Codable, Sendable, Equatable {
        /// The `[[upstream]]` name; `nil` when no route matched.
        @NullIfAbsent public var name: String?
        /// The `IP:port` dialled (the last one tried), or `nil` if the name never resolved. With
        /// `via`, the proxy's: the gateway's address is the proxy's to resolve.
        @NullIfAbsent public var address: String?
        /// The outbound proxy the gateway was reached through (`via`, as configured), or `nil`.
        @NullIfAbsent public var via: String?
        /// The name sent as SNI and verified (`nil` when none was sent, for an IP literal).
        @NullIfAbsent public var serverName: String?
        /// Negotiated protocol, e.g. `"TLSv1.2"`; `nil` if the handshake never completed.
        @NullIfAbsent public var `protocol`: String?
        /// Negotiated cipher, OpenSSL's name.
        @NullIfAbsent public var cipher: String?
        /// Whether the TLS session was resumed.
        public var resumed: Bool
        /// Subject of the gateway's certificate, RFC 2253.
        @NullIfAbsent public var peer: String?
        /// Issuer of the gateway's certificate, RFC 2253.
        @NullIfAbsent public var peerIssuer: String?
        /// `"ok"`, or OpenSSL's verification reason ("certificate has expired", ...).
        @NullIfAbsent public var verify: String?
        /// Subject of the client certificate presented to the gateway, or `nil` if none was sent.
        @NullIfAbsent public var clientCert: String?
        /// Whether the upstream ended with TLS close_notify: `false` means it just closed TCP (all
        /// bytes arrived, but the end was not authenticated); `nil` when the bridge closed first.
        @NullIfAbsent public var closeNotify: Bool?
        /// Milliseconds the TLS handshake took (from TCP connected to handshake done).
        @NullIfAbsent public var handshakeMs: Int?
        /// How long the connection had been open and ready before this session took it (a
        /// `preconnect` spare: its handshake was not on the session's path); `nil` when it was
        /// dialled for the session.
        @NullIfAbsent public var spareAgeMs: Int?
        /// Inbound: the header that told the merchant's server the peer's address on every request
        /// (`client_address_header`), or `nil` when none was set.
        @NullIfAbsent public var clientAddressHeader: String?

        public init(name: String?, address: String? = nil, serverName: String? = nil, protocol: String? = nil,
                    cipher: String? = nil, resumed: Bool = false, peer: String? = nil, peerIssuer: String? = nil,
                    verify: String? = nil, clientCert: String? = nil, closeNotify: Bool? = nil, handshakeMs: Int? = nil,
                    via: String? = nil) {
            self.name = name
            self.address = address
            self.via = via
            self.serverName = serverName
            self.protocol = `protocol`
            self.cipher = cipher
            self.resumed = resumed
            self.peer = peer
            self.peerIssuer = peerIssuer
            self.verify = verify
            self.clientCert = clientCert
            self.closeNotify = closeNotify
            self.handshakeMs = handshakeMs
        }

        enum CodingKeys: String, CodingKey {
            case name, address, via, serverName = "server_name", `protocol`, cipher, resumed, peer
            case peerIssuer = "peer_issuer", verify, clientCert = "client_cert", closeNotify = "close_notify"
            case handshakeMs = "handshake_ms", spareAgeMs = "spare_age_ms", clientAddressHeader = "client_address_header"
        }
    }

    /// Payload byte counts (never the bytes). `up` is merchant → gateway, `down` the other way.
    public struct Bytes: Codable, Sendable, Equatable {
        public var up: Int
        public var down: Int
        public init(up: Int = 0, down: Int = 0) {
            self.up = up
            self.down = down
        }
    }

    public init(time: String, session: String, direction: String = "outbound", listener: String,
                downstream: Downstream, upstream: Upstream, bytes: Bytes = Bytes(), durationMs: Int = 0,
                phase: String, close: String, error: String? = nil, hint: String? = nil) {
        self.time = time
        self.session = session
        self.direction = direction
        self.listener = listener
        self.downstream = downstream
        self.upstream = upstream
        self.bytes = bytes
        self.durationMs = durationMs
        self.phase = phase
        self.close = close
        self.error = error
        self.hint = hint
    }

    enum CodingKeys: String, CodingKey {
        case time, session, direction, listener, downstream, upstream, backend, bytes
        case durationMs = "duration_ms", phase, close, error, hint, prev
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        time = try c.decode(String.self, forKey: .time)
        session = try c.decode(String.self, forKey: .session)
        direction = try c.decode(String.self, forKey: .direction)
        listener = try c.decode(String.self, forKey: .listener)
        downstream = try c.decode(Downstream.self, forKey: .downstream)
        upstream = try c.decodeIfPresent(Upstream.self, forKey: .upstream) ?? c.decode(Upstream.self, forKey: .backend)
        bytes = try c.decode(Bytes.self, forKey: .bytes)
        durationMs = try c.decode(Int.self, forKey: .durationMs)
        phase = try c.decode(String.self, forKey: .phase)
        close = try c.decode(String.self, forKey: .close)
        error = try c.decodeIfPresent(String.self, forKey: .error)
        hint = try c.decodeIfPresent(String.self, forKey: .hint)
        prev = try c.decodeIfPresent(String.self, forKey: .prev)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(time, forKey: .time)
        try c.encode(session, forKey: .session)
        try c.encode(direction, forKey: .direction)
        try c.encode(listener, forKey: .listener)
        try c.encode(downstream, forKey: .downstream)
        try c.encode(upstream, forKey: direction == "inbound" ? .backend : .upstream)
        try c.encode(bytes, forKey: .bytes)
        try c.encode(durationMs, forKey: .durationMs)
        try c.encode(phase, forKey: .phase)
        try c.encode(close, forKey: .close)
        try c.encode(error, forKey: .error)
        try c.encode(hint, forKey: .hint)
        try c.encodeIfPresent(prev, forKey: .prev)
    }
}

extension SessionRecord {
    /// The phases a session passes, as the record's `phase` names them, in order.
    public enum Phase: String, Sendable, CaseIterable {
        /// Refused before it became a session (`max_sessions`, the per-source limit, `allow_sources`).
        case accept
        /// An http-proxy listener reading the request head.
        case proxyRequest = "proxy_request"
        /// The merchant's TLS handshake (tls listeners, CONNECT tunnels).
        case downstreamHandshake = "downstream_handshake"
        /// Reaching the destination: name resolution, TCP connect (to the outbound proxy with `via`),
        /// the proxy's CONNECT tunnel (with `via`), the destination's TLS handshake.
        case resolve, connect, tunnel, handshake
        /// Relaying.
        case open
        /// The destination ended; what is queued for the merchant is being delivered.
        case drain

        /// Was the destination being dialled (so a failure there is the destination's)?
        public var isDial: Bool { self == .resolve || self == .connect || self == .tunnel || self == .handshake }
    }

    /// Who ended a session and how, as the record's `close` names it.
    public enum Close: String, Sendable, CaseIterable {
        /// The merchant (or, inbound, the gateway) closed; or asked to close after its last answer.
        case downstreamEOF = "downstream_eof"
        /// The destination closed; everything it sent was delivered.
        case upstreamEOF = "upstream_eof"
        case idleTimeout = "idle_timeout"
        /// No complete proxy request head within `header_timeout`.
        case headerTimeout = "header_timeout"
        case connectTimeout = "connect_timeout"
        case handshakeTimeout = "handshake_timeout"
        /// The merchant's side failed or sent what the bridge refuses (a malformed request, a TLS error).
        case downstreamError = "downstream_error"
        /// The destination failed: unreachable, refused TLS, broke mid-stream, answered garbage.
        case upstreamError = "upstream_error"
        /// Refused by policy: no route, a client certificate missing or not allowed, no proxy credentials.
        case refused
        /// Refused by `max_sessions` or the per-source limit.
        case limit
        /// Still open when the bridge stopped (after `drain_timeout`).
        case shutdown
        /// An http-proxy client's next request is for another host: its connection went to a new session.
        case nextHost = "next_host"

        /// May a TLS peer get close_notify? Never after a TLS or socket error.
        public var isOrderly: Bool { self != .upstreamError && self != .downstreamError }
    }

    /// A record whose phase and close come from the vocabulary above.
    public init(time: String, session: String, direction: String = "outbound", listener: String,
                downstream: Downstream, upstream: Upstream, bytes: Bytes = Bytes(), durationMs: Int = 0,
                phase: Phase, close: Close, error: String? = nil, hint: String? = nil) {
        self.init(time: time, session: session, direction: direction, listener: listener, downstream: downstream,
                  upstream: upstream, bytes: bytes, durationMs: durationMs, phase: phase.rawValue, close: close.rawValue,
                  error: error, hint: hint)
    }
}
