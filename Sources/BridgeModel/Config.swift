/// The whole configuration of one tls-bridge process, as loaded from TOML and validated.
///
/// Every value here is immutable and `Sendable`: workers on other threads read it, nobody writes it.
/// A `Config` only exists once `ConfigLoader` has checked every policy, so code that holds one may
/// trust it (the upstream floor in particular: see `UpstreamConfig`).
public struct Config: Sendable, Equatable, Codable {
    /// Where session records and diagnostics go.
    public var log: LogConfig
    /// Time and count limits shared by every listener.
    public var limits: LimitsConfig
    /// How upstream host names are resolved.
    public var dns: DNSConfig
    /// Worker threads, each with its own event loop and its own listening sockets (SO_REUSEPORT).
    public var workers: Int
    /// Started as root: the user (and group) to become once every port is bound and every key read.
    public var user: String?
    public var group: String?
    /// The admin endpoint (health and metrics).
    public var admin = AdminConfig()
    /// Allowlisted destinations toward the gateway, by name.
    public var upstreams: [UpstreamConfig]
    /// The merchant's own servers, where inbound notifications are delivered, by name.
    public var backends: [BackendConfig]
    /// Addresses that accept connections: the merchant's (outbound) or the gateway's (inbound).
    public var listeners: [ListenerConfig]

    public init(log: LogConfig = LogConfig(), limits: LimitsConfig = LimitsConfig(), dns: DNSConfig = DNSConfig(),
                workers: Int = 1, upstreams: [UpstreamConfig] = [], backends: [BackendConfig] = [],
                listeners: [ListenerConfig] = []) {
        self.log = log
        self.limits = limits
        self.dns = dns
        self.workers = workers
        self.upstreams = upstreams
        self.backends = backends
        self.listeners = listeners
    }

    /// The backend a listener delivers to.
    public func backend(named name: String) -> BackendConfig? {
        backends.first { $0.name == name }
    }

    /// The upstream a listener forwards to. Validation guarantees it exists.
    public func upstream(named name: String) -> UpstreamConfig? {
        upstreams.first { $0.name == name }
    }
}

/// `[admin]`: the HTTP endpoint for `/healthz` and `/metrics`; off unless `listen` is set.
public struct AdminConfig: Sendable, Equatable, Codable {
    /// Loopback unless `unsafe_listen_public`: metrics show traffic volumes and certificate expiry.
    public var listen: HostPort?

    public init(listen: HostPort? = nil) {
        self.listen = listen
    }
}

/// `[log]`: session records (JSON Lines) and diagnostic messages.
public struct LogConfig: Sendable, Equatable, Codable {
    /// `"stdout"`, `"stderr"`, or a file path opened for appending.
    public var sessions: LogDestination
    /// Diagnostic level: trace, debug, info, notice, warning, error, critical.
    public var level: LogLevel
    /// Tamper evidence: each record carries `prev`, the SHA-256 of the line before it
    /// (`tls-bridge report --verify` checks the chain).
    public var chain: Bool

    public init(sessions: LogDestination = .stdout, level: LogLevel = .info, chain: Bool = false) {
        self.sessions = sessions
        self.level = level
        self.chain = chain
    }
}

/// Where session records are written.
public enum LogDestination: Sendable, Equatable, Codable {
    case stdout
    case stderr
    case file(String)
}

/// Diagnostic verbosity, spelled as swift-log spells it.
public enum LogLevel: String, Sendable, Equatable, Codable, CaseIterable {
    case trace, debug, info, notice, warning, error, critical
}

/// `[limits]`: every timeout a session can hit, and how many sessions may be open.
public struct LimitsConfig: Sendable, Equatable, Codable {
    /// Name resolution plus TCP connect to the upstream, per attempt.
    public var connectTimeout: Duration
    /// Each TLS handshake.
    public var handshakeTimeout: Duration
    /// An http-proxy client's request head must arrive within this.
    public var headerTimeout: Duration
    /// No bytes in either direction for this long closes the session.
    public var idleTimeout: Duration
    /// On SIGTERM/SIGINT, open sessions may finish for this long before they are closed.
    public var drainTimeout: Duration
    /// After the merchant closed its side, the gateway may stay silent this long before the session
    /// ends (its answer may still be coming; TLS cannot pass the half-close on).
    public var halfCloseTimeout: Duration
    /// Open sessions across all workers; connections past it are closed at accept and logged.
    public var maxSessions: Int
    /// Open sessions from one source address; 0 means no limit beyond `maxSessions`.
    public var maxSessionsPerSource: Int = 0
    /// Bytes queued toward one side before reading from the other side pauses (backpressure).
    public var bufferSize: Int

    public init(connectTimeout: Duration = .seconds(10), handshakeTimeout: Duration = .seconds(10),
                headerTimeout: Duration = .seconds(10), idleTimeout: Duration = .seconds(300),
                drainTimeout: Duration = .seconds(30), halfCloseTimeout: Duration = .seconds(30), maxSessions: Int = 4096,
                bufferSize: Int = 256 * 1024) {
        self.drainTimeout = drainTimeout
        self.halfCloseTimeout = halfCloseTimeout
        self.connectTimeout = connectTimeout
        self.handshakeTimeout = handshakeTimeout
        self.headerTimeout = headerTimeout
        self.idleTimeout = idleTimeout
        self.maxSessions = maxSessions
        self.bufferSize = bufferSize
    }
}

/// `[dns]`: which resolvers the bridge asks. Empty means the system's (`/etc/resolv.conf` and `/etc/hosts`).
public struct DNSConfig: Sendable, Equatable, Codable {
    /// `"IP"` or `"IP:port"` / `"[IPv6]:port"` of name servers to use instead of the system's.
    public var nameservers: [String]
    /// Seconds evdns waits for one answer before retrying.
    public var timeout: Duration

    public init(nameservers: [String] = [], timeout: Duration = .seconds(5)) {
        self.nameservers = nameservers
        self.timeout = timeout
    }
}

/// The TLS protocol floor of the upstream side. Nothing below TLS 1.2 can be expressed.
public enum UpstreamTLSVersion: String, Sendable, Equatable, Codable {
    case tls12 = "TLS1.2"
    case tls13 = "TLS1.3"
}

/// `[[upstream]]`: one allowlisted destination and how TLS is originated toward it.
///
/// Verification is not optional: the gateway's certificate chain is verified against `caFile`
/// (or the system store) and its name against `serverName`. There is no key to turn that off.
public struct UpstreamConfig: Sendable, Equatable, Codable {
    /// Unique name listeners refer to.
    public var name: String
    /// Where to dial.
    public var address: HostPort
    /// SNI and the name the certificate must carry; `nil` means the host of `address`.
    public var serverName: String?
    /// PEM bundle of trusted CAs; `nil` means the system store.
    public var caFile: String?
    /// PEM certificate (and chain) presented to the gateway; may also hold the key.
    public var clientCert: String?
    /// PEM private key for `clientCert`, if not in the same file.
    public var clientKey: String?
    /// File whose first line is the passphrase of an encrypted `clientKey`.
    public var clientKeyPasswordFile: String?
    /// Lowest TLS version offered.
    public var minVersion: UpstreamTLSVersion
    /// OpenSSL cipher string for TLS 1.2; `nil` means the built-in strong default.
    public var ciphers: String?
    /// TLS 1.3 suites (`SSL_CTX_set_ciphersuites` syntax); `nil` means OpenSSL's default.
    public var ciphersuites: String?
    /// The merchant's outbound HTTP proxy (`via = "http://host:port"`): the gateway is reached
    /// through a `CONNECT` tunnel from it; `nil` means the gateway is dialled directly.
    public var via: HostPort?
    /// File with the one `user:password` line sent to `via` as Basic credentials (owner-only).
    public var viaCredentialsFile: String?
    /// Connections each worker keeps open to this upstream, handshaken and verified, ready for the
    /// next session (`preconnect`; 0 turns it off). See `UpstreamConfig.defaultPreconnect`.
    public var preconnect: Int
    /// The longest a ready connection waits for a session before it is closed and replaced.
    public var preconnectMaxAge: Duration

    /// One spare per worker: a payment call then costs one round trip to the gateway instead of
    /// three (TCP, TLS, request), for one idle connection per worker that the gateway holds anyway
    /// between calls. More only help bursts of calls arriving at once.
    public static let defaultPreconnect = 1
    /// The most spares per worker and upstream, set by `preconnect` or grown to for a high call rate:
    /// more would hold the gateway's connections for calls that do not come.
    public static let maximumPreconnect = 16
    /// Below the shortest common server limit for a connection that has sent no request: Apache's
    /// mod_reqtimeout (on by default in Debian) allows 20 s for the first request head, nginx
    /// (client_header_timeout) 60 s. A spare is closed and replaced before a server would close it.
    public static let defaultPreconnectMaxAge = Duration.seconds(15)

    public init(name: String, address: HostPort, serverName: String? = nil, caFile: String? = nil,
                clientCert: String? = nil, clientKey: String? = nil, clientKeyPasswordFile: String? = nil,
                minVersion: UpstreamTLSVersion = .tls12, ciphers: String? = nil, ciphersuites: String? = nil,
                via: HostPort? = nil, viaCredentialsFile: String? = nil, preconnect: Int = Self.defaultPreconnect,
                preconnectMaxAge: Duration = Self.defaultPreconnectMaxAge) {
        self.name = name
        self.address = address
        self.serverName = serverName
        self.caFile = caFile
        self.clientCert = clientCert
        self.clientKey = clientKey
        self.clientKeyPasswordFile = clientKeyPasswordFile
        self.minVersion = minVersion
        self.ciphers = ciphers
        self.ciphersuites = ciphersuites
        self.via = via
        self.viaCredentialsFile = viaCredentialsFile
        self.preconnect = preconnect
        self.preconnectMaxAge = preconnectMaxAge
    }

    /// The name sent as SNI and verified in the certificate: `serverName`, else the host of `address`.
    public var verifiedName: String { serverName ?? address.host }
}

/// How a listener accepts downstream connections.
public enum AcceptMode: String, Sendable, Equatable, Codable {
    /// Plain TCP (HTTP or anything else) from the merchant.
    case plain
    /// TLS from the merchant, terminated here with the listener's own policy (legacy versions allowed
    /// when the listener says so), routed by SNI.
    case tls
    /// An HTTP forward proxy for the routed names only: `CONNECT` (TLS terminated here as on a `tls`
    /// listener) and absolute-form `http://` requests (upgraded to TLS toward the upstream).
    case httpProxy = "http-proxy"

    /// Does this listener terminate TLS from its clients (directly, or after CONNECT)?
    public var terminatesTLS: Bool { self != .plain }
}

/// `[[listener]]`: one address that accepts the merchant's connections.
public struct ListenerConfig: Sendable, Equatable, Codable {
    /// Unique name, written into each session record.
    public var name: String
    /// Address to bind.
    public var listen: HostPort
    /// How connections are accepted.
    public var accept: AcceptMode
    /// The default route: the `[[upstream]]` for connections that name no routed server (plain
    /// listeners: every connection; TLS listeners: no SNI or an unrouted name). `nil` on a TLS
    /// listener refuses those.
    public var upstream: String?
    /// `[listener.routes]`: server name (lowercased) → upstream name.
    public var routes: [String: String]
    /// The downstream TLS policy; present exactly when `accept` is `.tls`.
    public var tls: DownstreamTLSConfig?
    /// Inbound: the `[[backend]]` every connection is delivered to, instead of an upstream.
    public var backend: String?
    /// Peers outside these ranges are closed at accept; empty means everyone who can connect.
    public var allowSources: [AddressRange]
    /// PROXY protocol header sent to a backend first, so it sees the real client address.
    public var proxyProtocol: ProxyProtocolVersion?
    /// The HTTP header that tells a backend the gateway's address, on every request (for web
    /// servers that cannot read a PROXY protocol header).
    public var clientAddressHeader: ClientAddressHeader?
    /// http-proxy: file of `user:password` lines; Basic proxy authentication is required when set.
    public var proxyAuthFile: String?
    /// Binding anything but a loopback address needs this, since the listener carries the merchant's
    /// client certificate to the gateway for whoever can reach it.
    public var unsafeListenPublic: Bool

    public init(name: String, listen: HostPort, accept: AcceptMode = .plain, upstream: String?,
                routes: [String: String] = [:], tls: DownstreamTLSConfig? = nil, backend: String? = nil,
                allowSources: [AddressRange] = [], proxyProtocol: ProxyProtocolVersion? = nil,
                proxyAuthFile: String? = nil, unsafeListenPublic: Bool = false,
                clientAddressHeader: ClientAddressHeader? = nil) {
        self.clientAddressHeader = clientAddressHeader
        self.name = name
        self.listen = listen
        self.accept = accept
        self.upstream = upstream
        self.routes = routes
        self.tls = tls
        self.backend = backend
        self.allowSources = allowSources
        self.proxyProtocol = proxyProtocol
        self.proxyAuthFile = proxyAuthFile
        self.unsafeListenPublic = unsafeListenPublic
    }

    /// http-proxy: the upstream for a CONNECT or `http://` target. A route key with a port
    /// (`"name:8443"`) allows exactly that port; one without allows `defaultPorts` (443 for
    /// CONNECT; 80 and 443 for `http://`). Nothing else is ever allowed: this is no open proxy.
    public func upstreamName(forProxyHost host: String, port: UInt16, defaultPorts: [UInt16]) -> String? {
        let name = host.lowercased()
        let literal = name.contains(":") ? "[\(name)]" : name
        if let routed = routes["\(literal):\(port)"] { return routed }
        return defaultPorts.contains(port) ? routes[name] : nil
    }

    /// The host names (and IP literals) the listener routes, without ports: the names it may
    /// present certificates for.
    public var routedHosts: [String] { Self.hosts(ofRouteKeys: routes.keys) }

    /// Route keys without their ports: `"name:8443"` → `"name"`, `"[::1]:443"` → `"::1"`.
    static func hosts(ofRouteKeys keys: some Sequence<String>) -> [String] {
        Set(keys.map { key -> String in
            if key.hasPrefix("["), let end = key.firstIndex(of: "]") { return String(key[key.index(after: key.startIndex)..<end]) }
            if key.filter({ $0 == ":" }).count == 1, let colon = key.lastIndex(of: ":") { return String(key[..<colon]) }
            return key
        }).sorted()
    }

    /// Is a peer with these address bytes allowed to connect?
    public func allowsSource(_ address: [UInt8]) -> Bool {
        allowSources.isEmpty || allowSources.contains { $0.contains(address) }
    }

    /// The upstream a connection goes to: the route for `serverName` (case-insensitive), else the
    /// default route, else `nil` (refused).
    public func upstreamName(forServerName serverName: String?) -> String? {
        if let serverName, let routed = routes[serverName.lowercased()] { return routed }
        return upstream
    }

    /// Does a connection without a routed server name still go somewhere (default upstream, or the
    /// backend of an inbound listener)?
    public var hasDefaultRoute: Bool { upstream != nil || backend != nil }

    /// Every upstream this listener can reach.
    public var reachableUpstreams: Set<String> {
        Set(routes.values).union(upstream.map { [$0] } ?? [])
    }
}

/// `client_address_header`: how a backend learns the address a notification came from.
public enum ClientAddressHeader: String, Sendable, Equatable, Codable, CaseIterable {
    /// `X-Forwarded-For: 203.0.113.5` (Apache mod_remoteip / mod_rpaf, nginx realip, IIS ARR).
    case xForwardedFor = "X-Forwarded-For"
    /// `X-Real-IP: 203.0.113.5` (nginx realip).
    case xRealIP = "X-Real-IP"
    /// `Forwarded: for=203.0.113.5` (RFC 7239).
    case forwarded = "Forwarded"

    /// Every header that claims a client address: the bridge removes all of them from what the
    /// peer sent, whichever one it sets, so no handler reading any of them can be told a spoofed
    /// one. Besides the three it can set, the names that common "find the client's IP" code reads
    /// (PHP's `HTTP_CLIENT_IP`, `HTTP_TRUE_CLIENT_IP`, ...): a notification sender has no reason to
    /// send any of them. Names are compared with `_` read as `-` (see `ProxyRequestHead.rewrittenForOriginServer`).
    public static let allNames: [String] = allCases.map(\.rawValue)
        + ["Client-IP", "X-Client-IP", "True-Client-IP", "X-Cluster-Client-IP", "X-Originating-IP"]

    /// The header line's value for `address` (an IP literal, no port).
    public func value(for address: String) -> String {
        switch self {
        case .xForwardedFor, .xRealIP: address
        // RFC 7239 §6: an IPv6 address is quoted and bracketed.
        case .forwarded: address.contains(":") ? "for=\"[\(address)]\"" : "for=\(address)"
        }
    }
}

/// PROXY protocol versions a listener can send to its backend.
public enum ProxyProtocolVersion: String, Sendable, Equatable, Codable {
    /// The text header: `PROXY TCP4 src dst sport dport\r\n`.
    case v1
    /// The binary header.
    case v2
}

/// How the bridge talks to a backend.
public enum BackendTLSMode: String, Sendable, Equatable, Codable {
    /// Plain TCP (HTTP).
    case off
    /// TLS 1.0 or newer toward an old server, verified by CA or by a pinned certificate.
    case legacy
}

/// `[[backend]]`: one of the merchant's own servers, where inbound notifications are delivered.
///
/// Legacy protocols stay on the merchant's side of the bridge: a `legacy` backend must be at a
/// loopback or private address (checked here for IP literals, at connect time for names) unless
/// `unsafePublicBackend` says otherwise.
public struct BackendConfig: Sendable, Equatable, Codable {
    public var name: String
    public var address: HostPort
    public var tls: BackendTLSMode
    /// Legacy: CA bundle that signed the backend's certificate.
    public var caFile: String?
    /// Legacy: SHA-256 of the backend's certificate (64 upper-case hex digits), for self-signed servers.
    public var pinSHA256: String?
    /// Legacy: SNI, and the name checked when verifying by `caFile`.
    public var serverName: String?
    /// Legacy: lowest version offered.
    public var minVersion: TLSVersion
    public var unsafePublicBackend: Bool

    public init(name: String, address: HostPort, tls: BackendTLSMode = .off, caFile: String? = nil,
                pinSHA256: String? = nil, serverName: String? = nil, minVersion: TLSVersion = .tls10,
                unsafePublicBackend: Bool = false) {
        self.name = name
        self.address = address
        self.tls = tls
        self.caFile = caFile
        self.pinSHA256 = pinSHA256
        self.serverName = serverName
        self.minVersion = minVersion
        self.unsafePublicBackend = unsafePublicBackend
    }
}

/// A TLS protocol version as written in config. The downstream side may go down to TLS 1.0;
/// the upstream side has its own type (`UpstreamTLSVersion`) that cannot express less than 1.2.
public enum TLSVersion: String, Sendable, Equatable, Codable, Comparable, CaseIterable {
    case tls10 = "TLS1.0"
    case tls11 = "TLS1.1"
    case tls12 = "TLS1.2"
    case tls13 = "TLS1.3"

    public static func < (lhs: TLSVersion, rhs: TLSVersion) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }
}

/// A certificate file (PEM, with its chain) and its key, which may sit in the same file.
public struct CertificateFiles: Sendable, Equatable, Codable {
    public var cert: String
    /// `nil` when the key is in `cert`.
    public var key: String?

    public init(cert: String, key: String? = nil) {
        self.cert = cert
        self.key = key
    }
}

/// The TLS policy of a `tls` listener: how the merchant's TLS is terminated.
///
/// Independent of every upstream's policy: legacy versions and security level 0 exist only here,
/// and only when `minVersion` asks for them.
public struct DownstreamTLSConfig: Sendable, Equatable, Codable {
    /// Lowest version accepted from the merchant.
    public var minVersion: TLSVersion
    /// Highest version accepted; `nil` means the newest OpenSSL has.
    public var maxVersion: TLSVersion?
    /// TLS ≤ 1.2 cipher string; `nil` means `legacyListenerCiphers` for a legacy listener, forward-
    /// secret AEAD suites otherwise (see `effectiveCiphers`).
    public var ciphers: String?
    /// TLS 1.3 suites; `nil` means OpenSSL's default.
    public var ciphersuites: String?
    /// The static identity presented for every name without its own.
    public var identity: CertificateFiles?
    /// A local CA that mints a certificate for each routed name.
    public var localCA: CertificateFiles?
    /// Per-name static identities (lowercased names), which win over `identity` and minting.
    public var certificates: [String: CertificateFiles]
    /// Mirrored client authentication: the merchant must present a certificate.
    public var requireClientCert: Bool
    /// CA bundle the merchant's certificate must chain to.
    public var clientCA: String?
    /// SHA-256 fingerprints (64 upper-case hex digits) of the merchant certificates accepted.
    public var clientCertFingerprints: [String]

    public init(minVersion: TLSVersion = .tls12, maxVersion: TLSVersion? = nil, ciphers: String? = nil,
                ciphersuites: String? = nil, identity: CertificateFiles? = nil, localCA: CertificateFiles? = nil,
                certificates: [String: CertificateFiles] = [:], requireClientCert: Bool = false,
                clientCA: String? = nil, clientCertFingerprints: [String] = []) {
        self.minVersion = minVersion
        self.maxVersion = maxVersion
        self.ciphers = ciphers
        self.ciphersuites = ciphersuites
        self.identity = identity
        self.localCA = localCA
        self.certificates = certificates
        self.requireClientCert = requireClientCert
        self.clientCA = clientCA
        self.clientCertFingerprints = clientCertFingerprints
    }

    /// Does this listener accept protocol versions older than TLS 1.2?
    public var isLegacy: Bool { minVersion < .tls12 }

    /// The cipher string actually applied: as configured; for a legacy listener everything this
    /// OpenSSL has at security level 0; otherwise forward-secret AEAD suites only.
    public var effectiveCiphers: String {
        ciphers ?? (isLegacy ? Self.legacyListenerCiphers : Self.modernCiphers)
    }

    /// The default of a legacy listener, in the server's order of preference: ECDHE first (AEAD,
    /// then CBC), DHE only with AEAD, then RSA key exchange with AES. No DHE with CBC: a client
    /// that knows no ECDHE and offers DHE-CBC is an old stack (Java 6 and 7, Android 2.3, OpenSSL
    /// 0.9.8), and OpenSSL 3 picks a 2048-bit DH group for it, which Java 6 and 7 cannot complete
    /// (no connection) and which costs the others several times the CPU of RSA key exchange.
    /// Measured with testssl.sh's recorded ClientHellos: every client that offers AES connects
    /// (`test_tls_listener_client_simulation.py`). Security level 0, for TLS 1.0's SHA-1.
    public static let legacyListenerCiphers =
        "ECDHE+AESGCM:ECDHE+CHACHA20:ECDHE+AES:DHE+AESGCM:DHE+CHACHA20:kRSA+AESGCM:kRSA+AES:!aNULL:!eNULL:!DSS:!PSK:!SRP:@SECLEVEL=0"

    /// What the bridge offers a legacy backend as a TLS client: everything this OpenSSL has at
    /// security level 0 (the backend, a server, chooses).
    public static let legacyCiphers = "DEFAULT:@SECLEVEL=0"

    /// The default TLS 1.2 suites of a non-legacy listener (the gateway's notification calls).
    public static let modernCiphers = "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20:!aNULL:!eNULL"
}

/// A `host:port` pair. IPv6 literals are written `[::1]:443` in config and kept here without brackets.
public struct HostPort: Sendable, Equatable, Codable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: UInt16

    public init(host: String, port: UInt16) {
        self.host = host
        self.port = port
    }

    /// `host:port`, with brackets around an IPv6 literal.
    public var description: String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}
