import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Proof that the worker loops turn. Every worker loop beats on its own timer; a loop that stops
/// turning (a callback stuck in a loop, a lock never released) stops beating. Two readers:
/// - systemd's watchdog (`WatchdogSec=` in the unit sets `WATCHDOG_USEC`): `WATCHDOG=1` goes out,
///   from whichever worker beats, only while every worker has beaten recently, so one stuck loop
///   is enough for systemd to restart the bridge (a side thread pinging on a timer would keep a
///   wedged bridge "alive");
/// - `/healthz` on the admin endpoint (container and Kubernetes probes): 503 naming the loop.
public final class Watchdog: Sendable {
    /// How often each worker beats: a second, or a third of systemd's timeout if that is shorter.
    public let beatMilliseconds: Int64
    private let lastBeats: Mutex<[Int64]>
    /// Sends `WATCHDOG=1`; nil when systemd asked for no watchdog.
    private let ping: (@Sendable () -> Void)?

    /// `WATCHDOG_USEC` (and `WATCHDOG_PID`, when the pings must come from a given process) decide
    /// whether systemd is pinged.
    public static func fromEnvironment(workers: Int, notifier: ServiceNotifier) -> Watchdog {
        var timeout: Int64?
        if let usec = getenv("WATCHDOG_USEC").flatMap({ Int64(String(cString: $0)) }), usec > 0 {
            let pid = getenv("WATCHDOG_PID").flatMap { Int32(String(cString: $0)) }
            if pid == nil || pid == getpid() { timeout = max(3, usec / 1000) }
        }
        guard let timeout else { return Watchdog(systemdTimeoutMilliseconds: nil, workers: workers, ping: nil) }
        return Watchdog(systemdTimeoutMilliseconds: timeout, workers: workers) { @Sendable in notifier.watchdog() }
    }

    init(systemdTimeoutMilliseconds: Int64?, workers: Int, ping: (@Sendable () -> Void)?) {
        beatMilliseconds = min(1000, max(1, (systemdTimeoutMilliseconds ?? 3000) / 3))
        lastBeats = Mutex(Array(repeating: Int64.min, count: workers))
        self.ping = ping
    }

    /// A loop that has not beaten for this long is stuck (two beats missed, and at least 3 s).
    var stuckAfterMilliseconds: Int64 { max(3000, 2 * beatMilliseconds) }

    /// Worker `index` is alive at `now` (monotonic ms). Pings systemd when every worker has beaten
    /// within two beat periods.
    func beat(worker index: Int, now: Int64) {
        let allAlive = lastBeats.withLock { beats in
            beats[index] = now
            return beats.allSatisfy { $0 != Int64.min && now - $0 <= 2 * beatMilliseconds }
        }
        if allAlive { ping?() }
    }

    /// The workers whose loop has not beaten for `stuckAfterMilliseconds`, with how long (ms).
    func stuckWorkers(now: Int64) -> [(worker: Int, silentMilliseconds: Int64)] {
        lastBeats.withLock { beats in
            beats.enumerated().compactMap { index, last in
                guard last != Int64.min else { return nil }  // not started yet: start-up, not a hang
                let silent = now - last
                return silent > stuckAfterMilliseconds ? (index, silent) : nil
            }
        }
    }
}
