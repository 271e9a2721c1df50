import BridgeHTTP
import BridgeModel

/// The front of an http-proxy listener: what to do with a client's first request head, decided
/// from the head, the listener's routes and its credentials alone. No I/O happens here; the session
/// carries the decision out (answers, opens the CONNECT tunnel, or dials and forwards).
///
/// Never an open proxy: every destination comes from the listener's routes, CONNECT only on the
/// routed port (443 when the route names none), `http://` only on a routed port (80 or 443 when
/// the route names none).
enum ProxyFront {
    /// What the session does with the head.
    enum Decision: Equatable {
        /// The bridge answers the client itself and closes.
        case answer(status: Int, reason: String, close: SessionRecord.Close)
        /// `200 Connection established`, then the client's TLS for `host`, then `upstream`.
        case tunnel(host: String, upstream: String)
        /// Absolute-form requests for `host:port`, rewritten and forwarded to `upstream`.
        case forward(host: String, port: UInt16, upstream: String)
    }

    /// The decision, and what the record names as the client's target (`connect` for CONNECT,
    /// `request_host` for absolute-form), which it names even when refused.
    static func decide(_ head: ProxyRequestHead, listener: ListenerConfig, authorized: Bool)
        -> (decision: Decision, connectTarget: String?, requestHost: String?) {
        guard authorized else {
            return (.answer(status: 407, reason: "proxy authentication required: send Basic credentials listed in proxy_auth",
                            close: .refused), nil, nil)
        }
        switch head.target {
        case .authority(let host, let port):
            let target = HostPort(host: host, port: port).description
            guard let upstream = listener.upstreamName(forProxyHost: host, port: port, defaultPorts: [443]) else {
                return (.answer(status: 403, reason: "CONNECT to \(target) is not allowed: listener \(listener.name) forwards"
                                    + " only to the gateway names in its routes", close: .refused), target, nil)
            }
            return (.tunnel(host: host, upstream: upstream), target, nil)
        case .absolute(let scheme, let host, let port, _):
            let requestHost = port.map { HostPort(host: host, port: $0).description } ?? host
            guard scheme == "http" else {
                return (.answer(status: 400, reason: "\(scheme):// URLs go through CONNECT: set this bridge as the HTTPS proxy",
                                close: .refused), nil, requestHost)
            }
            if head.method == "TRACE" || head.method == "TRACK" {
                return (.answer(status: 405, reason: "\(head.method) is not forwarded to the gateway", close: .refused),
                        nil, requestHost)
            }
            let effectivePort = port ?? 80
            guard let upstream = listener.upstreamName(forProxyHost: host, port: effectivePort, defaultPorts: [80, 443]) else {
                return (.answer(status: 403, reason: "requests for \(HostPort(host: host, port: effectivePort).description) are not allowed: listener"
                                    + " \(listener.name) forwards only to the gateway names in its routes", close: .refused),
                        nil, requestHost)
            }
            return (.forward(host: host, port: effectivePort, upstream: upstream), nil, requestHost)
        case .origin, .asterisk:
            return (.answer(status: 400, reason: "this is a proxy: send absolute-form requests (http://host/path) or"
                                + " CONNECT host:443", close: .refused), nil, nil)
        }
    }
}
