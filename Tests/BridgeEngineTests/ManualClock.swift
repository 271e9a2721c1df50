@testable import BridgeEngine

/// A clock the test moves: `now` starts at 0 and changes only in `advance(by:)`, which fires every
/// timer that falls due, in order of its deadline. Sessions' time limits are tested exactly, with
/// no waiting and no margin for a slow machine.
final class ManualClock: SessionClock {
    private(set) var now: Int64 = 0
    private var timers: [ManualTimer] = []

    func makeTimer(onFire: @escaping () -> Void) -> any SessionTimer {
        let timer = ManualTimer(clock: self, onFire: onFire)
        timers.append(timer)
        return timer
    }

    /// Moves time forward by `milliseconds`, firing each timer that falls due at its deadline.
    func advance(by milliseconds: Int64) {
        let target = now + milliseconds
        while let next = timers.compactMap({ timer in timer.deadline.map { (timer, $0) } })
            .filter({ $0.1 <= target }).min(by: { $0.1 < $1.1 }) {
            now = next.1
            next.0.fire()
        }
        now = target
    }

    /// Is any timer armed?
    var hasPendingTimer: Bool { timers.contains { $0.deadline != nil } }
}

final class ManualTimer: SessionTimer {
    private unowned let clock: ManualClock
    private let onFire: () -> Void
    private(set) var deadline: Int64?

    init(clock: ManualClock, onFire: @escaping () -> Void) {
        self.clock = clock
        self.onFire = onFire
    }

    func schedule(afterMilliseconds milliseconds: Int64) {
        deadline = clock.now + milliseconds
    }

    func cancel() {
        deadline = nil
    }

    func fire() {
        deadline = nil
        onFire()
    }
}
