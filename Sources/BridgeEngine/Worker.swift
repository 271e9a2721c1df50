import BridgeHTTP
import BridgeIO
import BridgeModel
import Logging
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// One event loop on one thread, with its own listening sockets and the sessions they accepted.
///
/// Nothing in a worker is touched by another thread: it shares only the runtime's immutable
/// config and TLS contexts, the session log, and the session counter. Other threads reach it only
/// through its `WorkerMailbox`.
final class Worker: SessionHost {
    let index: Int
    /// The current configuration. A reload replaces it; open sessions keep the contexts they chose.
    private(set) var runtime: BridgeRuntime
    let loop: EventLoop
    let clock: any SessionClock
    /// Accepting sockets by listen address, with the listener config each currently serves.
    private var listeners: [HostPort: (listener: Listener, config: ListenerConfig)] = [:]
    /// The registry that keeps open sessions alive; a session leaves it in `sessionEnded`.
    private var sessions: [ObjectIdentifier: Session] = [:]
    /// Client connections closing after an answer (see `LingeringClose`).
    private var lingering: [ObjectIdentifier: LingeringClose] = [:]
    private var sessionCounter: UInt64 = 0
    /// Connections the bridge answers itself and closes, outside any session (see `continueProxyConnection`).
    private let answers = ClosingAnswers()
    private let encoder = RecordEncoder()
    private var lastAcceptErrorLog: Int64 = -1_000_000
    /// Set once shutdown began: the loop ends when the last session does (or at the deadline).
    private var drainDeadline: Timer?
    /// Ready connections to the upstreams of the current configuration, by upstream name.
    private var sparePools: [String: SparePool] = [:]
    /// Proof that this loop turns (systemd's watchdog, `/healthz`): it beats on its own timer.
    private let watchdog: Watchdog?
    private var heartbeat: Timer?
    /// Shutdown has begun.
    private var draining = false

    init(index: Int, runtime: BridgeRuntime, sockets: [ListeningSocket], watchdog: Watchdog? = nil) throws(ConfigError) {
        self.watchdog = watchdog
        self.index = index
        self.runtime = runtime
        self.loop = try EventLoop(dns: runtime.config.dns)
        self.clock = LoopClock(loop: loop)
        sockets.forEach(addListener)
    }

    private func addListener(_ socket: ListeningSocket) {
        let address = socket.listener.listen
        let listener = Listener(socket: socket, loop: loop, onAccept: { [unowned self] fd, peer in
            guard let config = self.listeners[address]?.config else { return }
            self.accept(fd: fd, peer: peer, listener: config)
        }, onError: { [unowned self] reason in
            self.acceptFailed(reason, listener: self.listeners[address]?.config.name ?? "\(address)")
        })
        listeners[address] = (listener, socket.listener)
    }

    /// Handles what other threads posted: a reload or the start of shutdown.
    func handle(_ messages: [WorkerMessage]) {
        for message in messages {
            switch message {
            case .reload(let runtime, let newSockets):
                apply(runtime, newSockets: newSockets)
            case .drain:
                drain()
            }
        }
    }

    /// Swaps in a reloaded configuration: new sessions use it, open ones finish as they are.
    /// Listeners whose address stays keep their socket (no connection is dropped), removed ones
    /// close, added ones start from the sockets the main thread bound.
    private func apply(_ runtime: BridgeRuntime, newSockets: [ListeningSocket]) {
        self.runtime = runtime
        openSparePools()
        let wanted = Dictionary(runtime.config.listeners.map { ($0.listen, $0) }, uniquingKeysWith: { first, _ in first })
        for address in Array(listeners.keys) {
            if let config = wanted[address] {
                listeners[address]?.config = config
            } else {
                listeners.removeValue(forKey: address)
            }
        }
        newSockets.forEach(addListener)
    }

    /// Runs the loop until `stop()`.
    func run() {
        openSparePools()
        startHeartbeat()
        loop.run()
        heartbeat?.cancel()
        closeSparePools()
    }

    /// Beats from this loop, so a loop that stops turning stops the pings and fails `/healthz`.
    private func startHeartbeat() {
        guard let watchdog else { return }
        let timer = Timer(loop: loop) { [unowned self] in
            watchdog.beat(worker: self.index, now: EventLoop.monotonicMilliseconds())
            self.heartbeat?.schedule(afterMilliseconds: watchdog.beatMilliseconds)
        }
        heartbeat = timer
        watchdog.beat(worker: index, now: EventLoop.monotonicMilliseconds())
        timer.schedule(afterMilliseconds: watchdog.beatMilliseconds)
    }

    /// Replaces the spare pools with the current configuration's (`preconnect`): spares of an
    /// older generation may carry its certificates or route, so they are closed, not reused.
    private func openSparePools() {
        closeSparePools()
        // Shutting down: no new connections to the gateway, whatever a late reload says.
        guard !draining else { return }
        let runtime = self.runtime
        for upstream in runtime.config.upstreams where upstream.preconnect > 0 {
            guard let context = runtime.upstreams[upstream.name] else { continue }
            let pool = SparePool(upstream: upstream.name, count: upstream.preconnect, maxAge: upstream.preconnectMaxAge,
                                 clock: clock, dial: { [unowned self] report in
                                     self.dialer(for: .upstream(context), runtime: runtime, preamble: nil, report: report)
                                 }, warn: { [logger = runtime.logger] message in logger.warning("\(message)") },
                                 observe: { [metrics = runtime.metrics, name = upstream.name] event in metrics.spare(event, upstream: name) },
                                 reserveSpare: { [counter = runtime.openSessions, limit = runtime.config.limits.maxSessions] in
                                     counter.reserveSpare(limit: limit)
                                 },
                                 releaseSpares: { [counter = runtime.openSessions] in counter.releaseSpares($0) })
            sparePools[upstream.name] = pool
            pool.start()
        }
    }

    private func closeSparePools() {
        for pool in sparePools.values { pool.close() }
        sparePools.removeAll()
    }

    /// Stops accepting and lets open sessions finish for up to `drain_timeout`; then closes what is
    /// left (each logged with close "shutdown") and ends the loop. A second call closes at once.
    private func drain() {
        draining = true
        listeners.removeAll()
        closeSparePools()
        guard drainDeadline == nil, !sessions.isEmpty else {
            closeRemainingSessions()
            return
        }
        let deadline = Timer(loop: loop) { [unowned self] in self.closeRemainingSessions() }
        deadline.schedule(afterMilliseconds: runtime.config.limits.drainTimeout.milliseconds)
        drainDeadline = deadline
    }

    private func closeRemainingSessions() {
        answers.closeAll()
        let timeout = runtime.config.limits.drainTimeout.text
        for session in Array(sessions.values) {
            session.finish(.shutdown, error: "still open when drain_timeout (\(timeout)) ended; closed by the bridge")
        }
        drainDeadline?.cancel()
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
            refuseAtAccept(listener: listener, peer: peerText, close: .refused,
                           error: "\(peerText) is not in allow_sources of listener \(listener.name); closed before the TLS handshake")
            return
        }
        if let refusal = runtime.reserveSession(source: peer?.ipBytes ?? []) {
            close(fd)
            runtime.metrics.refused(by: refusal.limit)
            refuseAtAccept(listener: listener, peer: peerText, close: .limit, error: refusal.message + "; connection refused")
            return
        }
        let downstream: BufferedStream?
        if listener.accept == .tls, let context = runtime.downstreams[listener.name] {
            downstream = BufferedStream(tlsServerSocket: fd, context: context, loop: loop)
        } else {
            downstream = BufferedStream(socket: fd, loop: loop)
        }
        guard let downstream else {
            runtime.releaseSession(source: peer?.ipBytes ?? [])
            refuseAtAccept(listener: listener, peer: peerText, close: .downstreamError,
                           error: "OpenSSL could not set up a TLS connection for the merchant (out of memory?)")
            return
        }
        // The listener's own address is only needed for a PROXY protocol header.
        let local = listener.proxyProtocol == nil ? nil : SocketAddress(peerOf: fd, local: true)
        let session = Session(id: nextSessionID(), host: self, listener: listener, downstream: downstream,
                              peer: peer, local: local)
        sessions[ObjectIdentifier(session)] = session
        session.start()
    }

    /// A ready spare when the upstream has one for this configuration generation (see `SparePool`),
    /// else a dial.
    func dial(_ destination: Destination, runtime: BridgeRuntime, preamble: [UInt8]?,
              report: @escaping (Dialer.Event) -> Void) -> any Dialing {
        if preamble == nil, runtime === self.runtime, let name = destination.upstreamName,
           let taken = sparePools[name]?.take() {
            return SpareHandOver(taken, report: report)
        }
        return dialer(for: destination, runtime: runtime, preamble: preamble, report: report)
    }

    private func dialer(for destination: Destination, runtime: BridgeRuntime, preamble: [UInt8]?,
                        report: @escaping (Dialer.Event) -> Void) -> Dialer {
        Dialer(to: destination, via: destination.upstreamName.flatMap { runtime.outboundProxies[$0] }, loop: loop,
               limits: runtime.config.limits, isOwnAddress: { runtime.isOwnListener($0) }, preamble: preamble, report: report)
    }

    /// Closes a client connection after a short linger instead of at once (see `LingeringClose`).
    func closeLingering(_ downstream: BufferedStream) {
        let closer = LingeringClose(downstream, loop: loop) { [unowned self] closer in
            self.lingering.removeValue(forKey: ObjectIdentifier(closer))
        }
        lingering[ObjectIdentifier(closer)] = closer
    }

    /// An http-proxy client's next request is for another host: a new session takes its connection
    /// (and the request head already buffered in it).
    ///
    /// The new session belongs to the current configuration: it gets the listener of the same name
    /// as the runtime has it now, so routes a reload dropped are refused there (403). If the reload
    /// removed the listener (or made it something other than an http-proxy), the client is answered
    /// 503 and the connection closed, with a record.
    func continueProxyConnection(_ downstream: BufferedStream, listener previous: ListenerConfig, peer: SocketAddress?,
                                 local: SocketAddress?) {
        let peerText = peer?.description ?? "unknown"
        guard let listener = runtime.config.listeners.first(where: { $0.name == previous.name && $0.accept == .httpProxy }) else {
            let reason = "listener \(previous.name) was removed by a configuration reload; reconnect to a listener of"
                + " the current configuration"
            answers.answer(downstream, with: HTTPResponse.error(status: 503, reason: reason), loop: loop)
            refuseAtAccept(listener: previous, peer: peerText, close: .refused, error: "answered 503: \(reason)",
                           phase: .proxyRequest, httpStatus: 503)
            return
        }
        if let refusal = runtime.reserveSession(source: peer?.ipBytes ?? []) {
            downstream.free(sendCloseNotify: false)
            runtime.metrics.refused(by: refusal.limit)
            refuseAtAccept(listener: listener, peer: peerText, close: .limit, error: refusal.message + "; connection closed")
            return
        }
        let session = Session(id: nextSessionID(), host: self, listener: listener, downstream: downstream,
                              peer: peer, local: local)
        sessions[ObjectIdentifier(session)] = session
        session.start()
    }

    /// One record for a connection closed at accept, before it became a session; `/metrics`
    /// counts it under the same `result` as the record's `close`.
    private func refuseAtAccept(listener: ListenerConfig, peer: String, close: SessionRecord.Close, error: String,
                                phase: SessionRecord.Phase = .accept, httpStatus: Int? = nil) {
        let record = SessionRecord(
            time: WallClock.now(), session: nextSessionID(),
            direction: listener.backend == nil ? "outbound" : "inbound", listener: listener.name,
            downstream: .init(address: peer, protocol: listener.accept == .plain ? "plain" : nil, httpStatus: httpStatus),
            upstream: .init(name: listener.backend ?? listener.upstream), phase: phase, close: close, error: error)
        runtime.sessionLog.append(record, encoder: encoder)
        runtime.metrics.observe(record)
    }

    /// Called by a session exactly once, from its teardown.
    func sessionEnded(_ session: Session, record: SessionRecord) {
        runtime.sessionLog.append(record, encoder: encoder)
        runtime.metrics.observe(record, handshakeFailure: session.handshakeFailureLabel)
        runtime.releaseSession(source: session.sourceBytes)
        sessions.removeValue(forKey: ObjectIdentifier(session))
        // Its place under max_sessions may be what a spare was waiting for.
        for pool in sparePools.values { pool.refill() }
        if drainDeadline != nil, sessions.isEmpty {
            drainDeadline?.cancel()
            loop.stop()
        }
    }

    private func acceptFailed(_ reason: String, listener: String) {
        // Out of descriptors and the like: say so at most once a second, not once per connection.
        let now = EventLoop.monotonicMilliseconds()
        if now - lastAcceptErrorLog >= 1000 {
            lastAcceptErrorLog = now
            runtime.logger.error("accept failed", metadata: ["listener": "\(listener)", "reason": "\(reason)"])
        }
    }
}

/// What other threads ask of a worker.
enum WorkerMessage: Sendable {
    /// Use this configuration from now on; `newSockets` are bound for listeners it adds.
    case reload(BridgeRuntime, newSockets: [ListeningSocket])
    /// Stop accepting and let open sessions finish (a second drain closes them at once).
    case drain
}

/// The one way into a worker from another thread: messages queue here and the worker's loop is
/// woken to take them.
final class WorkerMailbox: Sendable {
    private let queue = Mutex<[WorkerMessage]>([])
    private let handle = Mutex<WakeHandle?>(nil)

    func attach(_ wakeHandle: WakeHandle) {
        handle.withLock { $0 = wakeHandle }
    }

    func post(_ message: WorkerMessage) {
        queue.withLock { $0.append(message) }
        handle.withLock { $0 }?.wake()
    }

    /// Called on the worker's thread when woken.
    func take() -> [WorkerMessage] {
        queue.withLock { messages in
            defer { messages.removeAll() }
            return messages
        }
    }
}
