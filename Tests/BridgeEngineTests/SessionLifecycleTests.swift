@testable import BridgeEngine
import BridgeIO
import BridgeModel
import Testing

/// A session from accept to record, driven phase by phase: what each failure, timeout, hand-over
/// and drain writes in the record and tells the peers.
@Suite("Session lifecycle", .serialized)
struct SessionLifecycleTests {
    @Test func aDialTimeoutAnswers504AndRecordsThePhase() throws {
        let harness = try EngineHarness(config: TestConfigs.proxy)
        let (client, _, _) = harness.open(listener: "proxy", sending: "GET http://gateway.test/pay HTTP/1.1\r\n\r\n",
                                          connectGateway: false)
        harness.dials[0].fail(.timeout, step: .connect, close: .connectTimeout,
                              error: "no connection to gateway.test:443 within connect_timeout (1s), phase connect")
        harness.run(until: { !harness.records.isEmpty })
        let answer = client.receivedText()
        #expect(answer.hasPrefix("HTTP/1.1 504 "), "\(answer)")
        #expect(answer.contains("gw did not answer in time"))
        let record = try #require(harness.records.first)
        #expect(record.close == "connect_timeout" && record.phase == "connect")
        #expect(record.downstream.httpStatus == 504)
    }

    @Test func aTLSProtocolRefusalIsExplainedInWordsToTheClient() throws {
        let harness = try EngineHarness(config: TestConfigs.proxy)
        let (client, _, _) = harness.open(listener: "proxy", sending: "GET http://gateway.test/pay HTTP/1.1\r\n\r\n",
                                          connectGateway: false)
        harness.dials[0].fail(.handshake(nil), step: .handshake, close: .upstreamError,
                              error: "TLS handshake with gw at 127.0.0.1:443 failed: the upstream closed the connection")
        harness.run(until: { !harness.records.isEmpty })
        #expect(client.receivedText().hasPrefix("HTTP/1.1 502 "))
        #expect(harness.records.first?.phase == "handshake")
    }

    @Test func aRequestForAnotherHostHandsTheConnectionOverAfterTheAnswer() throws {
        let harness = try EngineHarness(config: TestConfigs.proxy)
        let (client, _, opened) = harness.open(
            listener: "proxy", sending: "GET http://gateway.test/one HTTP/1.1\r\n\r\nGET http://other.test/two HTTP/1.1\r\n\r\n")
        let gateway = try #require(opened)
        #expect(gateway.receivedText() == "GET /one HTTP/1.1\r\nHost: gateway.test\r\n\r\n")
        harness.run(milliseconds: 50)
        #expect(harness.records.isEmpty, "handed over before the first answer was delivered")
        gateway.send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        harness.run(until: { !harness.records.isEmpty })
        #expect(client.receivedText() == "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        #expect(harness.records.first?.close == "next_host")
        #expect(harness.handedOver.count == 1)
        // The next request waits, unread by this session, for the next one.
        #expect(harness.handedOver.first?.inputLength == "GET http://other.test/two HTTP/1.1\r\n\r\n".utf8.count)
    }

    @Test func whatTheGatewaySentBeforeClosingIsDeliveredBeforeTheRecord() throws {
        let harness = try EngineHarness(config: TestConfigs.plain)
        let (client, _) = harness.connect(listener: "plain")
        harness.run(until: { !harness.dials.isEmpty })
        let gateway = harness.dials[0].connect()
        client.send("request")
        harness.run(until: { !gateway.receive().bytes.isEmpty })
        // The gateway sends what the path takes while the merchant reads nothing (the bridge's
        // buffer fills and it stops reading the gateway), then closes.
        var sent = 0
        let sendUntil = EventLoop.monotonicMilliseconds() + 1000
        while EventLoop.monotonicMilliseconds() < sendUntil {
            let written = gateway.pushUntilBlocked(limit: 4 * 1024 * 1024 - sent)
            sent += written
            harness.run(milliseconds: 5)
            if written == 0 && sent > 0 { break }
        }
        gateway.close()
        harness.run(milliseconds: 50)
        #expect(harness.records.isEmpty, "the record was written while the answer was still queued for the merchant")
        var received = 0
        var closed = false
        let deadline = EventLoop.monotonicMilliseconds() + 3000
        while !closed, EventLoop.monotonicMilliseconds() < deadline {
            let (bytes, ended) = client.receive()
            received += bytes.count
            closed = ended
            harness.run(milliseconds: 5)
        }
        #expect(sent > 64 * 1024 && received == sent)
        let record = try #require(harness.records.first)
        #expect(record.close == "upstream_eof" && record.bytes.down == sent && record.bytes.up == 7)
    }

    @Test func aMalformedChunkedBodyIsAnswered400AndTheGatewaySeesATruncatedRequest() throws {
        let harness = try EngineHarness(config: TestConfigs.proxy)
        let (client, _, opened) = harness.open(
            listener: "proxy",
            sending: "POST http://gateway.test/pay HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0x5\r\n")
        let gateway = try #require(opened)
        harness.run(until: { !harness.records.isEmpty })
        #expect(client.receivedText().hasPrefix("HTTP/1.1 400 "))
        let forwarded = gateway.receive()
        #expect(forwarded.closed, "the gateway's connection stayed open waiting for the rest of the body")
        #expect(!String(decoding: forwarded.bytes, as: UTF8.self).contains("0x5"), "the malformed line was forwarded")
        let record = try #require(harness.records.first)
        #expect(record.close == "downstream_error" && record.error?.contains("malformed chunked request body") == true)
    }
}
