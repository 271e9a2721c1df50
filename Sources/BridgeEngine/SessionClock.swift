import BridgeIO

/// The time a session reads and the one timer it arms. A worker's clock is the event loop's (the
/// monotonic clock and libevent timers); the engine's unit tests use a clock they move by hand, so
/// every timeout (`header_timeout`, `handshake_timeout`, `idle_timeout`, `half_close_timeout`, a
/// stalled drain) is tested to the millisecond without waiting for it.
protocol SessionClock: AnyObject {
    /// Monotonic milliseconds: only differences mean anything.
    var now: Int64 { get }
    /// A one-shot timer; `onFire` runs on the session's loop. Capture the owner weakly.
    func makeTimer(onFire: @escaping () -> Void) -> any SessionTimer
}

/// A one-shot, re-armable timer.
protocol SessionTimer: AnyObject {
    /// Fires once after `milliseconds`, replacing any earlier schedule.
    func schedule(afterMilliseconds milliseconds: Int64)
    /// Cancels a pending fire.
    func cancel()
}

extension Timer: SessionTimer {}

/// The real clock: the monotonic clock, and timers on the worker's event loop.
final class LoopClock: SessionClock {
    private let loop: EventLoop

    init(loop: EventLoop) {
        self.loop = loop
    }

    var now: Int64 { EventLoop.monotonicMilliseconds() }

    func makeTimer(onFire: @escaping () -> Void) -> any SessionTimer {
        Timer(loop: loop, onFire: onFire)
    }
}
