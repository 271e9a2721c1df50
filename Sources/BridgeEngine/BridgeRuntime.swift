import BridgeIO
import BridgeModel
import Logging
import Synchronization

/// Everything the workers share: immutable configuration and TLS contexts, the session log, and
/// one atomic count of open sessions (for `limits.max_sessions` across all workers).
public final class BridgeRuntime: Sendable {
    public let config: Config
    /// One TLS context per `[[upstream]]`, by name.
    public let upstreams: [String: UpstreamTLSContext]
    /// One TLS context per `tls` listener, by listener name.
    public let downstreams: [String: DownstreamTLSContext]
    /// Every `[[backend]]`, with its TLS context when it speaks legacy TLS, by name.
    public let backends: [String: BackendRuntime]
    /// `proxy_auth` credentials of http-proxy listeners, by listener name.
    let proxyCredentials: [String: ProxyCredentials]
    /// The outbound proxy (`via`) of each upstream that has one, by upstream name.
    public let outboundProxies: [String: OutboundProxy]
    let sessionLog: SessionLog
    let logger: Logger
    /// A random tag that makes session ids unique across restarts writing to the same log.
    let processTag: String
    /// Open sessions across workers, carried over from one runtime to the next on reload.
    let openSessions: SessionCounter
    /// Counters for `/metrics`, carried over on reload.
    let metrics: Metrics

    /// Opens the session log for the contexts built by `buildContexts(_:)`.
    /// `previous` is the runtime a reload replaces: its session count and process tag carry over.
    public init(config: Config, contexts: TLSContexts, logger: Logger, replacing previous: BridgeRuntime? = nil) throws(ConfigErrors) {
        do {
            sessionLog = try SessionLog(config.log, previous: previous?.sessionLog)
        } catch {
            throw ConfigErrors([error])
        }
        self.config = config
        self.upstreams = contexts.upstreams
        self.downstreams = contexts.downstreams
        self.backends = contexts.backends
        self.proxyCredentials = contexts.proxyCredentials
        self.outboundProxies = contexts.outboundProxies
        self.logger = logger
        self.processTag = previous?.processTag ?? String(UInt32.random(in: 0...UInt32.max), radix: 16)
        self.openSessions = previous?.openSessions ?? SessionCounter()
        self.metrics = previous?.metrics ?? Metrics()
    }

    /// Builds every upstream's and every `tls` listener's TLS context (loads CA files, certificates,
    /// keys, mints certificates: blocking work for start-up, never for a loop thread). Throws every
    /// problem found, each naming its key.
    public static func buildContexts(_ config: Config) throws(ConfigErrors) -> TLSContexts {
        var errors: [ConfigError] = []
        var downstreams: [String: DownstreamTLSContext] = [:]
        var backends: [String: BackendRuntime] = [:]
        for backend in config.backends {
            do {
                backends[backend.name] = BackendRuntime(config: backend,
                                                        tls: backend.tls == .legacy ? try BackendTLSContext(backend) : nil)
            } catch {
                errors.append(error)
            }
        }
        var proxyCredentials: [String: ProxyCredentials] = [:]
        for listener in config.listeners where listener.accept.terminatesTLS {
            do {
                downstreams[listener.name] = try DownstreamTLSContext(listener: listener)
                if let file = listener.proxyAuthFile {
                    proxyCredentials[listener.name] = try ProxyCredentials(path: file, key: "listener[\(listener.name)].proxy_auth")
                }
            } catch {
                errors.append(error)
            }
        }
        var upstreams: [String: UpstreamTLSContext] = [:]
        var outboundProxies: [String: OutboundProxy] = [:]
        for upstream in config.upstreams {
            do {
                if let via = upstream.via {
                    outboundProxies[upstream.name] = try OutboundProxy(address: via, credentialsFile: upstream.viaCredentialsFile,
                                                                       key: "upstream[\(upstream.name)].via_credentials")
                }
                let context = try UpstreamTLSContext(upstream)
                if let secondsLeft = context.clientCertificateSecondsLeft, secondsLeft <= 0 {
                    errors.append(ConfigError(key: "upstream[\(upstream.name)].client_cert",
                                              message: "the certificate has expired; the gateway will refuse it — install the renewed certificate"))
                } else if let wait = context.clientCertificateSecondsUntilValid, wait > 0 {
                    // The gateway would refuse it just the same until then; starting anyway would
                    // fail every payment with a handshake error instead of one clear message here.
                    errors.append(ConfigError(key: "upstream[\(upstream.name)].client_cert",
                                              message: "the certificate is not valid yet (it becomes valid in \(durationText(seconds: wait)));"
                                                + " the gateway will refuse it — keep the current certificate until then, or check the system clock"))
                }
                upstreams[upstream.name] = context
            } catch {
                errors.append(error)
            }
        }
        guard errors.isEmpty else { throw ConfigErrors(errors) }
        return TLSContexts(upstreams: upstreams, downstreams: downstreams, backends: backends,
                           proxyCredentials: proxyCredentials, outboundProxies: outboundProxies)
    }

    /// Is `address` one this bridge listens on (exactly, or through a wildcard listen address)?
    func isOwnListener(_ address: SocketAddress) -> Bool {
        config.isOwnListener(address)
    }

    /// Counts a new session from `source` if the limits allow it; otherwise says which limit.
    func reserveSession(source: [UInt8]) -> LimitRefusal? {
        openSessions.reserve(limit: config.limits.maxSessions, source: source,
                             perSourceLimit: config.limits.maxSessionsPerSource)
    }

    func releaseSession(source: [UInt8]) {
        openSessions.release(source: source)
    }
}

/// The TLS contexts of one configuration, built before anything runs.
public struct TLSContexts: Sendable {
    public var upstreams: [String: UpstreamTLSContext]
    public var downstreams: [String: DownstreamTLSContext]
    public var backends: [String: BackendRuntime]
    var proxyCredentials: [String: ProxyCredentials]
    public var outboundProxies: [String: OutboundProxy]
}

/// A backend and, for a legacy TLS backend, its client context.
public struct BackendRuntime: Sendable {
    public var config: BackendConfig
    public var tls: BackendTLSContext?
}

/// The number of open sessions across all workers, in all and per source address: the mutable
/// values they share.
final class SessionCounter: Sendable {
    private let count = Atomic<Int>(0)
    private let perSource = Mutex<[[UInt8]: Int]>([:])

    /// Counts one more session unless `limit` are open already, or `perSourceLimit` (when > 0)
    /// from `source`. Returns nil when counted, else which limit refused it.
    func reserve(limit: Int, source: [UInt8], perSourceLimit: Int) -> LimitRefusal? {
        let (_, now) = count.wrappingAdd(1, ordering: .relaxed)
        guard now <= limit else {
            count.wrappingSubtract(1, ordering: .relaxed)
            return LimitRefusal(limit: .maxSessions, value: limit)
        }
        guard perSourceLimit > 0 else { return nil }
        let admitted = perSource.withLock { counts in
            guard counts[source, default: 0] < perSourceLimit else { return false }
            counts[source, default: 0] += 1
            return true
        }
        guard admitted else {
            count.wrappingSubtract(1, ordering: .relaxed)
            return LimitRefusal(limit: .maxSessionsPerSource, value: perSourceLimit)
        }
        return nil
    }

    func release(source: [UInt8]) {
        count.wrappingSubtract(1, ordering: .relaxed)
        perSource.withLock { counts in
            guard let current = counts[source] else { return }
            counts[source] = current > 1 ? current - 1 : nil
        }
    }

    var current: Int { count.load(ordering: .relaxed) }

    /// Spare upstream connections kept (ready or dialling) across workers and generations.
    private let spares = Atomic<Int>(0)

    /// Counts one more spare if open sessions and spares stay within `limit` (`max_sessions`): a
    /// spare holds a gateway connection as a session does, so spares only use room sessions leave.
    /// Sessions are admitted up to the limit whatever the spares (a session takes one over).
    func reserveSpare(limit: Int) -> Bool {
        let (_, kept) = spares.wrappingAdd(1, ordering: .relaxed)
        guard current + kept <= limit else {
            spares.wrappingSubtract(1, ordering: .relaxed)
            return false
        }
        return true
    }

    func releaseSpares(_ count: Int) {
        spares.wrappingSubtract(count, ordering: .relaxed)
    }

    var currentSpares: Int { spares.load(ordering: .relaxed) }
}

/// The `[limits]` key that refused a connection, as `/metrics` labels it.
enum SessionLimit: String, Sendable, CaseIterable {
    case maxSessions = "max_sessions"
    case maxSessionsPerSource = "max_sessions_per_source"
}

/// A connection refused by a session limit: which one, and its configured value.
struct LimitRefusal: Sendable, Equatable {
    var limit: SessionLimit
    var value: Int

    /// For the session record's `error`.
    var message: String {
        switch limit {
        case .maxSessions: "max_sessions (\(value)) sessions are open"
        case .maxSessionsPerSource: "max_sessions_per_source (\(value)) sessions from this address are open"
        }
    }
}

/// A positive number of seconds in the largest whole unit an operator reads at a glance
/// ("3 days", "5 hours"): the exact second is in the certificate, this only says how far off it is.
func durationText(seconds: Int64) -> String {
    let units: [(Int64, String)] = [(86_400, "day"), (3_600, "hour"), (60, "minute"), (1, "second")]
    for (size, name) in units where seconds >= size {
        let count = seconds / size
        return "\(count) \(name)\(count == 1 ? "" : "s")"
    }
    return "\(seconds) seconds"
}
