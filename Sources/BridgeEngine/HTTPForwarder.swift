import BridgeHTTP
import BridgeIO

/// Carries absolute-form requests (`POST http://host/path HTTP/1.1`) from an http-proxy client to
/// one upstream, keeping HTTP/1.1 framing on both sides so that keep-alive works and nothing is
/// ever mixed between requests.
///
/// Request heads are rewritten to origin form (`POST /path`, `Host` set, hop-by-hop headers gone);
/// bodies and responses pass through unchanged, buffer to buffer. Responses are framed only to know
/// where each one ends: that is what allows a request for another host to wait until the current
/// answers are delivered, and then move on to a new upstream session.
final class HTTPForwarder {
    /// What pumping found that the session must act on.
    enum Outcome: Equatable {
        /// Keep going (possibly waiting for more bytes).
        case progressed
        /// A request for another destination waits, unconsumed, at the start of the client's input.
        case nextHost
        /// The client's next request is malformed: answer with this status.
        case rejected(HTTPParseError)
        /// The client's next request lacks valid proxy credentials.
        case unauthorized
        /// The upstream's response cannot be framed.
        case invalidResponse(String)
        /// The client asked to close after its last response, which is now delivered.
        case finished
    }

    private enum Body {
        case none
        case length(Int)
        case chunked(ChunkedBodyScanner)
        case untilClose

        var isPresent: Bool {
            if case .none = self { return false }
            return true
        }
    }

    /// The destination this connection is bound to: URL host (lowercased) and port.
    private let host: String
    private let port: UInt16
    /// The `Host` header sent upstream.
    private let hostHeader: String
    private let authorize: (ProxyRequestHead) -> Bool
    private var requestBody = Body.none
    private var responseBody = Body.none
    private var inResponseBody = false
    /// Methods of the requests sent whose responses have not been read yet (for HEAD framing).
    private var pendingMethods: [String] = []
    /// The client sent `Connection: close` (or spoke HTTP/1.0 without keep-alive): no request
    /// after that one is read, and the connection ends once its response is delivered.
    private(set) var closeAfterResponses = false

    /// Bytes written toward each side since the last `takeCounts()`.
    private var upstreamBytes = 0
    private var downstreamBytes = 0

    init(host: String, port: UInt16, authorize: @escaping (ProxyRequestHead) -> Bool) {
        self.host = host
        self.port = port
        self.hostHeader = (port == 80 || port == 443) ? host : "\(host):\(port)"
        self.authorize = authorize
    }

    /// Are responses still owed to the client?
    var responsesPending: Bool { !pendingMethods.isEmpty || inResponseBody }

    /// The byte counts moved since the last call (rewritten heads count as sent).
    func takeCounts() -> (up: Int, down: Int) {
        defer { upstreamBytes = 0; downstreamBytes = 0 }
        return (upstreamBytes, downstreamBytes)
    }

    /// Moves as many complete requests (and request body bytes) as are buffered.
    func pumpRequests(from client: BufferedStream, to upstream: BufferedStream) -> Outcome {
        while client.inputLength > 0 {
            switch requestBody {
            case .none where closeAfterResponses:
                return .progressed
            case .none:
                let parsed = client.withInputPrefix(maxBytes: 16 * 1024) { ProxyRequestParser.parse($0) }
                switch parsed {
                case .incomplete:
                    return .progressed
                case .invalid(let error):
                    return .rejected(error)
                case .complete(let head):
                    guard case .absolute(let scheme, let targetHost, let targetPort, _) = head.target, scheme == "http",
                          targetHost == host, (targetPort ?? 80) == port else {
                        return .nextHost
                    }
                    guard authorize(head) else { return .unauthorized }
                    if head.method == "TRACE" || head.method == "TRACK" {
                        return .rejected(HTTPParseError(status: 405, reason: "\(head.method) is not forwarded to the gateway"))
                    }
                    let rewritten = head.rewrittenForOrigin(host: hostHeader)
                    client.discardInput(head.headLength)
                    upstream.write(rewritten)
                    upstreamBytes += rewritten.count
                    pendingMethods.append(head.method)
                    requestBody = Self.body(for: head.bodyFraming)
                    closeAfterResponses = head.wantsClose
                }
            case .length(let remaining):
                let moved = client.moveInput(min(remaining, client.inputLength), to: upstream)
                upstreamBytes += moved
                requestBody = remaining - moved == 0 ? .none : .length(remaining - moved)
            case .chunked(var scanner):
                let step = client.withInputPrefix(maxBytes: 4096) { scanner.next(prefix: $0, available: client.inputLength) }
                switch step {
                case .forward(let count):
                    upstreamBytes += client.moveInput(count, to: upstream)
                    requestBody = .chunked(scanner)
                case .finished(let count):
                    upstreamBytes += client.moveInput(count, to: upstream)
                    requestBody = .none
                case .needMore:
                    requestBody = .chunked(scanner)
                    return .progressed
                case .invalid(let reason):
                    return .rejected(HTTPParseError(status: 400, reason: "malformed chunked request body: \(reason)"))
                }
            case .untilClose:
                upstreamBytes += client.moveInput(to: upstream)
            }
        }
        return .progressed
    }

    /// Moves as many response bytes as are buffered, tracking where each response ends.
    func pumpResponses(from upstream: BufferedStream, to client: BufferedStream) -> Outcome {
        while upstream.inputLength > 0 {
            switch responseBody {
            case .none where !inResponseBody:
                let parsed = upstream.withInputPrefix(maxBytes: 64 * 1024) { ResponseParser.parse($0) }
                switch parsed {
                case .incomplete:
                    return .progressed
                case .invalid(let error):
                    return .invalidResponse(error.reason)
                case .complete(let head):
                    guard let method = pendingMethods.first else {
                        return .invalidResponse("the upstream sent a response nobody asked for")
                    }
                    downstreamBytes += upstream.moveInput(head.headLength, to: client)
                    if head.isInterim { continue }
                    pendingMethods.removeFirst()
                    responseBody = Self.body(for: head.bodyFraming(requestMethod: method))
                    inResponseBody = responseBody.isPresent
                }
            case .none:
                inResponseBody = false
            case .length(let remaining):
                let moved = upstream.moveInput(min(remaining, upstream.inputLength), to: client)
                downstreamBytes += moved
                responseBody = remaining - moved == 0 ? .none : .length(remaining - moved)
                inResponseBody = remaining - moved > 0
            case .chunked(var scanner):
                let step = upstream.withInputPrefix(maxBytes: 4096) { scanner.next(prefix: $0, available: upstream.inputLength) }
                switch step {
                case .forward(let count):
                    downstreamBytes += upstream.moveInput(count, to: client)
                    responseBody = .chunked(scanner)
                case .finished(let count):
                    downstreamBytes += upstream.moveInput(count, to: client)
                    responseBody = .none
                    inResponseBody = false
                case .needMore:
                    responseBody = .chunked(scanner)
                    return .progressed
                case .invalid(let reason):
                    return .invalidResponse("malformed chunked response body: \(reason)")
                }
            case .untilClose:
                downstreamBytes += upstream.moveInput(to: client)
            }
        }
        return closeAfterResponses && !responsesPending ? .finished : .progressed
    }

    private static func body(for framing: BodyFraming) -> Body {
        switch framing {
        case .none: .none
        case .length(let count): count == 0 ? .none : .length(count)
        case .chunked: .chunked(ChunkedBodyScanner())
        case .untilClose: .untilClose
        }
    }
}
