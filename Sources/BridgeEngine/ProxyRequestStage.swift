import BridgeHTTP
import BridgeIO
import BridgeModel

/// The first stage of a session on an http-proxy listener: the client's request head is read
/// whole, `ProxyFront` decides what to do with it, and the stage carries the decision out up to the
/// point where the session knows where the client goes. It sees the client's connection and the
/// listener's settings, never the session: what it found comes back as an `Outcome`, and the
/// session (which owns the streams, the timer and the record) acts on it.
struct ProxyRequestStage {
    let listener: ListenerConfig
    /// `proxy_auth`'s pairs; nil when the listener asks for none.
    let credentials: ProxyCredentials?
    /// The listener's TLS context, for the client's TLS inside a CONNECT tunnel.
    let tunnelContext: DownstreamTLSContext?
    /// The input limit of every stream of the session (see `Session.inputLimit`).
    let inputLimit: Int

    /// The longest request head read (431 past it, from `ProxyRequestParser`).
    static let maximumHeadBytes = 16 * 1024

    /// Where a complete head leads.
    enum Outcome {
        /// The head is not complete yet: wait for more.
        case incomplete
        /// The bridge answers the client itself and closes (400, 403, 405, 407, 414, 431).
        case answer(status: Int, reason: String, close: SessionRecord.Close)
        /// `200 Connection established` is queued and the client's TLS is starting on `stream` (it
        /// replaces the plain connection); the merchant's handshake comes next, then `upstream`.
        case tunnel(stream: BufferedStream, upstream: String)
        /// The tunnel was agreed (200 queued) but TLS could not be started in it.
        case tunnelFailed(error: String)
        /// Absolute-form requests for `upstream`: the head stays buffered, and `forwarder` rewrites
        /// and sends it once the gateway is open.
        case forward(HTTPForwarder, upstream: String)
    }

    /// Reads the head from `downstream` if it is complete. Also returns what the record names as
    /// the client's target (`connect` / `request_host`), which it names even when refused.
    func read(_ downstream: BufferedStream) -> (outcome: Outcome, connectTarget: String?, requestHost: String?) {
        let head: ProxyRequestHead
        switch downstream.withInputPrefix(maxBytes: Self.maximumHeadBytes, { ProxyRequestParser.parse($0) }) {
        case .incomplete:
            return (.incomplete, nil, nil)
        case .invalid(let error):
            return (.answer(status: error.status, reason: error.reason, close: .downstreamError), nil, nil)
        case .complete(let complete):
            head = complete
        }
        let (decision, connectTarget, requestHost) = ProxyFront.decide(head, listener: listener, authorized: admits(head))
        switch decision {
        case .answer(let status, let reason, let close):
            return (.answer(status: status, reason: reason, close: close), connectTarget, requestHost)
        case .tunnel(let host, let upstream):
            return (openTunnel(downstream, head: head, host: host, upstream: upstream), connectTarget, requestHost)
        case .forward(let host, let port, let upstream):
            // Later requests on the connection are checked against the same credentials.
            let forwarder = HTTPForwarder(host: host, port: port) { [credentials] head in
                Self.admits(head, credentials: credentials)
            }
            return (.forward(forwarder, upstream: upstream), connectTarget, requestHost)
        }
    }

    /// Consumes the CONNECT head, queues `200 Connection established` and starts the client's TLS
    /// with `host`'s certificate.
    private func openTunnel(_ downstream: BufferedStream, head: ProxyRequestHead, host: String, upstream: String) -> Outcome {
        guard let tunnelContext else { return .tunnelFailed(error: "listener \(listener.name) has no TLS identity for CONNECT") }
        downstream.discardInput(head.headLength)
        downstream.write(HTTPResponse.connectionEstablished)
        guard let tls = downstream.startTLSServer(context: tunnelContext, host: host) else {
            return .tunnelFailed(error: "TLS could not be started inside the CONNECT tunnel to \(host)")
        }
        tls.setInputLimit(inputLimit)
        return .tunnel(stream: tls, upstream: upstream)
    }

    private func admits(_ head: ProxyRequestHead) -> Bool {
        Self.admits(head, credentials: credentials)
    }

    /// Does the head carry credentials listed in `proxy_auth` (always, when there is no `proxy_auth`)?
    /// Compared in constant time (see `ProxyCredentials`).
    static func admits(_ head: ProxyRequestHead, credentials: ProxyCredentials?) -> Bool {
        guard let credentials else { return true }
        guard let offered = basicCredentials(head.header("Proxy-Authorization")) else { return false }
        return credentials.matches(user: offered.user, password: offered.password)
    }
}
