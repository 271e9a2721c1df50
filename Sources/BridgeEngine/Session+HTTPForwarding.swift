import BridgeHTTP
import BridgeIO
import BridgeModel

/// Absolute-form `http://` requests once the gateway is open: moving them and their answers through
/// `HTTPForwarder`, acting on what it finds (a broken body, a request for another host, a client
/// that asked to close), handing the client's connection to a new session when its next request is
/// for another gateway host, and 502/504 answers when the gateway cannot be reached.
extension Session {
    /// What waits until the responses owed to the client are delivered.
    enum AfterResponses {
        case handOver
        case refuse(status: Int, reason: String, close: SessionRecord.Close)
    }

    /// Moves HTTP traffic through the forwarder and acts on what it finds.
    func pumpHTTP(from stream: BufferedStream) {
        guard let forwarder, let upstream else { return }
        lastActivity = host.clock.now
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
            timeRequestHead()
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

    /// Starts or stops the clock on the client's next request head. Every framed request head must
    /// arrive whole within `header_timeout`, counted from the session's opening for the first one
    /// and from its first byte for each later one (a keep-alive connection may wait idle between
    /// requests, up to `idle_timeout`). Without it a client trickling a head byte by byte would keep
    /// the session, and a buffer, for as long as it liked: every byte resets `idle_timeout`.
    func timeRequestHead() {
        guard let forwarder, phase == .open, forwarder.readsRequestHeadNext,
              forwarder.requestsSent == 0 || downstream.inputLength > 0 else {
            requestHeadClock = nil
            return
        }
        if let clock = requestHeadClock, clock.requestsSent == forwarder.requestsSent { return }
        requestHeadClock = (since: host.clock.now, requestsSent: forwarder.requestsSent)
        scheduleOpenTimer()
    }

    /// The head did not arrive whole in time: 408 once the answers owed before it are delivered,
    /// as an HTTP server would. A head is never sent on in part, so the destination saw none of it.
    func requestHeadTimedOut() {
        requestHeadClock = nil
        waitForResponses(then: .refuse(status: 408, reason: "no complete request head within header_timeout"
            + " (\(limits.headerTimeout.text))", close: .headerTimeout))
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
}
