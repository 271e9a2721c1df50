import BridgeHTTP
import BridgeIO
import BridgeModel

/// The front of an http-proxy session: the request head is read within `header_timeout` by
/// `ProxyRequestStage`, and the session acts on what the stage found (an answer of the bridge's own,
/// a CONNECT tunnel whose TLS is then terminated as on a `tls` listener, or absolute-form
/// forwarding); and the answers the bridge gives itself.
extension Session {
    func beginProxyRequest() {
        enter(.proxyRequest(ProxyRequestStage(listener: listener, credentials: runtime.proxyCredentials[listener.name],
                                              tunnelContext: runtime.downstreams[listener.name], inputLimit: inputLimit)))
        timer.schedule(afterMilliseconds: limits.headerTimeout.milliseconds)
        downstream.enableReading()
        // A connection handed over from the previous session already holds the next head.
        if downstream.inputLength > 0 { readProxyRequest() }
    }

    func readProxyRequest() {
        guard case .proxyRequest(let stage) = state else { return }
        let (outcome, target, host) = stage.read(downstream)
        if case .incomplete = outcome { return }
        connectTarget = target
        requestHost = host
        switch outcome {
        case .incomplete:
            break
        case .answer(let status, let reason, let close):
            answer(status, reason, close: close)
        case .tunnel(let tls, let upstream):
            httpStatus = 200
            frontRoute = upstream
            downstream = tls
            downstreamIsTLS = true
            tls.delegate = self
            beginDownstreamHandshake()
        case .tunnelFailed(let error):
            httpStatus = 200
            finish(.downstreamError, error: error)
        case .forward(let forwarder, let upstream):
            self.forwarder = forwarder
            frontRoute = upstream
            downstream.disableReading()
            route(serverName: nil)
        }
    }

    /// The bridge answers the client itself, then closes once the answer is written.
    func answer(_ status: Int, _ reason: String, close: SessionRecord.Close, error: String? = nil) {
        httpStatus = status
        downstream.write(HTTPResponse.error(status: status, reason: reason))
        beginDrain(close: close, error: error ?? "answered \(status): \(reason)")
    }
}
