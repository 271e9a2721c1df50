@testable import BridgeEngine
import BridgeIO
import BridgeModel
import Glibc
import Testing

/// Each phase's time limit, on the harness's hand-moved clock: nothing happens a millisecond
/// before the limit, the session ends at it, and the record names the limit and the phase.
@Suite("Session time limits", .serialized)
struct TimeLimitTests {
    @Test func anIncompleteProxyHeadIsAnswered408AtHeaderTimeout() throws {
        let harness = try EngineHarness(config: TestConfigs.proxy)
        let (client, _) = harness.connect(listener: "proxy")
        client.send("GET http://gateway.test/pay HTTP/1.1\r\nHost: gate")
        harness.run(milliseconds: 20)
        harness.advance(by: 1999)
        #expect(harness.records.isEmpty, "ended before header_timeout (2s)")
        harness.advance(by: 1)
        let record = try #require(harness.records.first)
        #expect(record.close == "header_timeout" && record.phase == "proxy_request")
        #expect(record.durationMs == 2000 && record.downstream.httpStatus == 408)
        #expect(client.receivedText().hasPrefix("HTTP/1.1 408 "))
        #expect(harness.dials.isEmpty, "a gateway was dialled for a request that never arrived")
    }

    @Test func aMerchantThatNeverFinishesItsHandshakeEndsAtHandshakeTimeout() throws {
        let harness = try EngineHarness(config: TestConfigs.proxy)
        let (client, session) = harness.connect(listener: "proxy")
        client.send("CONNECT gateway.test:443 HTTP/1.1\r\n\r\n")
        harness.run(until: { session.phase == .downstreamHandshake })
        #expect(client.receivedText().hasPrefix("HTTP/1.1 200 "))
        harness.advance(by: 1499)
        #expect(harness.records.isEmpty, "ended before handshake_timeout (1500ms)")
        harness.advance(by: 1)
        let record = try #require(harness.records.first)
        #expect(record.close == "handshake_timeout" && record.phase == "downstream_handshake")
        #expect(record.downstream.connect == "gateway.test:443" && harness.dials.isEmpty)
    }

    @Test func aSilentOpenSessionEndsAtIdleTimeoutCountedFromItsLastByte() throws {
        let harness = try EngineHarness(config: TestConfigs.plain)
        let (client, _) = harness.connect(listener: "plain")
        harness.run(until: { !harness.dials.isEmpty })
        let gateway = harness.dials[0].connect()
        harness.run(milliseconds: 10)
        harness.advance(by: 200)
        client.send("ping")
        harness.run(until: { !gateway.receive().bytes.isEmpty })
        // 299 ms after the last byte: still open; the limit counts from it, not from the start.
        harness.advance(by: 299)
        #expect(harness.records.isEmpty, "idle_timeout (300ms) counted from the start, not the last byte")
        harness.advance(by: 1)
        let record = try #require(harness.records.first)
        #expect(record.close == "idle_timeout" && record.phase == "open" && record.durationMs == 500)
        harness.run(milliseconds: 10)
        #expect(client.receive().closed && gateway.receive().closed)
    }

    @Test func aMerchantThatHalfClosedGetsHalfCloseTimeoutForTheAnswer() throws {
        let harness = try EngineHarness(config: TestConfigs.plain)
        let (client, _) = harness.connect(listener: "plain")
        harness.run(until: { !harness.dials.isEmpty })
        let gateway = harness.dials[0].connect()
        client.send("request")
        _ = shutdown(client.fd, Int32(SHUT_WR))
        harness.run(until: { !gateway.receive().bytes.isEmpty })
        harness.run(milliseconds: 20)
        harness.advance(by: 99)
        #expect(harness.records.isEmpty, "ended before half_close_timeout (100ms)")
        harness.advance(by: 1)
        let record = try #require(harness.records.first)
        // The merchant ended first: its end, not the idle limit, is why the session closed.
        #expect(record.close == "downstream_eof" && record.durationMs == 100 && record.bytes.up == 7)
    }

    @Test func aMerchantThatStopsReadingTheRestOfTheAnswerEndsAtIdleTimeout() throws {
        let harness = try EngineHarness(config: TestConfigs.plain)
        let (client, session) = harness.connect(listener: "plain")
        harness.run(until: { !harness.dials.isEmpty })
        let gateway = harness.dials[0].connect()
        // The gateway sends until the merchant's socket is full and the bridge queues the rest
        // (less than buffer_size, so it still reads the gateway and sees it close).
        let chunk = [UInt8](repeating: 0x61, count: 16 * 1024)
        var sent = 0
        for _ in 0..<1000 where session.downstream.outputLength == 0 {
            sent += gateway.send(chunk)
            harness.run(milliseconds: 2)
        }
        #expect(session.downstream.outputLength > 0, "the merchant's socket never filled")
        gateway.close()
        harness.run(until: { session.phase == .drain })
        #expect(session.phase == .drain, "the session did not start delivering what was queued")
        harness.advance(by: 299)
        #expect(harness.records.isEmpty, "ended before idle_timeout while delivering")
        harness.advance(by: 1)
        let record = try #require(harness.records.first)
        #expect(record.close == "upstream_eof" && record.phase == "open")
        #expect(record.error?.contains("stopped reading") == true, "\(record.error ?? "no error")")
        #expect(record.bytes.down < sent, "bytes never delivered were counted as delivered")
        _ = client
    }

    // MARK: Framed requests (client_address_header): each head has header_timeout

    /// A notification whose head trickles in a byte at a time: every byte is activity, so only
    /// header_timeout, counted from the session's opening, ends it, with a 408, and the merchant's
    /// server has seen nothing of the head.
    @Test func aTrickledNotificationHeadIsAnswered408AtHeaderTimeout() throws {
        let harness = try EngineHarness(config: TestConfigs.notify)
        let (client, _) = harness.connect(listener: "notify", skippingTLS: true)
        harness.run(until: { !harness.dials.isEmpty })
        let shop = harness.dials[0].connect()
        harness.run(milliseconds: 10)
        for byte in "POST /notify HTTP/1.1\r\nHost: sh".utf8.prefix(4) {
            client.send([byte])
            harness.run(milliseconds: 10)
            harness.advance(by: 499)
        }
        #expect(harness.records.isEmpty, "ended before header_timeout (2s)")
        harness.advance(by: 4)
        let record = try #require(harness.records.first)
        #expect(record.close == "header_timeout" && record.durationMs == 2000 && record.downstream.httpStatus == 408)
        #expect(client.receivedText().hasPrefix("HTTP/1.1 408 "))
        #expect(shop.receive().bytes.isEmpty, "a partial head reached the merchant's server")
    }

    /// A peer that opens a notification connection and sends nothing gets 408 at header_timeout,
    /// not the longer idle_timeout.
    @Test func aSilentNotificationConnectionEndsAtHeaderTimeout() throws {
        let harness = try EngineHarness(config: TestConfigs.notify)
        let (client, _) = harness.connect(listener: "notify", skippingTLS: true)
        harness.run(until: { !harness.dials.isEmpty })
        let shop = harness.dials[0].connect()
        harness.run(milliseconds: 10)
        harness.advance(by: 1999)
        #expect(harness.records.isEmpty, "ended before header_timeout (2s)")
        harness.advance(by: 1)
        let record = try #require(harness.records.first)
        #expect(record.close == "header_timeout" && record.downstream.httpStatus == 408)
        #expect(client.receivedText().hasPrefix("HTTP/1.1 408 "))
        #expect(shop.receive().bytes.isEmpty)
    }

    /// Between keep-alive requests the peer may wait up to idle_timeout; once the next head
    /// begins, it has header_timeout from its first byte.
    @Test func aKeepAliveConnectionWaitsIdleButTheNextHeadHasHeaderTimeout() throws {
        let harness = try EngineHarness(config: TestConfigs.notify)
        let (client, _) = harness.connect(listener: "notify", skippingTLS: true)
        harness.run(until: { !harness.dials.isEmpty })
        let shop = harness.dials[0].connect()
        client.send("POST /notify HTTP/1.1\r\nHost: shop\r\nContent-Length: 2\r\n\r\nok")
        harness.run(until: { shop.receivedText().hasSuffix("ok") })
        shop.send("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        harness.run(until: { client.receivedText().hasPrefix("HTTP/1.1 200") })
        harness.advance(by: 3000)
        #expect(harness.records.isEmpty, "a keep-alive connection between requests was held to header_timeout")
        client.send("POST /notify HTTP/1.1\r\nHo")
        harness.run(milliseconds: 20)
        harness.advance(by: 1999)
        #expect(harness.records.isEmpty, "the second head's header_timeout did not count from its first byte")
        harness.advance(by: 1)
        let record = try #require(harness.records.first)
        #expect(record.close == "header_timeout" && record.downstream.httpStatus == 408)
    }
}
