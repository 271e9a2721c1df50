import BridgeIO
import BridgeModel

/// One real TLS handshake with an upstream, dialled exactly as a session dials it (`Dialer`: the
/// `[dns]` resolver, the bridge's own listeners skipped, `connect_timeout` and
/// `handshake_timeout`, the upstream's policy and client certificate): the operator's pre-cutover
/// check (`tls-bridge probe`) and the deep health check.
///
/// Blocking: it runs an event loop of its own until the answer is in. Call it from the command
/// line or the admin thread, never from a worker's event loop.
public enum UpstreamProbe {
    /// What one probe found.
    public struct Result: Sendable {
        public var upstream: String
        /// The address that answered (or was last tried).
        public var address: String?
        /// What the handshake negotiated and verified; nil when it never started.
        public var details: TLSDetails?
        /// Nil on success, else what went wrong with OpenSSL's reason.
        public var error: String?
        public var milliseconds: Int
    }

    /// How long a finished handshake is watched for an alert: in TLS 1.3 the server judges the
    /// client certificate after the client's side of the handshake is done.
    static let alertWatchMilliseconds: Int64 = 300

    /// `via`: the upstream's outbound proxy, if it has one (`TLSContexts.outboundProxies`).
    public static func run(_ context: UpstreamTLSContext, via: OutboundProxy?, config: Config) -> Result {
        let started = EventLoop.monotonicMilliseconds()
        var result = Result(upstream: context.config.name, address: nil, details: nil, error: nil, milliseconds: 0)
        let loop: EventLoop
        do {
            loop = try EventLoop(dns: config.dns)
        } catch {
            result.error = "could not start an event loop for the probe: \(error.message)"
            return result
        }
        var watch: AlertWatch?
        let dialer = Dialer(to: .upstream(context), via: via, loop: loop, limits: config.limits,
                            isOwnAddress: config.isOwnListener) { event in
            switch event {
            case .stepped:
                break
            case .failed(let failure):
                result.address = failure.address?.description
                result.details = failure.tls
                result.error = failure.error
                loop.stop()
            case .ready(let ready):
                result.address = ready.address.description
                result.details = ready.tls
                watch = AlertWatch(stream: ready.stream, loop: loop) { alert in
                    result.error = alert.map { "the gateway ended the session right after the handshake: \($0)" }
                    loop.stop()
                }
            }
        }
        dialer.start()
        loop.run()
        dialer.cancel()
        watch?.close()
        result.milliseconds = Int(EventLoop.monotonicMilliseconds() - started)
        return result
    }
}

/// Watches a freshly handshaken connection briefly: an alert means the gateway refused the session
/// after all; silence (or a clean close) means it accepted it.
private final class AlertWatch: BufferedStreamDelegate {
    private let stream: BufferedStream
    private var timer: Timer?
    private var done: ((String?) -> Void)?
    private var alerted = false

    init(stream: BufferedStream, loop: EventLoop, done: @escaping (String?) -> Void) {
        self.stream = stream
        self.done = done
        stream.delegate = self
        stream.enableReading()
        let timer = Timer(loop: loop) { [weak self] in self?.finish(nil) }
        timer.schedule(afterMilliseconds: UpstreamProbe.alertWatchMilliseconds)
        self.timer = timer
    }

    /// Ends the connection: with close_notify unless the gateway broke it.
    func close() {
        timer?.cancel()
        stream.free(sendCloseNotify: !alerted)
    }

    private func finish(_ alert: String?) {
        let done = self.done
        self.done = nil
        done?(alert)
    }

    func streamHasInput(_ stream: BufferedStream) {}

    func streamDrained(_ stream: BufferedStream) {}

    func stream(_ stream: BufferedStream, reported event: StreamEvent) {
        switch event {
        case .failed(let failure):
            alerted = true
            finish(failure.text)
        case .endOfStreamWithoutCloseNotify:
            // A refusal often arrives as an alert and a bare close; either way not an accepted session.
            alerted = true
            finish("the connection was closed without TLS close_notify")
        case .connected, .endOfStream:
            finish(nil)
        }
    }
}
