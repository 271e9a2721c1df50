import BridgeIO
import BridgeModel

/// Connections to one upstream opened before any merchant asks for one (`preconnect`): resolved,
/// connected (through `via` when set), TLS-handshaken and verified by the same `Dialer` as every
/// session's. A session that finds one ready skips the TCP and TLS round trips to a distant gateway
/// and pays only for its request.
///
/// One pool per upstream, per worker and configuration generation, on the worker's loop. It keeps
/// at least `preconnect` spares: it dials a new one after each hand-over; it closes a spare at
/// `preconnect_max_age` (before a gateway would close an idle connection that sent no request) and
/// opens another; it drops a spare the moment the gateway closes it or sends anything unasked.
/// While dials fail or spares die early it backs off (1 s, doubling up to 60 s), so a gateway that
/// is down costs one dial a minute, and sessions meanwhile dial as they would without a pool.
///
/// When calls come faster than one spare can be remade, the pool grows: a refill takes a dial's
/// time (TCP and TLS, 2 round trips to a distant gateway), and every call arriving meanwhile would
/// find the pool empty. So it keeps, on top of `preconnect`, the calls expected during one dial
/// (the recent call rate × the recent dial time) with half again as headroom, up to `mostSpares`.
/// Sporadic calls (one every few seconds) expect none and keep `preconnect`; when the rate falls,
/// the extra spares are not replaced as they are used or reach their age.
final class SparePool {
    /// What happened to the pool's connections, for `/metrics`.
    enum Event {
        /// A spare is ready.
        case ready
        /// A ready spare went to a session.
        case handedOver
        /// A spare reached `preconnect_max_age` unused and was closed.
        case expired
        /// The gateway closed a spare (or spoke on it) before a session took it.
        case foundDead
        /// A spare's dial failed.
        case dialFailed
        /// Ready spares closed with the pool (reload, shutdown).
        case closed(count: Int)
    }

    /// A spare taken for a session: its dial's result, and how long it waited.
    struct Taken {
        var ready: Dialer.Ready
        var ageMilliseconds: Int64
    }

    let upstream: String
    /// `preconnect`: the fewest spares kept.
    private let floor: Int
    private let maxAge: Int64
    private let clock: any SessionClock
    /// Starts a dial of this upstream (the session's own dial path); it reports through the closure.
    private let dial: (@escaping (Dialer.Event) -> Void) -> any Dialing
    /// Says why spares cannot be opened (not a session: no record), at most once per back-off step.
    private let warn: (String) -> Void
    private let observe: (Event) -> Void
    /// Room under `max_sessions` for one more spare (see `SessionCounter.reserveSpare`), and its
    /// return when a spare is handed over (the session holds its own place), closed or never made.
    private let reserveSpare: () -> Bool
    private let releaseSpares: (Int) -> Void

    private var spares: [Spare] = []
    /// Dials in flight, with when each started.
    private var dialling: [ObjectIdentifier: (dial: any Dialing, started: Int64)] = [:]
    /// When sessions asked for a spare (hit or miss), within the last `demandWindowMilliseconds`.
    private var demand: [Int64] = []
    /// How long a spare's dial takes, smoothed over the recent ones (milliseconds).
    private var dialMilliseconds: Double?
    /// Dials failed or spares lost early in a row; sets the back-off.
    private var failuresInARow = 0
    private var retry: (any SessionTimer)?
    private var waitingToRetry = false
    private var closed = false

    static let firstBackOffMilliseconds: Int64 = 1000
    static let longestBackOffMilliseconds: Int64 = 60_000
    /// The most spares one pool keeps, however fast calls come (and the most `preconnect` allows).
    static let mostSpares = UpstreamConfig.maximumPreconnect
    /// Calls this recent set the rate the pool grows for.
    static let demandWindowMilliseconds: Int64 = 10_000

    init(upstream: String, count: Int, maxAge: Duration, clock: any SessionClock,
         dial: @escaping (@escaping (Dialer.Event) -> Void) -> any Dialing, warn: @escaping (String) -> Void,
         observe: @escaping (Event) -> Void = { _ in }, reserveSpare: @escaping () -> Bool = { true },
         releaseSpares: @escaping (Int) -> Void = { _ in }) {
        self.upstream = upstream
        self.floor = count
        self.maxAge = maxAge.milliseconds
        self.clock = clock
        self.dial = dial
        self.warn = warn
        self.observe = observe
        self.reserveSpare = reserveSpare
        self.releaseSpares = releaseSpares
    }

    /// Spares ready now.
    var readyCount: Int { spares.count }

    /// Spares ready or being dialled.
    var keptCount: Int { spares.count + dialling.count }

    /// How many spares (ready or dialling) the pool keeps now: `preconnect`, plus the calls
    /// expected while one spare is made, with half again as headroom (see the type's comment).
    func wantedCount() -> Int {
        let now = clock.now
        demand.removeAll { now - $0 > Self.demandWindowMilliseconds }
        guard demand.count >= 2, let dialMilliseconds, let first = demand.first, let last = demand.last else { return floor }
        let callsPerMillisecond = Double(demand.count - 1) / Double(max(1, last - first))
        let expected = callsPerMillisecond * dialMilliseconds
        // Below a quarter of a call per dial a refill almost always finishes before the next call.
        let extra = expected < 0.25 ? 0 : Int((expected * 1.5).rounded(.up))
        return min(Self.mostSpares, floor + extra)
    }

    /// Dials the first spares.
    func start() {
        refill()
    }

    /// A ready spare whose gateway is still silent, or nil (the session then dials itself). Spares
    /// found closed are dropped on the way; a new one is dialled for each taken or dropped.
    func take() -> Taken? {
        demand.append(clock.now)
        defer { refill() }
        while !spares.isEmpty {
            let spare = spares.removeFirst()
            spare.stopWatching()
            releaseSpares(1)
            guard spare.ready.stream.peerIsSilent else {
                spare.ready.stream.free(sendCloseNotify: false)
                observe(.foundDead)
                continue
            }
            failuresInARow = 0
            observe(.handedOver)
            return Taken(ready: spare.ready, ageMilliseconds: clock.now - spare.born)
        }
        return nil
    }

    /// Closes every spare (with close_notify: they carried nothing) and stops dialling. For a
    /// reload (the next generation opens its own) and for shutdown.
    func close() {
        closed = true
        retry?.cancel()
        for entry in dialling.values { entry.dial.cancel() }
        let cancelled = dialling.count
        dialling.removeAll()
        for spare in spares {
            spare.stopWatching()
            spare.ready.stream.free(sendCloseNotify: true)
        }
        if !spares.isEmpty { observe(.closed(count: spares.count)) }
        releaseSpares(spares.count + cancelled)
        spares.removeAll()
    }

    // MARK: - Keeping the count

    /// Dials spares up to the count wanted now, as far as max_sessions leaves room; the worker also
    /// calls it when a session ends (its place may be what a spare was waiting for).
    func refill() {
        guard !closed, !waitingToRetry else { return }
        let wanted = wantedCount()
        while keptCount < wanted, reserveSpare() {
            startDial()
        }
    }

    private func startDial() {
        var key: ObjectIdentifier?
        let started = dial { [weak self] event in
            guard let self, let key else { return }
            self.dialReported(event, key: key)
        }
        key = ObjectIdentifier(started)
        dialling[ObjectIdentifier(started)] = (started, clock.now)
        started.start()
    }

    private func dialReported(_ event: Dialer.Event, key: ObjectIdentifier) {
        switch event {
        case .stepped:
            break
        case .ready(let ready):
            if let started = dialling.removeValue(forKey: key)?.started {
                let took = Double(clock.now - started)
                dialMilliseconds = dialMilliseconds.map { 0.7 * $0 + 0.3 * took } ?? took
            }
            observe(.ready)
            let spare = Spare(ready: ready, born: clock.now, clock: clock, maxAge: maxAge) { [weak self] spare, reason in
                self?.spareEnded(spare, reason)
            }
            spares.append(spare)
        case .failed(let failure):
            dialling.removeValue(forKey: key)
            releaseSpares(1)
            observe(.dialFailed)
            backOff(because: "preconnect to upstream \(upstream) failed: \(failure.error)")
        }
    }

    private func spareEnded(_ spare: Spare, _ reason: Spare.Ending) {
        spares.removeAll { $0 === spare }
        releaseSpares(1)
        switch reason {
        case .expired:
            // It lived its whole life unused: the gateway keeps ready connections, no back-off.
            observe(.expired)
            failuresInARow = 0
            spare.ready.stream.free(sendCloseNotify: true)
            refill()
        case .closedByGateway(let age):
            observe(.foundDead)
            spare.ready.stream.free(sendCloseNotify: false)
            // A gateway that closes idle connections before preconnect_max_age would make the
            // pool redial at once, for ever: slow down, and say which setting to lower.
            backOff(because: "upstream \(upstream) closed a ready connection after \(age / 1000) s, before"
                + " preconnect_max_age (\(maxAge / 1000) s); lower preconnect_max_age below the gateway's idle limit")
        }
    }

    private func backOff(because reason: String) {
        failuresInARow += 1
        let delay = min(Self.longestBackOffMilliseconds, Self.firstBackOffMilliseconds << min(failuresInARow - 1, 16))
        warn("\(reason); next attempt in \(delay / 1000) s")
        guard !closed, !waitingToRetry else { return }
        waitingToRetry = true
        let timer = retry ?? clock.makeTimer { [weak self] in
            self?.waitingToRetry = false
            self?.refill()
        }
        retry = timer
        timer.schedule(afterMilliseconds: delay)
    }
}

/// One ready connection waiting for a session. It watches its stream: the gateway closing it or
/// sending anything ends it at once, and so does its age.
private final class Spare: BufferedStreamDelegate {
    enum Ending {
        case expired
        case closedByGateway(ageMilliseconds: Int64)
    }

    let ready: Dialer.Ready
    let born: Int64
    private let clock: any SessionClock
    private var expiry: (any SessionTimer)?
    private var onEnd: ((Spare, Ending) -> Void)?

    init(ready: Dialer.Ready, born: Int64, clock: any SessionClock, maxAge: Int64, onEnd: @escaping (Spare, Ending) -> Void) {
        self.ready = ready
        self.born = born
        self.clock = clock
        self.onEnd = onEnd
        ready.stream.delegate = self
        // Reading stays on: a close or an alert must be seen while it waits, not at hand-over.
        ready.stream.enableReading()
        let timer = clock.makeTimer { [weak self] in self?.end(.expired) }
        timer.schedule(afterMilliseconds: maxAge)
        expiry = timer
    }

    /// Handed over or closed by the pool: it reports nothing more.
    func stopWatching() {
        expiry?.cancel()
        onEnd = nil
        if ready.stream.delegate === self { ready.stream.delegate = nil }
    }

    private func end(_ reason: Ending) {
        guard let onEnd else { return }
        stopWatching()
        onEnd(self, reason)
    }

    func streamHasInput(_ stream: BufferedStream) {
        // Application data nobody asked for: not a connection to hand to a session.
        end(.closedByGateway(ageMilliseconds: clock.now - born))
    }

    func streamDrained(_ stream: BufferedStream) {}

    func stream(_ stream: BufferedStream, reported event: StreamEvent) {
        if event != .connected { end(.closedByGateway(ageMilliseconds: clock.now - born)) }
    }
}

/// A spare handed to a session in place of a dial: `start()` reports it ready at once, as a dial
/// that had already finished would.
final class SpareHandOver: Dialing {
    private var taken: SparePool.Taken?
    private var report: ((Dialer.Event) -> Void)?

    init(_ taken: SparePool.Taken, report: @escaping (Dialer.Event) -> Void) {
        self.taken = taken
        self.report = report
    }

    func start() {
        guard let taken, let report else { return }
        self.taken = nil
        self.report = nil
        var ready = taken.ready
        ready.preconnectedMillisecondsAgo = taken.ageMilliseconds
        report(.ready(ready))
    }

    func cancel() {
        report = nil
        taken?.ready.stream.free(sendCloseNotify: true)
        taken = nil
    }
}
