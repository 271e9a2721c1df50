import BridgeHTTP
import BridgeIO
import BridgeModel

/// The http-proxy side of a session: reading the proxy request head, `CONNECT` (then TLS as on a
/// `tls` listener), absolute-form `http://` requests (framed by `HTTPForwarder`), the answers the
/// bridge gives itself (403, 407, 502, ...), and handing the client's connection to a new session
/// when its next request is for another gateway host.
extension Session {
    /// What waits until the responses owed to the client are delivered.
    enum AfterResponses {
        case handOver
        case refuse(status: Int, reason: String, close: SessionRecord.Close)
    }

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

    private func handle(_ head: ProxyRequestHead) {
        guard authorized(head) else {
            answer(407, "proxy authentication required: send Basic credentials listed in proxy_auth", close: .refused)
            return
        }
        switch head.target {
        case .authority(let host, let port):
            connectTarget = hostPort(host, port)
            guard let upstream = listener.upstreamName(forProxyHost: host, port: port, defaultPorts: [443]) else {
                answer(403, "CONNECT to \(hostPort(host, port)) is not allowed: listener \(listener.name) forwards only to the"
                    + " gateway names in its routes", close: .refused)
                return
            }
            openTunnel(head, host: host, upstream: upstream)
        case .absolute(let scheme, let host, let port, _):
            requestHost = port.map { hostPort(host, $0) } ?? host
            guard scheme == "http" else {
                answer(400, "\(scheme):// URLs go through CONNECT: set this bridge as the HTTPS proxy", close: .refused)
                return
            }
            if head.method == "TRACE" || head.method == "TRACK" {
                answer(405, "\(head.method) is not forwarded to the gateway", close: .refused)
                return
            }
            let effectivePort = port ?? 80
            guard let upstream = listener.upstreamName(forProxyHost: host, port: effectivePort, defaultPorts: [80, 443]) else {
                answer(403, "requests for \(hostPort(host, effectivePort)) are not allowed: listener \(listener.name) forwards"
                    + " only to the gateway names in its routes", close: .refused)
                return
            }
            // The head stays buffered: the forwarder rewrites and sends it once the upstream is open.
            forwarder = HTTPForwarder(host: host, port: effectivePort) { [unowned self] head in self.authorized(head) }
            downstream.disableReading()
            connectRoute = upstream
            route(serverName: nil)
        case .origin, .asterisk:
            answer(400, "this is a proxy: send absolute-form requests (http://host/path) or CONNECT host:443", close: .refused)
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

    /// Moves HTTP traffic through the forwarder and acts on what it finds.
    func pumpHTTP(from stream: BufferedStream) {
        guard let forwarder, let upstream else { return }
        lastActivity = EventLoop.monotonicMilliseconds()
        if stream === downstream {
            guard afterResponses == nil else { return }
            let outcome = forwarder.pumpRequests(from: downstream, to: upstream)
            count(forwarder)
            switch outcome {
            case .progressed, .invalidResponse, .finished:
                break
            case .nextHost:
                waitForResponses(then: .handOver)
            case .rejected(let error):
                waitForResponses(then: .refuse(status: error.status, reason: error.reason, close: .downstreamError))
            case .bodyRejected(let error):
                requestBodyFailed(error, forwarder: forwarder)
                return
            case .unauthorized:
                waitForResponses(then: .refuse(status: 407, reason: "proxy authentication required", close: .refused))
            }
            // The client's last request is sent: what it sends after it is never read.
            if forwarder.readsNoMoreRequests { downstream.disableReading() }
            pauseIfFull(source: downstream, destination: upstream)
        } else {
            let waitedForAnswers = forwarder.waitsForAnswers
            let outcome = forwarder.pumpResponses(from: upstream, to: downstream)
            count(forwarder)
            if case .invalidResponse(let reason) = outcome {
                failUpstream(.upstreamError, error: "the gateway's HTTP response could not be framed: \(reason)",
                             summary: "\(destination?.name ?? "the gateway") sent a response that cannot be passed on")
                return
            }
            if outcome == .finished {
                // The client asked to close after this response (or reads its body until the
                // close): deliver it, then end.
                beginDrain(close: .downstreamEOF, error: nil)
                return
            }
            pauseIfFull(source: upstream, destination: downstream)
            continueAfterResponses()
            // Requests held back while the most allowed were in flight may go now.
            if phase == .open, waitedForAnswers, !forwarder.waitsForAnswers, downstream.inputLength > 0 {
                pumpHTTP(from: downstream)
            }
        }
    }

    /// May the merchant's side be read now? Not once it ended, not while the next request waits
    /// for earlier answers or a refusal, and not after its last request.
    var mayReadDownstream: Bool {
        !downstreamEnded && afterResponses == nil && !(forwarder?.readsNoMoreRequests ?? false)
    }

    /// A request body went bad after its head was sent: the gateway waits for the rest, which
    /// never comes. The answers owed before it are still delivered; then the client gets the 400
    /// and the gateway's connection is closed without close_notify (it sees a truncated request,
    /// never a complete one). If the gateway's answer to the broken request has begun to reach the
    /// client, a 400 cannot follow it: the connection is closed after what has arrived.
    private func requestBodyFailed(_ error: HTTPParseError, forwarder: HTTPForwarder) {
        guard forwarder.canAnswerFailedRequest else {
            beginDrain(close: .downstreamError, error: "\(error.reason); the gateway's answer to that request had"
                + " begun, so the connection was closed instead of answered \(error.status)")
            return
        }
        forwarder.abandonLastRequest()
        waitForResponses(then: .refuse(status: error.status, reason: error.reason, close: .downstreamError))
    }

    private func count(_ forwarder: HTTPForwarder) {
        let moved = forwarder.takeCounts()
        bytesUp += moved.up
        bytesDown += moved.down
    }

    private func waitForResponses(then next: AfterResponses) {
        afterResponses = next
        downstream.disableReading()
        continueAfterResponses()
    }

    /// Once nothing more is owed to the client: hand over, refuse, or (client gone) close.
    func continueAfterResponses() {
        guard phase == .open, let forwarder, !forwarder.responsesPending else { return }
        switch afterResponses {
        case .handOver:
            finish(.nextHost, error: nil, handingOver: true)
            host.continueProxyConnection(downstream, listener: listener, peer: downstreamPeer, local: downstreamLocal)
        case .refuse(let status, let reason, let close):
            answer(status, reason, close: close)
        case nil:
            if downstreamEnded { beginDrain(close: .downstreamEOF, error: nil) }
        }
    }

    /// The bridge answers the client itself, then closes once the answer is written.
    func answer(_ status: Int, _ reason: String, close: SessionRecord.Close, error: String? = nil) {
        httpStatus = status
        downstream.write(HTTPResponse.error(status: status, reason: reason))
        beginDrain(close: close, error: error ?? "answered \(status): \(reason)")
    }

    /// An upstream failure before the gateway answered: an absolute-form client gets 502 or 504
    /// saying why (`summary` in words, then the record's error); any other session simply ends.
    func failUpstream(_ close: SessionRecord.Close, error: String, summary: String) {
        guard forwarder != nil, bytesDown == 0 else {
            finish(close, error: error)
            return
        }
        let status = close == .connectTimeout || close == .handshakeTimeout ? 504 : 502
        answer(status, "\(summary): \(error)", close: close, error: error)
    }

    private func hostPort(_ host: String, _ port: UInt16) -> String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}
