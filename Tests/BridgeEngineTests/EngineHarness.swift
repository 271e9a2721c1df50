@testable import BridgeEngine
import BridgeIO
import BridgeModel
import Glibc
import Logging

/// Runs real sessions on a real event loop with no network: each peer is one end of a Unix socket
/// pair the test holds, and the dial is a stand-in that, when the test says so, hands the session a
/// plain socket whose other end plays the gateway (or reports a failure). Time moves only when
/// the test moves `clock`. What the engine decides (what it reads, writes, answers and records) is
/// the real code.
final class EngineHarness: SessionHost {
    let loop: EventLoop
    let manualClock = ManualClock()
    var clock: any SessionClock { manualClock }
    let runtime: BridgeRuntime
    /// Records of ended sessions, in order.
    private(set) var records: [SessionRecord] = []
    /// Connections handed to a new session (an http-proxy client's next host) or closing lingeringly.
    private(set) var handedOver: [BufferedStream] = []
    private(set) var lingering: [BufferedStream] = []
    /// Every dial a session asked for, in order.
    private(set) var dials: [StandInDial] = []
    private var sessions: [Session] = []
    private var sessionCount = 0

    /// `config` is a whole TOML configuration; its listeners are never bound.
    init(config: String) throws {
        // As `tls-bridge run` does: a write to a closed peer is an error to handle, not a signal.
        signal(SIGPIPE, SIG_IGN)
        let parsed = try ConfigLoader.parse(config, baseDirectory: nil)
        runtime = try BridgeRuntime(config: parsed, contexts: try BridgeRuntime.buildContexts(parsed),
                                    logger: Logger(label: "engine-tests"))
        loop = try EventLoop(dns: parsed.dns)
    }

    /// Everything on the loop goes before the loop does: a bufferevent or timer freed after its
    /// event base would be a use after free.
    /// (Sessions are dropped, not finished: they would call back into a host being deinitialised.)
    deinit {
        sessions.removeAll()
        for stream in handedOver + lingering { stream.free(sendCloseNotify: false) }
        for dial in dials { dial.cancel() }
    }

    /// A merchant connects to listener `name`: its session starts, and the test gets the client's end.
    @discardableResult
    /// With `skippingTLS`, a tls listener's session starts as if the TLS handshake had already
    /// succeeded (the peer speaks plain bytes): for tests of what happens after it.
    func connect(listener name: String, skippingTLS: Bool = false) -> (client: Peer, session: Session) {
        let listener = runtime.config.listeners.first { $0.name == name }!
        let (ours, theirs) = Peer.pair()
        let stream = BufferedStream(socket: ours, loop: loop)
        sessionCount += 1
        let session = Session(id: "test-\(sessionCount)", host: self, listener: listener, downstream: stream,
                              peer: SocketAddress(ip: "127.0.0.1", port: 40000), local: SocketAddress(ip: "127.0.0.1", port: 8080))
        sessions.append(session)
        if skippingTLS { session.downstreamIsTLS = false }
        session.start()
        return (theirs, session)
    }

    /// A client on listener `name` sends `request`; once the session dials, the gateway answers the
    /// dial (unless `connectGateway` is false). Returns the client, its session and the gateway.
    func open(listener name: String, sending request: String, connectGateway: Bool = true)
        -> (client: Peer, session: Session, gateway: Peer?) {
        let (client, session) = connect(listener: name)
        client.send(request)
        let dialsBefore = dials.count
        run(until: { dials.count > dialsBefore })
        let gateway = connectGateway && dials.count > dialsBefore ? dials[dialsBefore].connect() : nil
        if gateway != nil { run(milliseconds: 20) }
        return (client, session, gateway)
    }

    /// Runs the loop for about `milliseconds`, then returns.
    func run(milliseconds: Int64) {
        let timer = Timer(loop: loop) { [loop] in loop.stop() }
        timer.schedule(afterMilliseconds: milliseconds)
        loop.run()
        timer.cancel()
    }

    /// Moves the sessions' clock forward by `milliseconds` (firing what falls due), then lets the
    /// loop deliver what that wrote.
    func advance(by milliseconds: Int64) {
        manualClock.advance(by: milliseconds)
        run(milliseconds: 10)
    }

    /// Runs the loop in short turns until `condition` holds or `milliseconds` pass.
    func run(until condition: () -> Bool, milliseconds: Int64 = 2000) {
        let deadline = EventLoop.monotonicMilliseconds() + milliseconds
        while !condition(), EventLoop.monotonicMilliseconds() < deadline { run(milliseconds: 10) }
    }

    // MARK: - SessionHost

    func dial(_ destination: Destination, runtime: BridgeRuntime, preamble: [UInt8]?,
              report: @escaping (Dialer.Event) -> Void) -> any Dialing {
        let dial = StandInDial(destination: destination, loop: loop, report: report)
        dials.append(dial)
        return dial
    }

    func sessionEnded(_ session: Session, record: SessionRecord) {
        records.append(record)
        sessions.removeAll { $0 === session }
    }

    func closeLingering(_ downstream: BufferedStream) {
        lingering.append(downstream)
    }

    func continueProxyConnection(_ downstream: BufferedStream, listener: ListenerConfig, peer: SocketAddress?,
                                 local: SocketAddress?) {
        handedOver.append(downstream)
    }
}

/// The dial a test controls: nothing happens until it calls `connect()` or `fail(...)`.
final class StandInDial: Dialing {
    let destination: Destination
    private let loop: EventLoop
    private var report: ((Dialer.Event) -> Void)?
    private(set) var started = false
    private(set) var cancelled = false

    init(destination: Destination, loop: EventLoop, report: @escaping (Dialer.Event) -> Void) {
        self.destination = destination
        self.loop = loop
        self.report = report
    }

    func start() { started = true }

    /// Has the test answered it (connected or failed)?
    var answered: Bool { report == nil && !cancelled }

    func cancel() {
        cancelled = true
        report = nil
    }

    /// The gateway answers: the session gets a plain socket, the test the gateway's end of it.
    func connect() -> Peer {
        let (ours, theirs) = Peer.pair()
        let stream = BufferedStream(socket: ours, loop: loop)
        // As the real dial hands a stream over: reading and writing on.
        stream.enableReading()
        stream.enableWriting()
        let report = self.report
        self.report = nil
        report?(.ready(.init(stream: stream, address: SocketAddress(ip: "127.0.0.1", port: 443)!, tls: nil,
                             handshakeMilliseconds: nil)))
        return theirs
    }

    /// The dial fails as the real one would report it.
    func fail(_ cause: Dialer.Cause, step: Dialer.Step, close: SessionRecord.Close, error: String) {
        let report = self.report
        self.report = nil
        report?(.failed(.init(cause: cause, step: step, close: close, error: error, address: nil, tls: nil, connected: false)))
    }
}

/// The test's end of a socket pair: non-blocking, closed by `close()`.
final class Peer {
    let fd: Int32

    init(fd: Int32) { self.fd = fd }

    deinit { close() }

    /// Two connected non-blocking stream sockets: (the bridge's end, the test's end).
    static func pair() -> (Int32, Peer) {
        var fds: [Int32] = [0, 0]
        precondition(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
        for fd in fds { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
        return (fds[0], Peer(fd: fds[1]))
    }

    private var closed = false

    func close() {
        guard !closed else { return }
        closed = true
        _ = Glibc.close(fd)
    }

    /// Writes what the socket takes now; returns how much that was.
    @discardableResult
    func send(_ bytes: [UInt8]) -> Int {
        var total = 0
        while total < bytes.count {
            // MSG_NOSIGNAL: a bridge that closed the connection must fail the write, not kill the test run.
            let written = bytes[total...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if written <= 0 { break }
            total += written
        }
        return total
    }

    @discardableResult
    func send(_ text: String) -> Int { send(Array(text.utf8)) }

    /// Keeps writing `filler` until the socket takes no more; returns the bytes written.
    func pushUntilBlocked(limit: Int = 64 * 1024 * 1024) -> Int {
        let filler = [UInt8](repeating: 0x78, count: 64 * 1024)
        var total = 0
        while total < limit {
            let written = send(filler)
            total += written
            if written < filler.count { break }
        }
        return total
    }

    /// What has arrived so far (non-blocking), and whether the other side closed.
    func receive() -> (bytes: [UInt8], closed: Bool) {
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count > 0 { out += buffer[0..<count]; continue }
            return (out, count == 0)
        }
    }

    func receivedText() -> String {
        String(decoding: receive().bytes, as: UTF8.self)
    }
}
