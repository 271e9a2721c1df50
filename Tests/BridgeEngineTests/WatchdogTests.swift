@testable import BridgeEngine
import Synchronization
import Testing

/// The watchdog pings only while every worker loop beats: one stuck loop stops the pings, so
/// systemd restarts a bridge that a side thread would have kept "alive".
@Suite("Watchdog")
struct WatchdogTests {
    private final class Pings: Sendable {
        let count = Atomic<Int>(0)
    }

    @Test func itPingsOnlyOnceEveryWorkerHasBeaten() {
        let pings = Pings()
        let watchdog = Watchdog(timeoutMilliseconds: 30_000, workers: 2) { pings.count.add(1, ordering: .relaxed) }
        #expect(watchdog.beatMilliseconds == 10_000)
        watchdog.beat(worker: 0, now: 0)
        #expect(pings.count.load(ordering: .relaxed) == 0, "pinged before the second worker ever beat")
        watchdog.beat(worker: 1, now: 100)
        watchdog.beat(worker: 0, now: 10_000)
        #expect(pings.count.load(ordering: .relaxed) == 2)
    }

    @Test func oneStuckWorkerStopsThePings() {
        let pings = Pings()
        let watchdog = Watchdog(timeoutMilliseconds: 30_000, workers: 2) { pings.count.add(1, ordering: .relaxed) }
        watchdog.beat(worker: 0, now: 0)
        watchdog.beat(worker: 1, now: 0)
        // Worker 1 stops; worker 0 keeps beating every 10 s.
        for now in stride(from: Int64(10_000), through: 60_000, by: 10_000) { watchdog.beat(worker: 0, now: now) }
        // Pings at 0 (second beat), 10 s and 20 s; from 30 s on worker 1 is two periods late.
        #expect(pings.count.load(ordering: .relaxed) == 3)
        watchdog.beat(worker: 1, now: 61_000)
        #expect(pings.count.load(ordering: .relaxed) == 4, "pings did not resume when the stuck loop came back")
    }
}
