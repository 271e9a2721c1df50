import BridgeHTTP
import BridgeIO
import BridgeModel

/// The front of an http-proxy session: reading the client's request head within `header_timeout`,
/// carrying out `ProxyFront`'s decision (an answer of the bridge's own, a `CONNECT` tunnel whose TLS
/// is then terminated as on a `tls` listener, or absolute-form forwarding), and the answers the
/// bridge gives itself.
extension Session {
    func beginProxyRequest() {
        enter(.proxyRequest)
        timer.schedule(afterMilliseconds: limits.headerTimeout.milliseconds)
        downstream.enableReading()
        // A connection handed over from the previous session already holds the next head.
        if downstream.inputLength > 0 { readProxyRequest() }
    }

    func readProxyRequest() {
        switch downstream.withInputPrefix(maxBytes: 16 * 1024, { ProxyRequestParser.parse($0) }) {
        case .incomplete:
            return
        case .invalid(let error):
            answer(error.status, error.reason, close: .downstreamError)
        case .complete(let head):
            handle(head)
        }
    }

    /// Carries out the front's decision for the client's request head (see `ProxyFront`).
    private func handle(_ head: ProxyRequestHead) {
        let (decision, target, host) = ProxyFront.decide(head, listener: listener, authorized: authorized(head))
        connectTarget = target
        requestHost = host
        switch decision {
        case .answer(let status, let reason, let close):
            answer(status, reason, close: close)
        case .tunnel(let host, let upstream):
            openTunnel(head, host: host, upstream: upstream)
        case .forward(let host, let port, let upstream):
            // The head stays buffered: the forwarder rewrites and sends it once the upstream is open.
            forwarder = HTTPForwarder(host: host, port: port) { [unowned self] head in self.authorized(head) }
            downstream.disableReading()
            connectRoute = upstream
            route(serverName: nil)
        }
    }

    /// `200 Connection established`, then the client's TLS, terminated with the target's certificate.
    private func openTunnel(_ head: ProxyRequestHead, host: String, upstream: String) {
        guard let context = runtime.downstreams[listener.name] else { return }
        downstream.discardInput(head.headLength)
        downstream.write(HTTPResponse.connectionEstablished)
        httpStatus = 200
        guard let tls = downstream.startTLSServer(context: context, host: host) else {
            finish(.downstreamError, error: "TLS could not be started inside the CONNECT tunnel to \(host)")
            return
        }
        downstream = tls
        tls.delegate = self
        tls.setInputLimit(inputLimit)
        downstreamIsTLS = true
        connectRoute = upstream
        enter(.downstreamHandshake)
        timer.schedule(afterMilliseconds: limits.handshakeTimeout.milliseconds)
        tls.enableReading()
        tls.enableWriting()
    }

    /// Checks `Proxy-Authorization` when the listener has `proxy_auth`; compares in constant time.
    func authorized(_ head: ProxyRequestHead) -> Bool {
        guard let credentials = runtime.proxyCredentials[listener.name] else { return true }
        guard let offered = basicCredentials(head.header("Proxy-Authorization")) else { return false }
        return credentials.matches(user: offered.user, password: offered.password)
    }

    /// The bridge answers the client itself, then closes once the answer is written.
    func answer(_ status: Int, _ reason: String, close: SessionRecord.Close, error: String? = nil) {
        httpStatus = status
        downstream.write(HTTPResponse.error(status: status, reason: reason))
        beginDrain(close: close, error: error ?? "answered \(status): \(reason)")
    }
}
