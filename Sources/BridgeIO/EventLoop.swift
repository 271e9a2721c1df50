internal import CLibevent
public import BridgeModel
import Synchronization

/// One libevent `event_base` and its `evdns_base`, owned by exactly one worker thread.
///
/// Create it on the thread that will run it and never touch it from another thread, with one
/// exception: `WakeHandle.wake()`, which is how other threads get the loop's attention.
public final class EventLoop {
    let base: OpaquePointer
    let dns: OpaquePointer
    private var stopEvent: OpaquePointer?
    private var wakeHandle: WakeHandle?
    private var onWake: (() -> Void)?

    /// Builds the loop and its resolver: the system's (`/etc/resolv.conf` and `/etc/hosts`), or
    /// only the configured name servers (then just the localhost entries of `/etc/hosts`, which is
    /// what keeps a hosts-file entry for the gateway's name on the merchant's host from pointing
    /// the bridge at itself).
    public init(dns config: DNSConfig) throws(ConfigError) {
        guard let base = event_base_new() else {
            throw ConfigError(key: "workers", message: "libevent could not create an event loop")
        }
        self.base = base
        let flags = config.nameservers.isEmpty
            ? EVDNS_BASE_INITIALIZE_NAMESERVERS | EVDNS_BASE_DISABLE_WHEN_INACTIVE
            : EVDNS_BASE_DISABLE_WHEN_INACTIVE
        guard let dns = evdns_base_new(base, flags) else {
            event_base_free(base)
            throw ConfigError(key: "dns.nameservers", message: "libevent could not create a DNS resolver")
        }
        self.dns = dns
        for server in config.nameservers {
            if evdns_base_nameserver_ip_add(dns, server) != 0 {
                evdns_base_free(dns, 0)
                event_base_free(base)
                throw ConfigError(key: "dns.nameservers", message: "\"\(server)\" is not a usable name server address")
            }
        }
        if !config.nameservers.isEmpty {
            _ = evdns_base_load_hosts(dns, nil)
        }
        let seconds = Double(config.timeout.components.seconds) + Double(config.timeout.components.attoseconds) / 1e18
        _ = evdns_base_set_option(dns, "timeout:", String(seconds))
        _ = evdns_base_set_option(dns, "attempts:", "2")
    }

    deinit {
        wakeHandle?.invalidate()
        if let stopEvent { event_free(stopEvent) }
        evdns_base_free(dns, 1)
        event_base_free(base)
    }

    /// Runs callbacks until `stop()` ends the loop. Blocks the calling thread.
    public func run() {
        event_base_dispatch(base)
    }

    /// Ends `run()` after the callbacks already due have run. Call on the loop's own thread.
    public func stop() {
        event_base_loopexit(base, nil)
    }

    /// A handle other threads may use to wake this loop; `onWake` then runs on the loop's thread
    /// (once per wake-up, however many wakes arrived meanwhile).
    public func makeWakeHandle(onWake: @escaping () -> Void) -> WakeHandle {
        self.onWake = onWake
        let context = Unmanaged.passUnretained(self).toOpaque()
        let event = event_new(base, -1, 0, { _, _, context in
            guard let context else { return }
            let loop = Unmanaged<EventLoop>.fromOpaque(context).takeUnretainedValue()
            withExtendedLifetime(loop) { loop.onWake?() }
        }, context)
        stopEvent = event
        let handle = WakeHandle(event: event)
        wakeHandle = handle
        return handle
    }

    /// Monotonic milliseconds, cheap enough for every read callback.
    public static func monotonicMilliseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC_COARSE, &now)
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
    }
}

/// Lets any thread wake one event loop. Needs `evthread_use_pthreads()` to have run before the
/// loop was created (see `Threading.enable()`).
public final class WakeHandle: Sendable {
    private struct Event: @unchecked Sendable { let pointer: OpaquePointer? }
    private let event: Mutex<Event>

    init(event: OpaquePointer?) {
        self.event = Mutex(Event(pointer: event))
    }

    /// Wakes the loop; its `onWake` runs there. Safe from any thread, any number of times; does
    /// nothing once the loop is gone.
    public func wake() {
        event.withLock { event in
            if let pointer = event.pointer { event_active(pointer, 0, 0) }
        }
    }

    /// Called by the loop before it frees the event: later requests do nothing.
    func invalidate() {
        event.withLock { $0 = Event(pointer: nil) }
    }
}

/// Process-wide libevent set-up, done once on the main thread before any loop exists.
public enum Threading {
    /// Makes libevent lock its structures so one thread may wake another's loop.
    public static func enable() {
        _ = evthread_use_pthreads()
    }
}
