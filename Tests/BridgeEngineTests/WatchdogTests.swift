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
        let watchdog = Watchdog(systemdTimeoutMilliseconds: 30_000, workers: 2) { pings.count.add(1, ordering: .relaxed) }
        #expect(watchdog.beatMilliseconds == 1000, "beats every second, well within systemd's 30 s")
        watchdog.beat(worker: 0, now: 0)
        #expect(pings.count.load(ordering: .relaxed) == 0, "pinged before the second worker ever beat")
        watchdog.beat(worker: 1, now: 100)
        watchdog.beat(worker: 0, now: 1000)
        #expect(pings.count.load(ordering: .relaxed) == 2)
    }

    @Test func oneStuckWorkerStopsThePings() {
        let pings = Pings()
        let watchdog = Watchdog(systemdTimeoutMilliseconds: 3000, workers: 2) { pings.count.add(1, ordering: .relaxed) }
        watchdog.beat(worker: 0, now: 0)
        watchdog.beat(worker: 1, now: 0)
        // Worker 1 stops; worker 0 keeps beating every second.
        for now in stride(from: Int64(1000), through: 6000, by: 1000) { watchdog.beat(worker: 0, now: now) }
        // Pings at 0 (second beat), 1 s and 2 s; from 3 s on worker 1 is two periods late.
        #expect(pings.count.load(ordering: .relaxed) == 3)
        watchdog.beat(worker: 1, now: 6100)
        #expect(pings.count.load(ordering: .relaxed) == 4, "pings did not resume when the stuck loop came back")
    }

    @Test func healthNamesTheLoopThatStoppedTurning() {
        let watchdog = Watchdog(systemdTimeoutMilliseconds: nil, workers: 2, ping: nil)
        #expect(watchdog.beatMilliseconds == 1000)
        #expect(watchdog.stuckWorkers(now: 60_000).isEmpty, "workers that never started are start-up, not a hang")
        watchdog.beat(worker: 0, now: 0)
        watchdog.beat(worker: 1, now: 0)
        watchdog.beat(worker: 0, now: 4000)
        #expect(watchdog.stuckWorkers(now: 3000).isEmpty)
        let stuck = watchdog.stuckWorkers(now: 4000)
        #expect(stuck.map(\.worker) == [1] && stuck.first?.silentMilliseconds == 4000)
    }
}
