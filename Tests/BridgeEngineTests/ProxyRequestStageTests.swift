@testable import BridgeEngine
import BridgeIO
import BridgeModel
import Testing

/// The http-proxy front's stage, driven through real sessions: it waits for a whole head, answers
/// what it refuses without dialling, starts the client's TLS inside a CONNECT tunnel, and checks the
/// credentials of every request on a forwarded connection, not only the first.
@Suite("The http-proxy front's stage", .serialized)
struct ProxyRequestStageTests {
    private let authorization = "Proxy-Authorization: Basic bWVyY2hhbnQ6czNjcmV0\r\n"

    @Test func nothingIsDecidedOrDialledUntilTheHeadIsWhole() throws {
        let harness = try EngineHarness(config: TestConfigs.proxy)
        let (client, session) = harness.connect(listener: "proxy")
        client.send("GET http://gateway.test/pay HTTP/1.1\r\nHost: gateway.test\r\n")
        harness.run(milliseconds: 30)
        #expect(session.phase == .proxyRequest && harness.dials.isEmpty)
        client.send("\r\n")
        harness.run(until: { !harness.dials.isEmpty })
        #expect(harness.dials.first?.destination.name == "gw" && session.requestHost == "gateway.test")
    }

    @Test func aConnectTunnelStartsTheClientsTLSAndRoutesByTheTarget() throws {
        let harness = try EngineHarness(config: TestConfigs.proxy)
        let (client, session) = harness.connect(listener: "proxy")
        client.send("CONNECT other.test:443 HTTP/1.1\r\nHost: other.test:443\r\n\r\n")
        harness.run(until: { session.phase == .downstreamHandshake })
        #expect(client.receivedText() == "HTTP/1.1 200 Connection established\r\n\r\n")
        #expect(session.downstream.isTLS && session.frontRoute == "gw2" && session.connectTarget == "other.test:443")
        #expect(harness.dials.isEmpty, "the gateway was dialled before the merchant's TLS handshake")
    }

    @Test func missingCredentialsAreAnswered407WithoutADial() throws {
        let harness = try EngineHarness(config: TestConfigs.authenticatingProxy)
        let (client, _) = harness.connect(listener: "proxy")
        client.send("CONNECT gateway.test:443 HTTP/1.1\r\n\r\n")
        harness.run(until: { !harness.records.isEmpty })
        #expect(client.receivedText().hasPrefix("HTTP/1.1 407 "))
        #expect(harness.records.first?.close == "refused" && harness.dials.isEmpty)
    }

    @Test func everyForwardedRequestMustCarryTheCredentials() throws {
        let harness = try EngineHarness(config: TestConfigs.authenticatingProxy)
        let (client, _, opened) = harness.open(
            listener: "proxy",
            sending: "GET http://gateway.test/one HTTP/1.1\r\n\(authorization)\r\nGET http://gateway.test/two HTTP/1.1\r\n\r\n")
        let gateway = try #require(opened)
        harness.run(milliseconds: 20)
        // The first request goes (without the credentials); the second, which has none, does not.
        #expect(gateway.receivedText() == "GET /one HTTP/1.1\r\nHost: gateway.test\r\n\r\n")
        gateway.send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        harness.run(until: { !harness.records.isEmpty })
        let answers = client.receivedText()
        #expect(answers.hasPrefix("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 407 "), "\(answers)")
        #expect(harness.records.first?.close == "refused")
    }
}
