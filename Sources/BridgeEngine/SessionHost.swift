import BridgeIO
import BridgeModel

/// What a session needs from the worker that runs it: its clock, the configuration generation it is
/// accepted under, a way to reach a destination, and where its connection and its record go when
/// it ends. `Worker` is the real host; the engine's unit tests provide their own, with a dial that
/// hands over a socket the test controls.
protocol SessionHost: AnyObject {
    /// The time the session reads and its timer (the loop's, or a test's hand-moved clock).
    var clock: any SessionClock { get }
    /// The current configuration: a session reads it once, at accept.
    var runtime: BridgeRuntime { get }
    /// Prepares to reach `destination` the way every session does (see `Dialer`), with the limits
    /// and own addresses of the session's configuration generation.
    func dial(_ destination: Destination, runtime: BridgeRuntime, preamble: [UInt8]?,
              report: @escaping (Dialer.Event) -> Void) -> any Dialing
    /// Called by a session exactly once, from its teardown.
    func sessionEnded(_ session: Session, record: SessionRecord)
    /// Closes a client connection after a short linger (see `LingeringClose`).
    func closeLingering(_ downstream: BufferedStream)
    /// An http-proxy client's next request is for another host: a new session takes its connection.
    func continueProxyConnection(_ downstream: BufferedStream, listener: ListenerConfig, peer: SocketAddress?,
                                 local: SocketAddress?)
}

/// A dial under way: started once, cancelled at most once; it reports through the closure it was
/// made with, never after `cancel()`.
protocol Dialing: AnyObject {
    func start()
    func cancel()
}

extension Dialer: Dialing {}
