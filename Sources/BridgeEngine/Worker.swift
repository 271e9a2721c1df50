import BridgeIO
import BridgeModel
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// One event loop on one thread, with its own listening sockets and the sessions they accepted.
///
/// Nothing in a worker is touched by another thread: it shares only the runtime's immutable
/// config and TLS contexts, the session log, and the session counter. Other threads reach it only
/// through its `StopHandle`.
final class Worker {
    let index: Int
    let runtime: BridgeRuntime
    let loop: EventLoop
    private var listeners: [Listener] = []
    /// The registry that keeps open sessions alive; a session leaves it in `sessionEnded`.
    private var sessions: [ObjectIdentifier: Session] = [:]
    private var sessionCounter: UInt64 = 0
    private let encoder = RecordEncoder()
    private var lastAcceptErrorLog: Int64 = -1_000_000

    init(index: Int, runtime: BridgeRuntime, sockets: [ListeningSocket]) throws(ConfigError) {
        self.index = index
        self.runtime = runtime
        self.loop = try EventLoop(dns: runtime.config.dns)
        for socket in sockets {
            let config = socket.listener
            listeners.append(Listener(socket: socket, loop: loop, onAccept: { [unowned self] fd, peer in
                self.accept(fd: fd, peer: peer, listener: config)
            }, onError: { [unowned self] reason in
                self.acceptFailed(reason, listener: config)
            }))
        }
    }

    /// Runs the loop until `stop()`.
    func run() {
        loop.run()
    }

    /// Stops accepting, ends every open session with close "shutdown", and ends the loop.
    func stop() {
        listeners.removeAll()
        for session in Array(sessions.values) {
            session.finish("shutdown", error: nil)
        }
        loop.stop()
    }

    private func nextSessionID() -> String {
        sessionCounter += 1
        return "\(runtime.processTag)-\(index)-\(sessionCounter)"
    }

    private func accept(fd: Int32, peer: SocketAddress?, listener: ListenerConfig) {
        let peerText = peer?.description ?? "unknown"
        guard listener.allowsSource(peer?.ipBytes ?? []) else {
            close(fd)
            refuseAtAccept(listener: listener, peer: peerText, close: "refused",
                           error: "\(peerText) is not in allow_sources of listener \(listener.name); closed before the TLS handshake")
            return
        }
        guard runtime.reserveSession() else {
            close(fd)
            refuseAtAccept(listener: listener, peer: peerText, close: "limit",
                           error: "max_sessions (\(runtime.config.limits.maxSessions)) sessions are open; connection refused")
            return
        }
        let downstream: BufferedStream?
        if listener.accept == .tls, let context = runtime.downstreams[listener.name] {
            downstream = BufferedStream(tlsServerSocket: fd, context: context, loop: loop)
        } else {
            downstream = BufferedStream(socket: fd, loop: loop)
        }
        guard let downstream else {
            runtime.releaseSession()
            refuseAtAccept(listener: listener, peer: peerText, close: "downstream_error",
                           error: "OpenSSL could not set up a TLS connection for the merchant (out of memory?)")
            return
        }
        // The listener's own address is only needed for a PROXY protocol header.
        let local = listener.proxyProtocol == nil ? nil : SocketAddress(peerOf: fd, local: true)
        let session = Session(id: nextSessionID(), worker: self, listener: listener, downstream: downstream,
                              peer: peer, local: local)
        sessions[ObjectIdentifier(session)] = session
        session.start()
    }

    /// An http-proxy client's next request is for another host: a new session takes its connection
    /// (and the request head already buffered in it).
    func continueProxyConnection(_ downstream: BufferedStream, listener: ListenerConfig, peer: SocketAddress?,
                                 local: SocketAddress?) {
        guard runtime.reserveSession() else {
            downstream.free(sendCloseNotify: false)
            refuseAtAccept(listener: listener, peer: peer?.description ?? "unknown", close: "limit",
                           error: "max_sessions (\(runtime.config.limits.maxSessions)) sessions are open; connection closed")
            return
        }
        let session = Session(id: nextSessionID(), worker: self, listener: listener, downstream: downstream,
                              peer: peer, local: local)
        sessions[ObjectIdentifier(session)] = session
        session.start()
    }

    /// One record for a connection closed at accept, before it became a session.
    private func refuseAtAccept(listener: ListenerConfig, peer: String, close: String, error: String) {
        let record = SessionRecord(
            time: WallClock.now(), session: nextSessionID(),
            direction: listener.backend == nil ? "outbound" : "inbound", listener: listener.name,
            downstream: .init(address: peer, protocol: listener.accept == .plain ? "plain" : nil),
            upstream: .init(name: listener.backend ?? listener.upstream), phase: "accept", close: close, error: error)
        runtime.sessionLog.append(encoder.line(for: record))
    }

    /// Called by a session exactly once, from its teardown.
    func sessionEnded(_ session: Session, record: SessionRecord) {
        runtime.sessionLog.append(encoder.line(for: record))
        runtime.releaseSession()
        sessions.removeValue(forKey: ObjectIdentifier(session))
    }

    private func acceptFailed(_ reason: String, listener: ListenerConfig) {
        // Out of descriptors and the like: say so at most once a second, not once per connection.
        let now = EventLoop.monotonicMilliseconds()
        if now - lastAcceptErrorLog >= 1000 {
            lastAcceptErrorLog = now
            runtime.logger.error("accept failed", metadata: ["listener": "\(listener.name)", "reason": "\(reason)"])
        }
    }
}
