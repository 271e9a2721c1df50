import BridgeIO
import BridgeModel
#if canImport(Glibc)
import Glibc
#endif

/// One downstream connection and its upstream connection, from accept to close.
///
/// Lives on one worker's loop and never leaves it. The worker's registry keeps it alive; streams
/// and timers hold it weakly. Every way a session can end goes through `finish(_:error:)`, the one
/// teardown path, which frees both streams, writes the record and tells the host (the worker).
///
/// States (`State`, each owning its resources): accepted or proxy_request → (downstream_handshake
/// →) dialling (resolve → connect → handshake, see `Dialer`) → open → (draining) → closed. The
/// record names them by `SessionRecord.Phase`. On an http-proxy listener, `ProxyRequestStage` reads
/// and decides the request head (`Session+ProxyFront.swift` acts on its outcome) and absolute-form
/// requests go through `HTTPForwarder` (`Session+HTTPForwarding.swift`).
/// The upstream is dialled only once the merchant's TLS handshake (if any) succeeded and its name
/// is routed, and the merchant's bytes are read only once the upstream is open: a refused or
/// failed session costs the gateway nothing, and the merchant's bytes wait in the kernel meanwhile.
final class Session: BufferedStreamDelegate {
    /// The record's phases (`SessionRecord.Phase`).
    typealias Phase = SessionRecord.Phase

    let id: String
    /// The worker that runs it (or a test's host).
    unowned let host: any SessionHost
    /// The configuration generation the session was accepted under. It is the only one the
    /// session reads, from accept to record: a reload meanwhile changes nothing for it (its
    /// routes, upstream contexts, limits and credentials stay those it started with).
    let runtime: BridgeRuntime
    let listener: ListenerConfig
    let limits: LimitsConfig
    let downstreamAddress: String
    private let startTime = WallClock.now()
    private let startMilliseconds: Int64

    /// Where the session is, with what that stage owns: the dial while dialling, the destination's
    /// stream while open, why it ends while draining. A resource lives in one state only, and
    /// leaving the state releases it (`beginDrain`, `finish`).
    enum State {
        /// Accepted, not yet routed (plain listeners route at once).
        case accepted
        /// An http-proxy listener reading the request head (the stage reads and decides it).
        case proxyRequest(ProxyRequestStage)
        /// The merchant's TLS handshake.
        case downstreamHandshake
        /// Reaching the destination (`step`: resolve, connect or handshake).
        case dialling(any Dialing, step: Phase)
        /// Relaying to and from the destination.
        case open(upstream: BufferedStream)
        /// The destination is gone (or refused); what is queued for the merchant is being delivered.
        case draining(close: SessionRecord.Close, error: String?, endedIn: Phase)
        /// The record is written; nothing is owned any more.
        case closed(endedIn: Phase)
    }

    private(set) var state = State.accepted

    /// The record's phase for the current state.
    var phase: Phase {
        switch state {
        case .accepted: .resolve
        case .proxyRequest: .proxyRequest
        case .downstreamHandshake: .downstreamHandshake
        case .dialling(_, let step): step
        case .open: .open
        case .draining: .drain
        case .closed(let endedIn): endedIn
        }
    }

    /// Has the session ended (and written its record)?
    var closed: Bool {
        if case .closed = state { return true }
        return false
    }

    /// The stream toward the destination (called upstream for both directions), while open.
    var upstream: BufferedStream? {
        if case .open(let upstream) = state { return upstream }
        return nil
    }

    /// Enters a state that owns nothing (the head, the merchant's handshake).
    func enter(_ next: State) {
        state = next
    }
    /// The merchant's (or gateway's) connection. Replaced once: by its TLS layer after a CONNECT.
    var downstream: BufferedStream
    var downstreamIsTLS: Bool
    /// Where the session goes once routed: an upstream (outbound) or a backend (inbound).
    var destination: Destination?
    private var dialled: SocketAddress?
    private var destinationConnected = false
    /// How long the upstream TLS handshake took, for the record and metrics.
    private var handshakeMilliseconds: Int?
    /// How long the upstream connection had been waiting ready when this session took it (a
    /// `preconnect` spare); nil when it was dialled for this session.
    private var spareAgeMilliseconds: Int64?
    /// Why the upstream handshake failed, as `/metrics` labels it; nil if it did not fail.
    private(set) var handshakeFailureLabel: String?
    /// The merchant's (or gateway's) address, and the listener address it connected to.
    let downstreamPeer: SocketAddress?
    let downstreamLocal: SocketAddress?
    /// The peer's IP, for the per-source session count.
    var sourceBytes: [UInt8] { downstreamPeer?.ipBytes ?? [] }
    /// The session's one timer: the current phase's time limit.
    var timer: (any SessionTimer)!
    var lastActivity: Int64

    /// What each TLS handshake negotiated, for the record.
    var upstreamTLS: TLSDetails?
    private var downstreamTLS: TLSDetails?
    /// What the merchant's TLS client offered (tls listeners), for the migration evidence and for
    /// explaining refusals.
    private var offered: ClientHelloSummary?
    private var hint: String?

    var bytesUp = 0
    var bytesDown = 0

    // http-proxy listeners (see Session+ProxyFront.swift and Session+HTTPForwarding.swift).
    /// Frames absolute-form requests and their responses; nil for every other kind of session.
    var forwarder: HTTPForwarder?
    /// The CONNECT target ("host:port") or the absolute-form request host, for the record.
    var connectTarget: String?
    var requestHost: String?
    /// The status the bridge answered with itself, for the record.
    var httpStatus: Int?
    /// The upstream the http-proxy front chose from the CONNECT target or request host (routing
    /// then ignores SNI).
    var frontRoute: String?
    /// What to do once the responses owed to the client are delivered.
    var afterResponses: AfterResponses?
    var downstreamEnded = false
    /// Framed requests: since when the client owes the next request head, and how many heads it
    /// had sent then (see `timeRequestHead`); nil while no head is owed.
    var requestHeadClock: (since: Int64, requestsSent: Int)?
    private var upstreamSentCloseNotify: Bool?
    var pausedDownstream = false
    var pausedUpstream = false

    /// `downstream` is the accepted connection, plain or a TLS server stream already handshaking.
    init(id: String, host: any SessionHost, listener: ListenerConfig, downstream: BufferedStream,
         peer: SocketAddress?, local: SocketAddress?) {
        self.id = id
        self.downstreamPeer = peer
        self.downstreamLocal = local
        self.host = host
        self.listener = listener
        self.runtime = host.runtime
        self.limits = runtime.config.limits
        self.downstreamAddress = peer?.description ?? "unknown"
        self.downstream = downstream
        self.downstreamIsTLS = listener.accept == .tls || (listener.accept == .httpProxy && downstream.isTLS)
        self.startMilliseconds = host.clock.now
        self.lastActivity = startMilliseconds
    }

    // MARK: - Phases

    func start() {
        downstream.delegate = self
        downstream.setInputLimit(inputLimit)
        timer = host.clock.makeTimer { [weak self] in self?.timerFired() }
        if listener.accept == .httpProxy {
            beginProxyRequest()
        } else if downstreamIsTLS {
            beginDownstreamHandshake()
        } else {
            route(serverName: nil)
        }
    }

    /// The merchant's TLS handshake, on a tls listener or inside a CONNECT tunnel, within handshake_timeout.
    func beginDownstreamHandshake() {
        enter(.downstreamHandshake)
        timer.schedule(afterMilliseconds: limits.handshakeTimeout.milliseconds)
        downstream.enableReading()
        downstream.enableWriting()
    }

    /// The merchant's TLS handshake succeeded: check its certificate if the listener wants one,
    /// pick the upstream by SNI, and only then dial it.
    private func downstreamHandshakeCompleted() {
        downstream.disableReading()
        let details = downstream.tlsDetails()
        downstreamTLS = details
        offered = downstream.clientHello()
        if let allowed = listener.tls?.clientCertFingerprints, !allowed.isEmpty {
            guard let fingerprint = details?.peerFingerprint, allowed.contains(fingerprint) else {
                finish(.refused, error: "the merchant's client certificate \(details?.peerSubject ?? "(none)")"
                    + " (SHA-256 \(details?.peerFingerprint ?? "-")) is not in client_cert_fingerprints of listener \(listener.name)")
                return
            }
        }
        route(serverName: details?.serverName)
    }

    func route(serverName: String?) {
        if let frontRoute, let context = runtime.upstreams[frontRoute] {
            destination = .upstream(context)
        } else if let backendName = listener.backend, let backend = runtime.backends[backendName] {
            destination = .backend(backend)
            if let header = listener.clientAddressHeader, let peer = downstreamPeer {
                // Each notification is framed, so the merchant's server is told the gateway's
                // address in a header on every request (and never one the peer wrote itself).
                forwarder = HTTPForwarder(settingClientAddress: header, address: peer.ipText)
            }
        } else if let name = listener.upstreamName(forServerName: serverName), let context = runtime.upstreams[name] {
            destination = .upstream(context)
        } else {
            finish(.refused, error: "no route for server name \(serverName.map { "\"\($0)\"" } ?? "(none sent)")"
                + " on listener \(listener.name), and it has no default upstream")
            return
        }
        timer.cancel()
        let preamble = listener.proxyProtocol.flatMap { version in
            downstreamPeer.flatMap { source in
                downstreamLocal.map { ProxyProtocolHeader.bytes(version, source: source, destination: $0) }
            }
        }
        let dial = host.dial(destination!, runtime: runtime, preamble: preamble) { [weak self] event in
            self?.dialReported(event)
        }
        state = .dialling(dial, step: .resolve)
        dial.start()
    }

    private func dialReported(_ event: Dialer.Event) {
        switch event {
        case .stepped(let step):
            guard case .dialling(let dial, _) = state else { return }
            state = .dialling(dial, step: step.recordPhase)
            if step == .handshake { destinationConnected = true }
        case .failed(let failure):
            guard case .dialling(let dial, _) = state else { return }
            state = .dialling(dial, step: failure.step.recordPhase)
            dialled = failure.address
            destinationConnected = failure.connected
            upstreamTLS = failure.tls ?? upstreamTLS
            handshakeFailureLabel = failure.handshakeLabel
            let toGateway = destination?.upstreamName != nil
            let name = destination.map { toGateway ? $0.name : "the merchant's server (backend \($0.name))" } ?? "the gateway"
            failUpstream(failure.close, error: failure.error, summary: failure.summary(destination: name, toGateway: toGateway))
        case .ready(let ready):
            dialled = ready.address
            destinationConnected = true
            upstreamTLS = ready.tls
            if let upstream = destination?.upstreamName, let tls = ready.tls {
                runtime.metrics.upstreamHandshake(upstream, tls)
            }
            handshakeMilliseconds = ready.handshakeMilliseconds
            spareAgeMilliseconds = ready.preconnectedMillisecondsAgo
            ready.stream.delegate = self
            ready.stream.setInputLimit(inputLimit)
            state = .open(upstream: ready.stream)
            upstreamOpened()
        }
    }

    /// The destination is connected, handshaken and verified: start relaying.
    private func upstreamOpened() {
        lastActivity = host.clock.now
        timer.schedule(afterMilliseconds: limits.idleTimeout.milliseconds)
        timeRequestHead()
        // Bytes the merchant sent with its handshake are already buffered: pass them on now.
        if downstream.inputLength > 0 { streamHasInput(downstream) }
        if phase == .open, mayReadDownstream, !pausedDownstream { downstream.enableReading() }
        // A gateway may speak first: what it sent with its handshake is buffered too.
        if phase == .open, let upstream, upstream.inputLength > 0 { streamHasInput(upstream) }
    }

    private func timerFired() {
        guard !closed else { return }
        switch phase {
        case .proxyRequest:
            // A proxy client is told why, as an HTTP server would (408), and gets idle_timeout to read it.
            answer(408, "no complete request head within header_timeout (\(limits.headerTimeout.text))", close: .headerTimeout)
            if !closed { timer.schedule(afterMilliseconds: currentIdleLimit) }
        case .downstreamHandshake:
            offered = downstream.clientHello()
            finish(.handshakeTimeout, error: "the merchant did not complete the TLS handshake within handshake_timeout"
                + " (\(limits.handshakeTimeout.text))")
        case .accept, .resolve, .connect, .tunnel, .handshake:
            break  // the dial keeps its own time (see `Dialer`); a session is never in accept
        case .open, .drain:
            if phase == .open, let remaining = requestHeadMillisecondsLeft, remaining <= 0 {
                if pausedDownstream || afterResponses != nil {
                    // The bridge itself is not reading the client now: its time starts again.
                    requestHeadClock?.since = host.clock.now
                } else {
                    requestHeadTimedOut()
                    return
                }
            }
            let pendingClose: (close: SessionRecord.Close, error: String?)?
            if case .draining(let close, let error, _) = state { pendingClose = (close, error) } else { pendingClose = nil }
            let idle = host.clock.now - lastActivity
            let limit = currentIdleLimit
            if idle < limit {
                scheduleOpenTimer()
            } else if let pendingClose {
                let stalled = "the downstream stopped reading while the rest of the response was being delivered (idle_timeout)"
                finish(pendingClose.close, error: pendingClose.error.map { "\($0); \(stalled)" } ?? stalled)
            } else if downstreamEnded {
                finish(.downstreamEOF, error: nil)
            } else {
                finish(.idleTimeout, error: nil)
            }
        }
    }

    // MARK: - Data

    func streamHasInput(_ stream: BufferedStream) {
        if phase == .proxyRequest, stream === downstream {
            readProxyRequest()
            return
        }
        guard phase == .open, let upstream else { return }
        if forwarder != nil {
            pumpHTTP(from: stream)
            return
        }
        lastActivity = host.clock.now
        if stream === downstream {
            bytesUp += downstream.moveInput(to: upstream)
            pauseIfFull(source: downstream, destination: upstream)
        } else {
            bytesDown += upstream.moveInput(to: downstream)
            pauseIfFull(source: upstream, destination: downstream)
        }
    }

    /// The most bytes each stream buffers as input before it stops reading its socket, in every
    /// phase: `buffer_size`, but never less than the longest head or chunked-body line the HTTP
    /// parsers must see whole (a 64 KiB response head), or a parser could wait for ever. With the
    /// output side bounded by `pauseIfFull`, a session holds about 2 × (`buffer_size` + one read)
    /// whatever its peers do, and `max_sessions` bounds the process.
    var inputLimit: Int { max(limits.bufferSize, Self.minimumInputLimit) }
    static let minimumInputLimit = 80 * 1024

    /// Milliseconds left for the client's next request head, while one is owed (framed requests).
    var requestHeadMillisecondsLeft: Int64? {
        guard phase == .open, let clock = requestHeadClock else { return nil }
        return limits.headerTimeout.milliseconds - (host.clock.now - clock.since)
    }

    /// Arms the timer of an open or draining session for whichever comes first: the idle limit or
    /// the request head's.
    func scheduleOpenTimer() {
        let idleLeft = currentIdleLimit - (host.clock.now - lastActivity)
        let headLeft = requestHeadMillisecondsLeft ?? idleLeft
        timer.schedule(afterMilliseconds: max(0, min(idleLeft, headLeft)))
    }

    /// How long the session may stay silent: `idle_timeout`, or the shorter `half_close_timeout`
    /// once the merchant has closed its side.
    var currentIdleLimit: Int64 {
        let idle = limits.idleTimeout.milliseconds
        return downstreamEnded ? min(idle, limits.halfCloseTimeout.milliseconds) : idle
    }

    /// Backpressure: with `buffer_size` queued toward `destination`, stop reading `source` until
    /// the queue drains to half (see `streamDrained`).
    func pauseIfFull(source: BufferedStream, destination: BufferedStream) {
        guard destination.outputLength >= limits.bufferSize else { return }
        source.disableReading()
        destination.setWriteLowWatermark(limits.bufferSize / 2)
        if source === downstream { pausedDownstream = true } else { pausedUpstream = true }
    }

    func streamDrained(_ stream: BufferedStream) {
        lastActivity = host.clock.now
        if stream === downstream {
            if pausedUpstream {
                pausedUpstream = false
                downstream.setWriteLowWatermark(0)
                upstream?.enableReading()
            }
            if case .draining(let close, let error, _) = state, downstream.outputLength == 0 {
                finish(close, error: error)
            }
        } else if pausedDownstream {
            pausedDownstream = false
            upstream?.setWriteLowWatermark(0)
            if mayReadDownstream { downstream.enableReading() }
        }
    }

    // MARK: - Events

    func stream(_ stream: BufferedStream, reported event: StreamEvent) {
        if stream === downstream || phase == .proxyRequest {
            downstreamReported(event)
        } else {
            upstreamReported(event)
        }
    }

    private func downstreamReported(_ event: StreamEvent) {
        if phase == .proxyRequest {
            switch event {
            case .connected: break
            case .endOfStream, .endOfStreamWithoutCloseNotify: finish(.downstreamEOF, error: nil)
            case .failed(let reason): finish(.downstreamError, error: "downstream \(downstreamAddress): \(reason)")
            }
            return
        }
        if phase == .downstreamHandshake {
            switch event {
            case .connected:
                downstreamHandshakeCompleted()
            case .endOfStream, .endOfStreamWithoutCloseNotify:
                downstreamHandshakeFailed(nil)
            case .failed(let failure):
                downstreamHandshakeFailed(failure)
            }
            return
        }
        switch event {
        case .connected:
            break
        case .endOfStream, .endOfStreamWithoutCloseNotify:
            downstreamEnded = true
            if forwarder != nil {
                // HTTP framing says whether anything is still owed: if not, nothing can come.
                continueAfterResponses()
                return
            }
            if let upstream, phase == .open { bytesUp += downstream.moveInput(to: upstream) }
            // Nothing was ever sent, so no answer can be owed: close now instead of holding an
            // upstream connection open until idle_timeout. Otherwise keep the upstream open: the
            // merchant may have half-closed and still await the response (TLS cannot half-close).
            if bytesUp == 0 {
                finish(.downstreamEOF, error: nil)
            } else {
                timer.schedule(afterMilliseconds: max(1, currentIdleLimit - (host.clock.now - lastActivity)))
            }
        case .failed(let reason):
            finish(.downstreamError, error: "downstream \(downstreamAddress): \(reason)")
        }
    }

    /// The merchant's handshake failed (`failure` nil: it closed the connection).
    private func downstreamHandshakeFailed(_ failure: StreamFailure?) {
        offered = downstream.clientHello()
        downstreamTLS = downstream.tlsDetails()
        let reason = failure?.text ?? "the merchant closed the connection during the TLS handshake"
        let sni = offered?.serverName
        let routed = listener.hasDefaultRoute || listener.upstreamName(forServerName: sni) != nil
        if failure?.has(.unrecognizedName) == true || (!routed && failure?.has(.serverNameCallbackFailed) == true) {
            finish(.refused, error: "no route for server name \(sni.map { "\"\($0)\"" } ?? "(none sent)") on listener"
                + " \(listener.name), and it has no default upstream; the handshake was refused")
            return
        }
        hint = HandshakeHint.downstreamFailure(failure, offered: offered, listener: listener)
        let clientCertificateProblem = failure?.has(.clientCertificateMissing) == true
            || (listener.tls?.requireClientCert == true && failure?.has(.certificateVerifyFailed) == true)
        finish(clientCertificateProblem ? .refused : .downstreamError,
               error: "TLS handshake with the merchant at \(downstreamAddress) failed: \(reason)")
    }

    private func upstreamReported(_ event: StreamEvent) {
        switch event {
        case .connected:
            break  // the dial reported the handshake
        case .endOfStream, .endOfStreamWithoutCloseNotify:
            if let upstream { bytesDown += upstream.moveInput(to: downstream) }
            // A missing close_notify is common (many servers just close TCP) and every byte did
            // arrive, so it is not an error; the record says which it was.
            upstreamSentCloseNotify = upstreamTLS == nil ? nil : event == .endOfStream
            beginDrain(close: .upstreamEOF, error: nil)
        case .failed(let reason):
            let error = "upstream \(dialled.map(String.init(describing:)) ?? "?"): \(reason)"
            if phase == .open, forwarder == nil, let upstream {
                // What arrived before the failure came whole through TLS: the merchant gets it,
                // then a close without close_notify (see `finish`), so a TLS merchant can tell.
                bytesDown += upstream.moveInput(to: downstream)
                beginDrain(close: .upstreamError, error: error)
            } else {
                finish(.upstreamError, error: error)
            }
        }
    }

    /// The upstream ended or broke: deliver what is queued for the merchant, then close.
    func beginDrain(close: SessionRecord.Close, error: String?) {
        let endedIn = phase
        releaseDestination(orderly: close.isOrderly)
        state = .draining(close: close, error: error, endedIn: endedIn)
        downstream.disableReading()
        if downstream.outputLength == 0 {
            finish(close, error: error)
        } else {
            downstream.setWriteLowWatermark(0)
        }
    }

    // MARK: - Teardown

    /// Does the merchant's connection get a lingering close? When the bridge stopped reading a
    /// plain http-proxy client that may still be sending (it answered it, or the client asked to
    /// close after its last request) and everything owed to it is written: closing with its
    /// bytes unread would reset the connection and could destroy that answer.
    private var lingersOnClose: Bool {
        guard !downstreamIsTLS, listener.accept == .httpProxy, !downstreamEnded, downstream.outputLength == 0 else { return false }
        return httpStatus != nil && httpStatus != 200 || forwarder?.readsNoMoreRequests == true
    }

    /// Releases what the current state owns toward the destination: the dial (a half-made
    /// connection gets no close_notify), or the open stream, with close_notify when `orderly`.
    private func releaseDestination(orderly: Bool) {
        switch state {
        case .dialling(let dial, _):
            dial.cancel()
        case .open(let upstream):
            if upstreamTLS == nil { upstreamTLS = upstream.tlsDetails() }
            bytesUp -= upstream.outputLength
            upstream.free(sendCloseNotify: orderly)
        case .accepted, .proxyRequest, .downstreamHandshake, .draining, .closed:
            break
        }
    }

    /// Ends the session: the one teardown path. Idempotent. With `handingOver`, the downstream
    /// connection survives for the next session (an http-proxy client's request for another host).
    func finish(_ close: SessionRecord.Close, error: String?, handingOver: Bool = false) {
        let endedIn: Phase
        switch state {
        case .closed: return
        case .draining(_, _, let from): endedIn = from
        default: endedIn = phase
        }
        let orderly = close.isOrderly
        let merchantHandshakeDone = phase != .downstreamHandshake
        timer?.cancel()
        releaseDestination(orderly: orderly)
        if !handingOver {
            bytesDown -= downstream.outputLength
            if lingersOnClose {
                host.closeLingering(downstream)
            } else {
                downstream.free(sendCloseNotify: downstreamIsTLS && merchantHandshakeDone && orderly)
            }
        }
        state = .closed(endedIn: endedIn)
        host.sessionEnded(self, record: record(close: close, error: error, phase: endedIn))
    }

    private func record(close: SessionRecord.Close, error: String?, phase: Phase) -> SessionRecord {
        SessionRecord(time: startTime, session: id, direction: listener.backend == nil ? "outbound" : "inbound",
                      listener: listener.name, downstream: downstreamRecord(), upstream: upstreamRecord(),
                      bytes: .init(up: max(bytesUp, 0), down: max(bytesDown, 0)),
                      durationMs: Int(host.clock.now - startMilliseconds),
                      phase: phase, close: close, error: error, hint: hint)
    }

    private func downstreamRecord() -> SessionRecord.Downstream {
        let offered = offered.map { SessionRecord.Offered(maxVersion: $0.maxVersion, sni: $0.serverName,
                                                          ciphers: $0.ciphers.map(\.description)) }
        return .init(address: downstreamAddress, protocol: downstreamIsTLS ? downstreamTLS?.protocolVersion : "plain",
                     cipher: downstreamTLS?.cipher, sni: downstreamTLS?.serverName ?? self.offered?.serverName,
                     clientCert: downstreamTLS?.peerSubject, offered: offered,
                     connect: connectTarget, requestHost: requestHost, httpStatus: httpStatus)
    }

    private func upstreamRecord() -> SessionRecord.Upstream {
        var isBackendPlain = false
        if case .backend(let backend) = destination, backend.tls == nil { isBackendPlain = true }
        let tls = upstreamTLS
        // A resumed session sends no certificate: it inherits the identity of the handshake that
        // created it, with the configured certificate.
        let presented = tls?.sentCertificate == true || tls?.resumed == true
        var upstream = SessionRecord.Upstream(
            name: destination?.name ?? listener.backend, address: dialled?.description, serverName: destination?.serverName,
            protocol: isBackendPlain && dialled != nil && destinationConnected ? "plain" : tls?.protocolVersion,
            cipher: tls?.cipher, resumed: tls?.resumed ?? false, peer: tls?.peerSubject, peerIssuer: tls?.peerIssuer,
            verify: tls?.verification, clientCert: presented ? destination?.clientCertificateSubject : nil,
            closeNotify: upstreamSentCloseNotify, handshakeMs: handshakeMilliseconds)
        upstream.via = destination?.via?.description
        upstream.clientAddressHeader = forwarder?.setsClientAddress?.rawValue
        upstream.spareAgeMs = spareAgeMilliseconds.map(Int.init)
        return upstream
    }
}

extension Duration {
    /// Whole milliseconds, at least 1.
    var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return max(1, seconds * 1000 + attoseconds / 1_000_000_000_000_000)
    }

    /// As written in config, e.g. "10s" or "250ms".
    var text: String {
        let ms = milliseconds
        return ms % 1000 == 0 ? "\(ms / 1000)s" : "\(ms)ms"
    }
}
