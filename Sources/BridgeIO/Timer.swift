internal import CLibevent

/// A one-shot timer on an event loop, re-armable. Owns its libevent `event`.
public final class Timer {
    private var event: OpaquePointer!
    private let onFire: () -> Void

    /// `onFire` runs on the loop's thread. Capture the owner weakly: the owner holds the timer.
    public init(loop: EventLoop, onFire: @escaping () -> Void) {
        self.onFire = onFire
        event = event_new(loop.base, -1, 0, { _, _, context in
            guard let context else { return }
            let timer = Unmanaged<Timer>.fromOpaque(context).takeUnretainedValue()
            withExtendedLifetime(timer) { timer.onFire() }
        }, Unmanaged.passUnretained(self).toOpaque())
    }

    deinit {
        event_free(event)
    }

    /// Fires once after `milliseconds`, replacing any earlier schedule.
    public func schedule(afterMilliseconds milliseconds: Int64) {
        var delay = timeval(tv_sec: Int(milliseconds / 1000), tv_usec: Int(milliseconds % 1000) * 1000)
        event_add(event, &delay)
    }

    /// Cancels a pending fire.
    public func cancel() {
        event_del(event)
    }
}
