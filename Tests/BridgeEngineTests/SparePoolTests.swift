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
        private(set) var warnings: [String] = []
        private(set) var pool: SparePool!

        init(count: Int, maxAge: Duration = .seconds(15)) throws {
            harness = try EngineHarness(config: TestConfigs.plain)
            let destination = Destination.upstream(harness.runtime.upstreams["gw"]!)
            pool = SparePool(upstream: "gw", count: count, maxAge: maxAge, clock: harness.manualClock,
                             dial: { [unowned self] report in
                                 let dial = StandInDial(destination: destination, loop: self.harness.loop, report: report)
                                 self.dials.append(dial)
                                 return dial
                             }, warn: { [unowned self] in self.warnings.append($0) })
        }

        deinit { pool.close() }

        /// The gateway accepts every dial still waiting; returns its ends.
        func connectAll() -> [Peer] {
            dials.filter { $0.started && !$0.cancelled && !$0.answered }.map { $0.connect() }
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
}
