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
    let sessionLog: SessionLog
    let logger: Logger
    /// A random tag that makes session ids unique across restarts writing to the same log.
    let processTag: String
    private let openSessions = Atomic<Int>(0)

    /// Opens the session log for `upstreams` built by `buildUpstreams(_:)`.
    public init(config: Config, upstreams: [String: UpstreamTLSContext], logger: Logger) throws(ConfigErrors) {
        do {
            sessionLog = try SessionLog(config.log.sessions)
        } catch {
            throw ConfigErrors([error])
        }
        self.config = config
        self.upstreams = upstreams
        self.logger = logger
        self.processTag = String(UInt32.random(in: 0...UInt32.max), radix: 16)
    }

    /// Builds every upstream's TLS context (loads CA files, certificates, keys: blocking work for
    /// start-up, never for a loop thread). Throws every problem found, each naming its key.
    public static func buildUpstreams(_ config: Config) throws(ConfigErrors) -> [String: UpstreamTLSContext] {
        var errors: [ConfigError] = []
        var upstreams: [String: UpstreamTLSContext] = [:]
        for upstream in config.upstreams {
            do {
                let context = try UpstreamTLSContext(upstream)
                if let secondsLeft = context.clientCertificateSecondsLeft, secondsLeft <= 0 {
                    errors.append(ConfigError(key: "upstream[\(upstream.name)].client_cert",
                                              message: "the certificate has expired; the gateway will refuse it — install the renewed certificate"))
                }
                upstreams[upstream.name] = context
            } catch {
                errors.append(error)
            }
        }
        guard errors.isEmpty else { throw ConfigErrors(errors) }
        return upstreams
    }

    /// Counts a new session if the limit allows it.
    func reserveSession() -> Bool {
        let (_, count) = openSessions.wrappingAdd(1, ordering: .relaxed)
        if count > config.limits.maxSessions {
            openSessions.wrappingSubtract(1, ordering: .relaxed)
            return false
        }
        return true
    }

    func releaseSession() {
        openSessions.wrappingSubtract(1, ordering: .relaxed)
    }
}
