import BridgeIO
import BridgeModel
#if canImport(Glibc)
import Glibc
#endif

/// The one way the bridge reaches a destination. Sessions, `probe` and `/healthz?deep=1` all dial
/// through it, so a probe proves the route that real sessions take.
///
/// Resolves the name through the loop's resolver (`[dns]`), drops the addresses that are this
/// bridge's own listeners (and, for a legacy backend, public ones), connects to each address in turn
/// within `connect_timeout`, writes an optional preamble (a PROXY protocol header) on the fresh
/// socket, then runs the TLS handshake with the destination's policy within `handshake_timeout`
/// and checks a backend's pin. Until it hands the ready stream over, it owns every resource of the
/// dial; `cancel()` releases them all, and nothing is reported after it.
///
/// With an outbound proxy (`via`), the name resolved and the addresses connected to are the
/// proxy's; on the connection it asks for a `CONNECT` tunnel to the destination (answered 2xx
/// within `connect_timeout`), and the TLS handshake runs inside the tunnel, unchanged.
final class Dialer: BufferedStreamDelegate {
    /// Where a dial is; a session's record names the step a failure happened in.
    enum Step: String {
        case resolve, connect, tunnel, handshake

        /// The record's phase for this step.
        var recordPhase: SessionRecord.Phase {
            switch self {
            case .resolve: .resolve
            case .connect: .connect
            case .tunnel: .tunnel
            case .handshake: .handshake
            }
        }
    }

    /// What kind of failure it was, as data: the record's text is for people, this is for code.
    enum Cause: Equatable {
        case resolve
        case connect
        case timeout
        /// The TLS handshake failed: OpenSSL's reasons, or nil when the peer just closed.
        case handshake(StreamFailure?)
        /// A backend's certificate did not match its pin.
        case pinMismatch
        /// OpenSSL could not even set the connection up.
        case setup
        /// The outbound proxy did not open the tunnel (refused, wanted credentials, answered
        /// garbage, closed).
        case tunnel
    }

    /// Why a dial failed, worded for the record.
    struct Failure {
        var cause: Cause
        var step: Step
        /// The record's `close`: `upstream_error`, `connect_timeout` or `handshake_timeout`.
        var close: SessionRecord.Close
        var error: String
        /// The address connected to (or last tried), if any.
        var address: SocketAddress?
        /// What the handshake got to, when it started.
        var tls: TLSDetails?
        /// Did a TCP connection exist (the failure came after connect)?
        var connected: Bool
    }

    /// A connection ready for data: handshaken (or plain, for a plain backend), verified.
    struct Ready {
        var stream: BufferedStream
        var address: SocketAddress
        var tls: TLSDetails?
        var handshakeMilliseconds: Int?
        /// Opened before the session asked: a spare of `preconnect`, this long ago.
        var preconnectedMillisecondsAgo: Int64?
    }

    enum Event {
        /// The dial moved on to this step.
        case stepped(Step)
        case ready(Ready)
        case failed(Failure)
    }

    private let destination: Destination
    /// The merchant's outbound proxy the destination is reached through, if any.
    private let via: OutboundProxy?
    private let loop: EventLoop
    private let connectTimeout: Duration
    private let handshakeTimeout: Duration
    private let isOwnAddress: (SocketAddress) -> Bool
    private let preamble: [UInt8]?
    private var report: ((Event) -> Void)?
    private var timer: Timer?
    private var step = Step.resolve
    private var resolution: Resolution?
    private var connection: Connection?
    private var stream: BufferedStream?
    /// The plain connection to the outbound proxy while it is asked for the tunnel.
    private var proxyStream: BufferedStream?
    private var address: SocketAddress?
    private var handshakeStarted: Int64 = 0

    /// Prepares a dial; `start()` begins it. `report` runs on the loop's thread, possibly within
    /// `start()` (a numeric address resolves at once), and never after `cancel()`.
    init(to destination: Destination, via: OutboundProxy? = nil, loop: EventLoop, limits: LimitsConfig,
         isOwnAddress: @escaping (SocketAddress) -> Bool, preamble: [UInt8]? = nil, report: @escaping (Event) -> Void) {
        self.destination = destination
        self.via = via
        self.loop = loop
        self.connectTimeout = limits.connectTimeout
        self.handshakeTimeout = limits.handshakeTimeout
        self.isOwnAddress = isOwnAddress
        self.preamble = preamble
        self.report = report
    }

    deinit {
        release()
    }

    func start() {
        let timer = Timer(loop: loop) { [weak self] in self?.timedOut() }
        self.timer = timer
        timer.schedule(afterMilliseconds: connectTimeout.milliseconds)
        let target = via?.address ?? destination.address
        resolution = Resolution(loop: loop, host: target.host, port: target.port) { [weak self] result in
            self?.resolved(result)
        }
    }

    /// Abandons the dial and frees what it holds (a half-handshaken connection gets no close_notify).
    func cancel() {
        report = nil
        release()
    }

    private func release() {
        timer?.cancel()
        resolution?.cancel()
        resolution = nil
        connection?.cancel()
        connection = nil
        stream?.free(sendCloseNotify: false)
        stream = nil
        proxyStream?.free(sendCloseNotify: false)
        proxyStream = nil
    }

    /// What the record and the operator call the host being dialled.
    private var dialledHost: String {
        via.map { "the outbound proxy \($0.address.host)" } ?? destination.address.host
    }

    // MARK: - Steps

    private func resolved(_ result: Resolution.Result) {
        resolution = nil
        switch result {
        case .failed(let reason):
            fail(.resolve, .resolve, .upstreamError, "could not resolve \(dialledHost): \(reason)")
        case .addresses(let found):
            var addresses = found
            if case .backend(let backend) = destination, backend.config.tls == .legacy, !backend.config.unsafePublicBackend {
                // Legacy TLS stays on the merchant's side, also when a name resolves elsewhere.
                addresses = addresses.filter { isLoopbackOrPrivate($0.ipBytes) }
                if addresses.isEmpty {
                    fail(.resolve, .resolve, .upstreamError, "backend \(backend.config.name) (\(backend.config.address.host)) resolves to"
                        + " \(found.count) public address(es) only; legacy TLS is allowed only at loopback or private addresses"
                        + " (set unsafe_public_backend = true if this network is yours)")
                    return
                }
            }
            // A hosts-file entry that sends the gateway's name to this bridge (the legacy-TLS set-up
            // on the merchant's host) would make the bridge dial its own listener.
            let own = addresses.filter(isOwnAddress)
            if !own.isEmpty {
                addresses.removeAll(where: isOwnAddress)
                if addresses.isEmpty, let via {
                    fail(.resolve, .resolve, .upstreamError, "the outbound proxy \(via.address) is this bridge's own listener"
                        + " (\(own[0])); via must name the merchant's proxy, never this bridge")
                    return
                } else if addresses.isEmpty {
                    fail(.resolve, .resolve, .upstreamError, "\(destination.address.host) resolves to this bridge's own"
                        + " listener (\(own[0])): a hosts-file entry for the gateway's name? Set [dns] nameservers so the"
                        + " bridge resolves the real gateway, or give the upstream address as an IP")
                    return
                }
            }
            moveTo(.connect)
            connection = Connection(loop: loop, addresses: addresses) { [weak self] result in
                self?.connected(result)
            }
        }
    }

    private func connected(_ result: Connection.Result) {
        connection = nil
        switch result {
        case .failed(let address, let reason):
            self.address = address
            fail(.connect, .connect, .upstreamError, via.map { "could not connect to the outbound proxy \($0.address): \(reason)" } ?? reason)
        case .connected(let fd, let address):
            self.address = address
            if let via, case .upstream = destination {
                askForTunnel(fd, via: via)
                return
            }
            if let preamble {
                // First on the wire, before any TLS: the fresh socket's send buffer is empty, so a
                // PROXY protocol header's few bytes always fit.
                _ = preamble.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            }
            let opened: BufferedStream?
            switch destination {
            case .upstream(let context):
                opened = BufferedStream(tlsClientSocket: fd, context: context, loop: loop)
            case .backend(let backend):
                if let context = backend.tls {
                    opened = BufferedStream(tlsClientSocket: fd, context: context, loop: loop)
                } else {
                    opened = BufferedStream(socket: fd, loop: loop)
                }
            }
            guard let opened else {
                fail(.setup, .connect, .upstreamError, "OpenSSL could not set up a TLS connection for \(destination.name)", connected: true)
                return
            }
            opened.delegate = self
            stream = opened
            opened.enableReading()
            opened.enableWriting()
            guard opened.isTLS else {
                handOver(tls: nil, handshakeMilliseconds: nil)
                return
            }
            moveTo(.handshake)
            handshakeStarted = EventLoop.monotonicMilliseconds()
            timer?.schedule(afterMilliseconds: handshakeTimeout.milliseconds)
        }
    }

    // MARK: - Through an outbound proxy

    /// Sends `CONNECT destination` on the fresh connection to the proxy; the answer is read in
    /// `streamHasInput`.
    private func askForTunnel(_ fd: Int32, via: OutboundProxy) {
        let plain = BufferedStream(socket: fd, loop: loop)
        plain.delegate = self
        plain.setInputLimit(OutboundProxy.maximumAnswerHeadBytes)
        proxyStream = plain
        moveTo(.tunnel)
        timer?.schedule(afterMilliseconds: connectTimeout.milliseconds)
        plain.write(via.connectRequest(to: destination.address))
        plain.enableReading()
        plain.enableWriting()
    }

    private func readTunnelAnswer(_ plain: BufferedStream) {
        guard let via, case .upstream(let context) = destination else { return }
        let proxy = "the outbound proxy \(via.address)"
        switch plain.withInputPrefix(maxBytes: OutboundProxy.maximumAnswerHeadBytes, { via.answer($0, target: destination.address) }) {
        case .incomplete:
            return
        case .interim(let headLength):
            plain.discardInput(headLength)
            if plain.inputLength > 0 { readTunnelAnswer(plain) }
        case .refused(let reason):
            fail(.tunnel, .tunnel, .upstreamError, "\(proxy) \(reason)", connected: true)
        case .tunnel(let headLength):
            plain.discardInput(headLength)
            // The client speaks first in TLS: bytes from the far end now can only be the proxy's.
            guard plain.inputLength == 0 else {
                fail(.tunnel, .tunnel, .upstreamError, "\(proxy) sent \(plain.inputLength) bytes after opening the tunnel to"
                    + " \(destination.address), before the TLS handshake began", connected: true)
                return
            }
            proxyStream = nil
            plain.delegate = nil
            guard let tls = plain.startTLSClient(context: context) else {
                proxyStream = plain
                fail(.setup, .tunnel, .upstreamError, "OpenSSL could not set up a TLS connection for \(destination.name)", connected: true)
                return
            }
            tls.delegate = self
            stream = tls
            tls.enableReading()
            tls.enableWriting()
            moveTo(.handshake)
            handshakeStarted = EventLoop.monotonicMilliseconds()
            timer?.schedule(afterMilliseconds: handshakeTimeout.milliseconds)
        }
    }

    /// The proxy's connection ended or broke before the tunnel was open.
    private func tunnelFailed(_ event: StreamEvent) {
        guard let via else { return }
        let why: String
        switch event {
        case .failed(let failure): why = "the connection failed before it answered CONNECT \(destination.address): \(failure.text)"
        default: why = "closed the connection before answering CONNECT \(destination.address)"
        }
        fail(.tunnel, .tunnel, .upstreamError, "the outbound proxy \(via.address) \(why)", connected: true)
    }

    private func handshakeCompleted() {
        guard let stream else { return }
        var details = stream.tlsDetails()
        let milliseconds = Int(EventLoop.monotonicMilliseconds() - handshakeStarted)
        if case .backend(let backend) = destination, let context = backend.tls {
            guard context.pinMatches(details) else {
                fail(.pinMismatch, .handshake, .upstreamError, "backend \(backend.config.name) presented a certificate with SHA-256"
                    + " \(details?.peerFingerprint ?? "-"), which does not match pin_sha256; nothing was delivered",
                     tls: details, connected: true)
                return
            }
            // Verified by the pin, not by a chain: say so rather than repeat OpenSSL's chain verdict.
            if backend.config.pinSHA256 != nil { details?.verification = "pinned" }
        }
        handOver(tls: details, handshakeMilliseconds: milliseconds)
    }

    private func handshakeFailed(_ failure: StreamFailure?) {
        let details = stream?.tlsDetails()
        let reason = failure?.text ?? "the upstream closed the connection during the TLS handshake"
        let hop = via.map { "through the outbound proxy \($0.address)" } ?? "at \(address.map(String.init(describing:)) ?? "?")"
        var text = "TLS handshake with \(destination.name) \(hop) failed: \(reason)"
        if let verification = details?.verification, verification != "ok" {
            text += "; certificate verify failed: \(verification)"
        }
        fail(.handshake(failure), .handshake, .upstreamError, text, tls: details, connected: true)
    }

    private func timedOut() {
        switch step {
        case .resolve, .connect:
            let target = address.map(String.init(describing:)) ?? (via?.address ?? destination.address).description
            let what = via == nil ? "" : "the outbound proxy "
            fail(.timeout, step, .connectTimeout, "no connection to \(what)\(target) within connect_timeout (\(connectTimeout.text)), phase \(step.rawValue)")
        case .tunnel:
            fail(.timeout, .tunnel, .connectTimeout, "the outbound proxy \(via.map { "\($0.address)" } ?? "?") did not answer CONNECT"
                + " \(destination.address) within connect_timeout (\(connectTimeout.text))", connected: true)
        case .handshake:
            fail(.timeout, .handshake, .handshakeTimeout, "the upstream did not complete the TLS handshake within handshake_timeout"
                + " (\(handshakeTimeout.text))", tls: stream?.tlsDetails(), connected: true)
        }
    }

    // MARK: - Reporting

    private func moveTo(_ next: Step) {
        step = next
        report?(.stepped(next))
    }

    private func handOver(tls: TLSDetails?, handshakeMilliseconds: Int?) {
        guard let stream, let address else { return }
        timer?.cancel()
        self.stream = nil
        stream.delegate = nil
        let report = self.report
        self.report = nil
        report?(.ready(Ready(stream: stream, address: address, tls: tls, handshakeMilliseconds: handshakeMilliseconds)))
    }

    private func fail(_ cause: Cause, _ step: Step, _ close: SessionRecord.Close, _ error: String, tls: TLSDetails? = nil,
                      connected: Bool = false) {
        let report = self.report
        self.report = nil
        let failure = Failure(cause: cause, step: step, close: close, error: error, address: address, tls: tls, connected: connected)
        release()
        report?(.failed(failure))
    }

    // MARK: - The stream during the handshake

    func streamHasInput(_ stream: BufferedStream) {
        if stream === proxyStream { readTunnelAnswer(stream) }
    }

    func streamDrained(_ stream: BufferedStream) {}

    func stream(_ stream: BufferedStream, reported event: StreamEvent) {
        if stream === proxyStream {
            if event != .connected { tunnelFailed(event) }
            return
        }
        switch event {
        case .connected:
            handshakeCompleted()
        case .endOfStream, .endOfStreamWithoutCloseNotify:
            handshakeFailed(nil)
        case .failed(let failure):
            handshakeFailed(failure)
        }
    }
}

extension Dialer.Failure {
    /// Every value `handshakeLabel` takes: `/metrics` shows each at 0 for every upstream from the start.
    static let handshakeLabels = ["certificate_verify", "closed", "handshake_failure", "other", "protocol_version", "timeout"]

    /// The label `/metrics` counts a failed handshake under (`tls_bridge_upstream_handshake_failures_total`);
    /// nil for a failure before the handshake.
    var handshakeLabel: String? {
        guard step == .handshake else { return nil }
        switch cause {
        case .timeout:
            return "timeout"
        case .handshake(let failure):
            if failure?.has(.protocolVersion) == true { return "protocol_version" }
            if failure?.has(.certificateVerifyFailed) == true || (tls?.verification).map({ $0 != "ok" }) == true {
                return "certificate_verify"
            }
            if failure?.has(.handshakeFailure) == true { return "handshake_failure" }
            // A reset is the peer going away as well; TLS streams report it as one, not as an EOF.
            if failure == nil || failure?.has(.connectionReset) == true { return "closed" }
            return "other"
        case .resolve, .connect, .pinMismatch, .setup, .tunnel:
            return "other"
        }
    }

    /// What an HTTP client is told, in words, before OpenSSL's text: a merchant about the gateway
    /// (`toGateway`), or the gateway about the merchant's server.
    func summary(destination: String, toGateway: Bool = true) -> String {
        switch cause {
        case .timeout where step == .tunnel:
            return "the outbound proxy did not open a tunnel to \(destination) in time"
        case .timeout:
            return "\(destination) did not answer in time"
        case .tunnel:
            return "the outbound proxy did not open a tunnel to \(destination)"
        case .handshake(let failure) where failure?.has(.protocolVersion) == true:
            return "\(destination) does not speak TLS 1.2 or newer (it offered only an older TLS version)"
        case .handshake(let failure) where failure?.has(.certificateVerifyFailed) == true:
            return "\(destination)'s certificate could not be verified"
        case .handshake(let failure) where failure?.has(.handshakeFailure) == true:
            return "\(destination) offers no cipher allowed toward the gateway (TLS handshake failure)"
        default:
            return "\(destination) could not be reached\(toGateway ? " over TLS 1.2+" : "")"
        }
    }
}

extension Config {
    /// Is `address` one of this configuration's listeners (a wildcard listener matches every
    /// address on its port)? Such an address is never dialled: it would be the bridge itself.
    func isOwnListener(_ address: SocketAddress) -> Bool {
        listeners.contains { listener in
            guard listener.listen.port == address.port else { return false }
            guard let bytes = ipAddressBytes(listener.listen.host == "localhost" ? "127.0.0.1" : listener.listen.host) else {
                return false
            }
            return bytes == address.ipBytes || bytes.allSatisfy { $0 == 0 }
        }
    }
}
