@testable import BridgeEngine
import BridgeIO
import BridgeModel
import Testing

/// `preconnect`: how many spares are kept, when they are replaced, that a spare the gateway closed
/// or spoke on is never handed to a session, and how failures slow the pool down. The gateway's end
/// of each spare is a socket the test holds; time moves only when the test moves it.
@Suite("Spare upstream connections", .serialized)
struct SparePoolTests {
    private final class Fixture {
        let harness: EngineHarness
        private(set) var dials: [StandInDial] = []
        /// When each dial started (the clock's time), by index in `dials`.
        private(set) var dialStarts: [Int64] = []
        private(set) var warnings: [String] = []
        private(set) var events: [String] = []
        private(set) var pool: SparePool!

        /// Spares counted against `room` (max_sessions' room left), when the test sets one.
        private(set) var sparesCounted = 0

        init(count: Int, maxAge: Duration = .seconds(15), room: Int = .max) throws {
            harness = try EngineHarness(config: TestConfigs.plain)
            let destination = Destination.upstream(harness.runtime.upstreams["gw"]!)
            pool = SparePool(upstream: "gw", count: count, maxAge: maxAge, clock: harness.manualClock,
                             dial: { [unowned self] report in
                                 let dial = StandInDial(destination: destination, loop: self.harness.loop, report: report)
                                 self.dials.append(dial)
                                 self.dialStarts.append(self.harness.manualClock.now)
                                 return dial
                             }, warn: { [unowned self] in self.warnings.append($0) },
                             observe: { [weak self] in self?.events.append("\($0)") },
                             reserveSpare: { [weak self] in
                                 guard let self, self.sparesCounted < room else { return false }
                                 self.sparesCounted += 1
                                 return true
                             },
                             releaseSpares: { [weak self] in self?.sparesCounted -= $0 })
        }

        deinit { pool.close() }

        /// The gateway accepts every dial still waiting; returns its ends.
        func connectAll() -> [Peer] {
            dials.filter { $0.started && !$0.cancelled && !$0.answered }.map { $0.connect() }
        }

        /// The gateway accepts the dials that started at least `milliseconds` ago: a dial takes that long.
        func connectDials(olderThan milliseconds: Int64) -> [Peer] {
            let now = harness.manualClock.now
            return zip(dials, dialStarts).filter { dial, started in
                dial.started && !dial.cancelled && !dial.answered && now - started >= milliseconds
            }.map { dial, _ in dial.connect() }
        }
    }

    @Test func itKeepsTheCountAndDialsAgainAfterEachTake() throws {
        let fixture = try Fixture(count: 2)
        fixture.pool.start()
        #expect(fixture.dials.count == 2)
        let gateways = fixture.connectAll()
        #expect(fixture.pool.readyCount == 2 && fixture.dials.count == 2)
        let taken = try #require(fixture.pool.take())
        #expect(taken.ageMilliseconds == 0 && fixture.pool.readyCount == 1)
        #expect(fixture.dials.count == 3, "no new spare was dialled after a hand-over")
        taken.ready.stream.free(sendCloseNotify: false)
        _ = gateways
    }

    @Test func aSpareIsClosedAndReplacedAtItsMaximumAge() throws {
        let fixture = try Fixture(count: 1, maxAge: .seconds(15))
        fixture.pool.start()
        let gateway = try #require(fixture.connectAll().first)
        fixture.harness.advance(by: 14_999)
        #expect(fixture.pool.readyCount == 1 && fixture.dials.count == 1)
        fixture.harness.advance(by: 1)
        #expect(fixture.pool.readyCount == 0 && fixture.dials.count == 2, "the expired spare was not replaced")
        fixture.harness.run(milliseconds: 20)
        #expect(gateway.receive().closed, "the gateway's end of the expired spare is still open")
        #expect(fixture.warnings.isEmpty)
    }

    @Test func aSpareTheGatewayClosedIsNeverHandedOverEvenBeforeTheLoopNoticed() throws {
        let fixture = try Fixture(count: 1)
        fixture.pool.start()
        let gateway = try #require(fixture.connectAll().first)
        gateway.close()
        // No loop turn: the stream has not reported the close yet; the check at hand-over sees it.
        #expect(fixture.pool.take() == nil)
        #expect(fixture.dials.count == 2)
    }

    @Test func aSpareTheGatewaySpokeOnIsNeverHandedOver() throws {
        let fixture = try Fixture(count: 1)
        fixture.pool.start()
        let gateway = try #require(fixture.connectAll().first)
        gateway.send("HTTP/1.1 408 Request Timeout\r\n\r\n")
        #expect(fixture.pool.take() == nil)
    }

    @Test func aSpareClosedWhileWaitingIsDroppedAndThePoolBacksOff() throws {
        let fixture = try Fixture(count: 1)
        fixture.pool.start()
        let gateway = try #require(fixture.connectAll().first)
        fixture.harness.advance(by: 5000)
        gateway.close()
        fixture.harness.run(milliseconds: 20)
        #expect(fixture.pool.readyCount == 0 && fixture.dials.count == 1, "redialled at once a gateway that drops idle connections")
        #expect(fixture.warnings.first?.contains("lower preconnect_max_age") == true, "\(fixture.warnings)")
        fixture.harness.advance(by: 1000)
        #expect(fixture.dials.count == 2)
    }

    @Test func failedDialsAreRetriedAfterADoublingPauseUpToAMinute() throws {
        let fixture = try Fixture(count: 1)
        fixture.pool.start()
        var waits: [Int64] = []
        for _ in 0..<8 {
            let before = fixture.dials.count
            fixture.dials.last!.fail(.connect, step: .connect, close: .upstreamError, error: "Connection refused")
            var waited: Int64 = 0
            while fixture.dials.count == before && waited < 120_000 {
                fixture.harness.manualClock.advance(by: 500)
                waited += 500
            }
            waits.append(waited)
        }
        #expect(waits == [1000, 2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000])
        #expect(fixture.warnings.count == 8 && fixture.warnings[0].contains("Connection refused"))
    }

    @Test func closingThePoolClosesItsSparesAndCancelsItsDials() throws {
        let fixture = try Fixture(count: 2)
        fixture.pool.start()
        let gateway = try #require(fixture.connectAll().first)
        fixture.dials.last!.fail(.connect, step: .connect, close: .upstreamError, error: "refused")
        fixture.pool.close()
        fixture.harness.run(milliseconds: 20)
        #expect(gateway.receive().closed)
        fixture.harness.advance(by: 120_000)
        #expect(fixture.dials.count == 2, "a closed pool dialled again")
    }

    /// Calls every 3 s with a 300 ms dial: a spare is always remade long before the next call, so
    /// the pool keeps `preconnect` (one) and the gateway holds no connection that is not needed.
    @Test func sporadicCallsKeepThePoolAtPreconnect() throws {
        let fixture = try Fixture(count: 1)
        fixture.pool.start()
        var gateways: [Peer] = []
        var hits = 0
        for _ in 0..<8 {
            for _ in 0..<10 {
                fixture.harness.manualClock.advance(by: 300)
                gateways += fixture.connectDials(olderThan: 300)
            }
            if let taken = fixture.pool.take() {
                hits += 1
                taken.ready.stream.free(sendCloseNotify: false)
            }
            #expect(fixture.pool.keptCount == 1)
        }
        #expect(hits == 8 && fixture.dials.count == 9, "\(hits) hits, \(fixture.dials.count) dials")
        _ = gateways
    }

    /// 10 calls a second with a 300 ms dial (a distant gateway): one spare could serve one call in
    /// three. The pool grows to the calls expected during a dial (3) with headroom, and the calls
    /// find spares; once the calls stop it falls back to `preconnect` as spares expire.
    @Test func thePoolGrowsWithTheCallRateAndFallsBackWhenCallsStop() throws {
        let fixture = try Fixture(count: 1, maxAge: .seconds(15))
        fixture.pool.start()
        var gateways: [Peer] = []
        var hits: [Bool] = []
        for _ in 0..<60 {
            fixture.harness.manualClock.advance(by: 100)
            gateways += fixture.connectDials(olderThan: 300)
            let taken = fixture.pool.take()
            hits.append(taken != nil)
            taken?.ready.stream.free(sendCloseNotify: false)
        }
        // 1 + ceil(1.5 × 10/s × 0.3 s) = 6.
        #expect(fixture.pool.wantedCount() == 6 && fixture.pool.keptCount == 6)
        #expect(hits.suffix(30).allSatisfy { $0 }, "calls at a steady rate missed spares: \(hits.map { $0 ? 1 : 0 })")
        #expect(hits.prefix(10).contains(false), "the test's rate never outran one spare")
        // The calls stop: after the window the pool wants one; extra spares expire and are not replaced.
        for _ in 0..<200 {
            fixture.harness.manualClock.advance(by: 100)
            gateways += fixture.connectDials(olderThan: 300)
        }
        #expect(fixture.pool.wantedCount() == 1 && fixture.pool.keptCount == 1, "kept \(fixture.pool.keptCount)")
        #expect(fixture.events.contains("expired"))
        _ = gateways
    }

    @Test func theGrowthIsCappedAtMostSpares() throws {
        let fixture = try Fixture(count: 1)
        fixture.pool.start()
        var gateways: [Peer] = []
        // 100 calls a second with a 1 s dial would want 151.
        for _ in 0..<300 {
            fixture.harness.manualClock.advance(by: 10)
            gateways += fixture.connectDials(olderThan: 1000)
            fixture.pool.take()?.ready.stream.free(sendCloseNotify: false)
        }
        #expect(fixture.pool.wantedCount() == SparePool.mostSpares && fixture.pool.keptCount <= SparePool.mostSpares)
        _ = gateways
    }

    /// Spares only use the room sessions leave under max_sessions: with room for two, a pool that
    /// wants six keeps two, and every spare handed over, expired or closed gives its place back.
    @Test func sparesStayWithinTheRoomMaxSessionsLeaves() throws {
        let fixture = try Fixture(count: 1, room: 2)
        fixture.pool.start()
        var gateways: [Peer] = []
        for _ in 0..<60 {
            fixture.harness.manualClock.advance(by: 100)
            gateways += fixture.connectDials(olderThan: 300)
            fixture.pool.take()?.ready.stream.free(sendCloseNotify: false)
            #expect(fixture.pool.keptCount <= 2 && fixture.sparesCounted == fixture.pool.keptCount)
        }
        #expect(fixture.pool.wantedCount() == 6 && fixture.pool.keptCount == 2)
        fixture.pool.close()
        #expect(fixture.sparesCounted == 0, "closing the pool kept \(fixture.sparesCounted) places")
        _ = gateways
    }
}
