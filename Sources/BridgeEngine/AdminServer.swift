import BridgeIO
import BridgeModel
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The admin endpoint (`[admin] listen`): `/healthz` (and `/healthz?deep=1`, a real handshake to
/// every upstream) and `/metrics`, on its own thread and event loop so that neither a scrape nor a
/// deep health check ever runs on a worker's loop.
final class AdminServer: Sendable {
    private let socket: ListeningSocket
    private let runtime: Mutex<BridgeRuntime>
    private let wake = Mutex<WakeHandle?>(nil)
    private let thread = Mutex<pthread_t?>(nil)
    /// The worker loops' heartbeats: `/healthz` fails while one is stuck.
    private let watchdog: Watchdog?

    /// Binds now (so a taken port stops start-up with a clear error); serves after `start()`.
    init(address: HostPort, runtime: BridgeRuntime, watchdog: Watchdog? = nil) throws(ConfigErrors) {
        self.watchdog = watchdog
        let listener = ListenerConfig(name: "admin", listen: address, upstream: nil)
        do {
            socket = try ListeningSocket.bind(listener)
        } catch {
            throw ConfigErrors([ConfigError(key: "admin.listen", message: error.message)])
        }
        self.runtime = Mutex(runtime)
    }

    /// The configuration a reload made current.
    func update(_ runtime: BridgeRuntime) {
        self.runtime.withLock { $0 = runtime }
    }

    /// Serves on a thread of its own. The thread holds a reference to this server (and so to the
    /// runtime and its TLS contexts) until it ends, which `stop()` waits for.
    func start() {
        var thread = pthread_t()
        let context = Unmanaged.passRetained(self).toOpaque()
        guard pthread_create(&thread, nil, { context in
            let server = Unmanaged<AdminServer>.fromOpaque(context!).takeRetainedValue()
            server.serve()
            return nil
        }, context) == 0 else {
            Unmanaged<AdminServer>.fromOpaque(context).release()
            return
        }
        self.thread.withLock { $0 = thread }
    }

    /// Ends the loop and joins the thread: when this returns, the thread has freed its loop and
    /// dropped its references, so the last one to the runtime is never released on it while the
    /// main thread is already exiting (and running OpenSSL's cleanup).
    func stop() {
        wake.withLock { $0 }?.wake()
        if let thread = thread.withLock({ $0 }) {
            pthread_join(thread, nil)
        }
    }

    private func serve() {
        let current = runtime.withLock { $0 }
        guard let loop = try? EventLoop(dns: current.config.dns) else { return }
        let endpoint = HTTPEndpoint(loop: loop, socket: socket) { [self] path, query in self.reply(path: path, query: query) }
        // Unowned: the loop keeps this closure, so a strong capture would keep the loop (its
        // event_base and resolver) alive forever.
        wake.withLock { $0 = loop.makeWakeHandle { [unowned loop] in loop.stop() } }
        loop.run()
        withExtendedLifetime(endpoint) {}
    }

    private func reply(path: String, query: String) -> HTTPEndpoint.Reply {
        let runtime = self.runtime.withLock { $0 }
        switch path {
        case "/healthz":
            // The admin thread answering proves little: the worker loops must be turning too.
            let stuck = watchdog?.stuckWorkers(now: EventLoop.monotonicMilliseconds()) ?? []
            guard stuck.isEmpty else {
                return .init(status: 503, body: stuck.map { "worker \($0.worker)'s event loop has not turned for"
                    + " \($0.silentMilliseconds / 1000) s\n" }.joined())
            }
            guard query.split(separator: "&").contains("deep=1") else { return .init(status: 200, body: "ok\n") }
            var failures: [String] = []
            for context in runtime.upstreams.values.sorted(by: { $0.config.name < $1.config.name }) {
                let result = UpstreamProbe.run(context, via: runtime.outboundProxies[context.config.name], config: runtime.config)
                if let details = result.details { runtime.metrics.upstreamHandshake(context.config.name, details) }
                if let error = result.error { failures.append("\(context.config.name): \(error)") }
            }
            return failures.isEmpty
                ? .init(status: 200, body: "ok: \(runtime.upstreams.count) upstreams answered a TLS handshake\n")
                : .init(status: 503, body: failures.joined(separator: "\n") + "\n")
        case "/metrics":
            return .init(status: 200, contentType: "text/plain; version=0.0.4; charset=utf-8",
                         body: runtime.metrics.render(active: runtime.openSessions.current,
                                                      maxSessions: runtime.config.limits.maxSessions,
                                                      upstreams: runtime.upstreams.keys.sorted(),
                                                      certificates: certificates(runtime)))
        default:
            return .init(status: 404, body: "not found: try /healthz or /metrics\n")
        }
    }

    private func certificates(_ runtime: BridgeRuntime) -> [(kind: String, name: String, subject: String, expiresAt: Int64)] {
        let now = Int64(Date().timeIntervalSince1970)
        var result: [(kind: String, name: String, subject: String, expiresAt: Int64)] = []
        for context in runtime.upstreams.values {
            if let subject = context.clientCertificateSubject, let left = context.clientCertificateSecondsLeft {
                result.append(("client", context.config.name, subject, now + left))
            }
        }
        for context in runtime.downstreams.values {
            for (name, identity) in context.identities {
                result.append(("listener", "\(context.listener.name)/\(name)", identity.subject, now + identity.secondsLeft))
            }
            // A listener with one certificate and no routes (a notification listener, a tls listener
            // with `upstream`) has only its default identity: its expiry matters as much.
            if let identity = context.defaultIdentity, !context.identities.values.contains(where: { $0 === identity }) {
                result.append(("listener", context.listener.name, identity.subject, now + identity.secondsLeft))
            }
        }
        // Only upstreams still configured: one a reload removed must not keep an expiry alert alive.
        for (name, certificate) in runtime.metrics.verifiedUpstreamCertificates() where runtime.upstreams[name] != nil {
            result.append(("upstream", name, certificate.subject, certificate.expiresAt))
        }
        return result.sorted { ($0.kind, $0.name) < ($1.kind, $1.name) }
    }
}
