import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// systemd's watchdog (`WatchdogSec=` in the unit): the service manager kills and restarts the
/// bridge when `WATCHDOG=1` stops arriving. A side thread pinging on a timer would keep a bridge
/// alive whose event loops are stuck; here every worker loop beats on its own timer, and the ping
/// goes out (from whichever worker beats) only while every worker has beaten recently. One stuck
/// loop is enough for the pings to stop.
public final class Watchdog: Sendable {
    /// How often each worker beats: a third of the service manager's timeout.
    public let beatMilliseconds: Int64
    private let lastBeats: Mutex<[Int64]>
    private let ping: @Sendable () -> Void

    /// From the environment systemd sets (`WATCHDOG_USEC`, and `WATCHDOG_PID` when the pings must
    /// come from a given process); nil when no watchdog is asked for.
    public static func fromEnvironment(workers: Int, notifier: ServiceNotifier) -> Watchdog? {
        guard let usec = getenv("WATCHDOG_USEC").flatMap({ Int64(String(cString: $0)) }), usec > 0 else { return nil }
        if let pid = getenv("WATCHDOG_PID").flatMap({ Int32(String(cString: $0)) }), pid != getpid() { return nil }
        return Watchdog(timeoutMilliseconds: max(3, usec / 1000), workers: workers) { notifier.watchdog() }
    }

    init(timeoutMilliseconds: Int64, workers: Int, ping: @escaping @Sendable () -> Void) {
        beatMilliseconds = max(1, timeoutMilliseconds / 3)
        lastBeats = Mutex(Array(repeating: Int64.min, count: workers))
        self.ping = ping
    }

    /// Worker `index` is alive at `now` (monotonic ms). Pings when every worker has beaten within
    /// two beat periods.
    func beat(worker index: Int, now: Int64) {
        let allAlive = lastBeats.withLock { beats in
            beats[index] = now
            return beats.allSatisfy { $0 != Int64.min && now - $0 <= 2 * beatMilliseconds }
        }
        if allAlive { ping() }
    }
}
