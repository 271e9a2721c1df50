import BridgeHTTP
import BridgeIO
import BridgeModel

/// Carries HTTP/1.x requests from one client to one destination, keeping the framing on both
/// sides so that keep-alive works and nothing is ever mixed between requests. Two uses:
/// absolute-form requests (`POST http://host/path HTTP/1.1`) from an http-proxy client to an
/// upstream, and notifications from the gateway to the merchant's web server with the gateway's
/// address in a header (`client_address_header`).
///
/// Proxy request heads are rewritten to origin form (`POST /path`, `Host` set, hop-by-hop headers
/// gone); notification heads keep everything but the client-address headers, replaced by the
/// bridge's one. Bodies and responses pass through unchanged, buffer to buffer. Responses are framed only to know
/// where each one ends: that is what allows a request for another host to wait until the current
/// answers are delivered, and then move on to a new upstream session. One exception: an HTTP/1.0
/// client never receives chunked framing (RFC 9112 §6.1), so a chunked response to one is passed
/// on decoded and ends with the connection.
///
/// Whenever the forwarder leaves input where it is (a request waiting for its turn, a client that
/// said it sends nothing more), the stream's input limit (`BufferedStream.setInputLimit`) stops the
/// socket reads: memory stays bounded in every framing state, not only while bytes move.
final class HTTPForwarder {
    /// What pumping found that the session must act on.
    enum Outcome: Equatable {
        /// Keep going (possibly waiting for more bytes).
        case progressed
        /// A request for another destination waits, unconsumed, at the start of the client's input.
        case nextHost
        /// The client's next request head is malformed: answer with this status once the
        /// responses owed before it are delivered.
        case rejected(HTTPParseError)
        /// The body of a request already sent upstream is malformed: that request can never be
        /// completed, so the upstream connection is useless and the client is answered at once.
        case bodyRejected(HTTPParseError)
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
        /// A chunked response to an HTTP/1.0 client: data passed on, framing dropped.
        case dechunked(ChunkedBodyScanner)
        case untilClose

        var isPresent: Bool {
            if case .none = self { return false }
            return true
        }
    }

    /// A request sent upstream whose response has not been read yet.
    private struct PendingRequest {
        var method: String
        var version: HTTPVersion
    }

    /// Requests sent upstream and not yet answered. A client may pipeline; past this many, the
    /// next heads wait in the client's input (and its reading stops at the input limit) until the
    /// gateway answers: without it, a gateway that reads but never answers would let the list grow
    /// for ever.
    static let maxRequestsInFlight = 32

    /// How request heads are checked and rewritten.
    private enum RequestPolicy {
        /// An http-proxy client's absolute-form requests for `host:port` (URL host lowercased), sent in
        /// origin form with `hostHeader`, each checked by `authorize`.
        case proxy(host: String, port: UInt16, hostHeader: String, authorize: (ProxyRequestHead) -> Bool)
        /// Requests to the merchant's web server, with the peer's address set in `header`.
        case originServer(header: ClientAddressHeader, value: String)
    }

    private let policy: RequestPolicy

    /// The header it sets on requests to the merchant's web server, if that is its use.
    var setsClientAddress: ClientAddressHeader? {
        if case .originServer(let header, _) = policy { return header }
        return nil
    }
    private var requestBody = Body.none
    private var responseBody = Body.none
    private var inResponseBody = false
    private var pending: [PendingRequest] = []
    /// The client sent `Connection: close` (or spoke HTTP/1.0 without keep-alive), or the bridge
    /// must close to end a decoded body: no request after that one is read, and the connection
    /// ends once its response is delivered.
    private(set) var closeAfterResponses = false

    /// Bytes written toward each side since the last `takeCounts()`.
    private var upstreamBytes = 0
    private var downstreamBytes = 0

    /// For an http-proxy client's requests to `host:port`.
    init(host: String, port: UInt16, authorize: @escaping (ProxyRequestHead) -> Bool) {
        policy = .proxy(host: host, port: port, hostHeader: (port == 80 || port == 443) ? host : "\(host):\(port)",
                        authorize: authorize)
    }

    /// For requests to the merchant's web server from the peer at `address` (an IP literal).
    init(settingClientAddress header: ClientAddressHeader, address: String) {
        policy = .originServer(header: header, value: header.value(for: address))
    }

    /// Are responses still owed to the client?
    var responsesPending: Bool { !pending.isEmpty || inResponseBody }

    /// Request heads sent to the destination so far.
    private(set) var requestsSent = 0

    /// True while the next bytes the client owes are a request head that the forwarder would read
    /// now (not a body, not after its last request, not held back behind answers in flight): the
    /// session times such a head with `header_timeout`.
    var readsRequestHeadNext: Bool {
        if case .none = requestBody { return !closeAfterResponses && pending.count < Self.maxRequestsInFlight }
        return false
    }

    /// True once the client's last request (head and body) is sent: nothing it sends from now on
    /// is read, so the session stops reading it.
    var readsNoMoreRequests: Bool { closeAfterResponses && !requestBody.isPresent }

    /// True while the next request waits only for answers to those in flight: pump the requests
    /// again once responses arrive.
    var waitsForAnswers: Bool {
        if case .none = requestBody { return !closeAfterResponses && pending.count >= Self.maxRequestsInFlight }
        return false
    }

    /// Can a request whose body failed still be answered with an error status, once the answers
    /// owed before it are delivered? Only while the gateway's own answer to it has not begun (it
    /// is the last request sent, so it is pending exactly until then).
    var canAnswerFailedRequest: Bool { !pending.isEmpty }

    /// The last request sent will never be completed (its body failed): it is owed no response
    /// from the gateway, and nothing the gateway sends after the answers owed before it is read.
    /// The session answers it itself once those are delivered.
    func abandonLastRequest() {
        if !pending.isEmpty { pending.removeLast() }
        readsNoMoreResponses = true
        closeAfterResponses = true
    }

    /// Set by `abandonLastRequest`: what the gateway sends past the answers still owed is left unread.
    private var readsNoMoreResponses = false

    /// The byte counts moved since the last call (rewritten heads count as sent).
    func takeCounts() -> (up: Int, down: Int) {
        defer { upstreamBytes = 0; downstreamBytes = 0 }
        return (upstreamBytes, downstreamBytes)
    }

    /// Moves as many complete requests (and request body bytes) as are buffered.
    func pumpRequests(from client: BufferedStream, to upstream: BufferedStream) -> Outcome {
        while client.inputLength > 0 {
            switch requestBody {
            case .none where closeAfterResponses || pending.count >= Self.maxRequestsInFlight:
                return .progressed
            case .none:
                let parsed = client.withInputPrefix(maxBytes: 16 * 1024) { ProxyRequestParser.parse($0) }
                switch parsed {
                case .incomplete:
                    return .progressed
                case .invalid(let error):
                    return .rejected(error)
                case .complete(let head):
                    let rewritten: [UInt8]
                    switch rewrite(head) {
                    case .send(let bytes): rewritten = bytes
                    case .refuse(let outcome): return outcome
                    }
                    client.discardInput(head.headLength)
                    upstream.write(rewritten)
                    upstreamBytes += rewritten.count
                    pending.append(PendingRequest(method: head.method, version: head.version))
                    requestsSent += 1
                    requestBody = Self.body(for: head.bodyFraming)
                    closeAfterResponses = head.wantsClose
                }
            case .length(let remaining):
                let moved = client.moveInput(min(remaining, client.inputLength), to: upstream)
                upstreamBytes += moved
                requestBody = remaining - moved == 0 ? .none : .length(remaining - moved)
            case .chunked(var scanner):
                switch Self.scanChunked(&scanner, in: client) {
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
                    return .bodyRejected(HTTPParseError(status: 400, reason: "malformed chunked request body: \(reason)"))
                }
            case .dechunked, .untilClose:
                // Neither frames a request: the parser never gives a request these.
                return .bodyRejected(HTTPParseError(status: 400, reason: "the request body cannot be framed"))
            }
        }
        return .progressed
    }

    /// What becomes of a request head.
    private enum Rewrite {
        /// These bytes go to the destination in its place.
        case send([UInt8])
        /// It is not sent: the session acts on this.
        case refuse(Outcome)
    }

    private func rewrite(_ head: ProxyRequestHead) -> Rewrite {
        switch policy {
        case .proxy(let host, let port, let hostHeader, let authorize):
            guard case .absolute(let scheme, let targetHost, let targetPort, _) = head.target, scheme == "http",
                  targetHost == host, (targetPort ?? 80) == port else {
                return .refuse(.nextHost)
            }
            guard authorize(head) else { return .refuse(.unauthorized) }
            if head.method == "TRACE" || head.method == "TRACK" {
                return .refuse(.rejected(HTTPParseError(status: 405, reason: "\(head.method) is not forwarded to the gateway")))
            }
            return .send(head.rewrittenForOrigin(host: hostHeader))
        case .originServer(let header, let value):
            if case .authority = head.target {
                return .refuse(.rejected(HTTPParseError(status: 400, reason: "CONNECT is not delivered to the merchant's server")))
            }
            return .send(head.rewrittenForOriginServer(setting: header.rawValue, to: value, removing: ClientAddressHeader.allNames))
        }
    }

    /// Moves as many response bytes as are buffered, tracking where each response ends.
    func pumpResponses(from upstream: BufferedStream, to client: BufferedStream) -> Outcome {
        while upstream.inputLength > 0 {
            switch responseBody {
            case .none where !inResponseBody && readsNoMoreResponses && pending.isEmpty:
                return .progressed
            case .none where !inResponseBody:
                let parsed = upstream.withInputPrefix(maxBytes: 64 * 1024) { ResponseParser.parse($0) }
                switch parsed {
                case .incomplete:
                    return .progressed
                case .invalid(let error):
                    return .invalidResponse(error.reason)
                case .complete(let head):
                    guard let request = pending.first else {
                        return .invalidResponse("the upstream sent a response nobody asked for")
                    }
                    if let failure = startResponse(head, to: request, from: upstream, to: client) { return failure }
                }
            case .none:
                inResponseBody = false
            case .length(let remaining):
                let moved = upstream.moveInput(min(remaining, upstream.inputLength), to: client)
                downstreamBytes += moved
                responseBody = remaining - moved == 0 ? .none : .length(remaining - moved)
                inResponseBody = remaining - moved > 0
            case .chunked(var scanner):
                switch Self.scanChunked(&scanner, in: upstream) {
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
            case .dechunked(var scanner):
                let segment = Self.scanWindow(upstream, window: scanner.decisionWindow, undecided: { $0 == .needMore }) {
                    scanner.nextSegment(prefix: $0, available: upstream.inputLength)
                }
                switch segment {
                case .data(let count):
                    downstreamBytes += upstream.moveInput(count, to: client)
                    responseBody = .dechunked(scanner)
                case .framing(let count):
                    upstream.discardInput(count)
                    responseBody = .dechunked(scanner)
                case .end(let count):
                    upstream.discardInput(count)
                    responseBody = .none
                    inResponseBody = false
                    // The client reads this body until the connection closes: whatever came after
                    // it (answers to requests pipelined behind) would be read as part of it.
                    return .finished
                case .needMore:
                    responseBody = .dechunked(scanner)
                    return .progressed
                case .invalid(let reason):
                    return .invalidResponse("malformed chunked response body: \(reason)")
                }
            case .untilClose:
                downstreamBytes += upstream.moveInput(to: client)
            }
        }
        return closeAfterResponses && !responsesPending && !readsNoMoreResponses ? .finished : .progressed
    }

    /// Passes a response head on (or drops it) and sets up its body. Returns an outcome only when
    /// the response cannot be delivered.
    private func startResponse(_ head: ResponseHead, to request: PendingRequest, from upstream: BufferedStream,
                               to client: BufferedStream) -> Outcome? {
        let framing = head.bodyFraming(requestMethod: request.method)
        if head.isInterim {
            // HTTP/1.0 has no 1xx responses: a server must not send one to an HTTP/1.0 client.
            if request.version == .http10 {
                upstream.discardInput(head.headLength)
            } else {
                downstreamBytes += upstream.moveInput(head.headLength, to: client)
            }
            return nil
        }
        if request.version == .http10, framing == .chunked {
            guard head.isOnlyChunked else {
                return .invalidResponse("the gateway applied a transfer coding besides chunked, which an HTTP/1.0 client"
                    + " cannot receive")
            }
            let replacement = head.dechunkedForHTTP10Client()
            upstream.discardInput(head.headLength)
            client.write(replacement)
            downstreamBytes += replacement.count
            pending.removeFirst()
            responseBody = .dechunked(ChunkedBodyScanner())
            inResponseBody = true
            // The decoded body ends where the connection does; nothing after it can be delivered.
            closeAfterResponses = true
            return nil
        }
        downstreamBytes += upstream.moveInput(head.headLength, to: client)
        pending.removeFirst()
        responseBody = Self.body(for: framing)
        inResponseBody = responseBody.isPresent
        return nil
    }

    /// Runs the scanner over the start of `stream`'s input.
    private static func scanChunked(_ scanner: inout ChunkedBodyScanner, in stream: BufferedStream) -> ChunkedBodyScanner.Step {
        scanWindow(stream, window: scanner.decisionWindow, undecided: { $0 == .needMore }) {
            scanner.next(prefix: $0, available: stream.inputLength)
        }
    }

    /// Calls `scan` with a short prefix of the input first (it rarely needs copying inside
    /// libevent's buffer), and again with the whole `window` when that did not decide and more is
    /// buffered: a chunk-size or trailer line may be longer than the short prefix, and a scanner
    /// shown too little would wait for ever for bytes that are already here.
    private static func scanWindow<R>(_ stream: BufferedStream, window: Int, undecided: (R) -> Bool,
                                      _ scan: (UnsafeRawBufferPointer) -> R) -> R {
        let short = 4096
        let first = stream.withInputPrefix(maxBytes: short, scan)
        guard undecided(first), stream.inputLength > short, window > short else { return first }
        return stream.withInputPrefix(maxBytes: window, scan)
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
