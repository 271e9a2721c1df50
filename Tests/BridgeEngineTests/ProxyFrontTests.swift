@testable import BridgeEngine
import BridgeHTTP
import BridgeModel
import Testing

/// What an http-proxy listener does with a client's first head, decided without any I/O: only
/// routed names on routed ports, answers with the reason, the record's target named even when refused.
@Suite("The http-proxy front's decision")
struct ProxyFrontTests {
    private let listener: ListenerConfig = {
        let config = try! ConfigLoader.parse("""
            [[upstream]]
            name = "gw"
            address = "gateway.test:443"

            [[upstream]]
            name = "module"
            address = "module.test:8443"

            [[listener]]
            name = "proxy"
            listen = "127.0.0.1:18080"
            accept = "http-proxy"
            ca_cert = "\(TestConfigs.mintCA)/ca.pem"
            ca_key = "\(TestConfigs.mintCA)/ca.key"

            [listener.routes]
            "gateway.test" = "gw"
            "module.test:8443" = "module"
            """, baseDirectory: nil)
        return config.listeners[0]
    }()

    private func decide(_ head: String, authorized: Bool = true) -> (ProxyFront.Decision, String?, String?) {
        let bytes = Array(head.utf8)
        guard case .complete(let parsed) = bytes.withUnsafeBytes({ ProxyRequestParser.parse($0) }) else {
            fatalError("test head does not parse: \(head)")
        }
        let result = ProxyFront.decide(parsed, listener: listener, authorized: authorized)
        return (result.decision, result.connectTarget, result.requestHost)
    }

    @Test func connectToARoutedNameOnItsPortOpensATunnel() {
        let (decision, target, _) = decide("CONNECT gateway.test:443 HTTP/1.1\r\n\r\n")
        #expect(decision == .tunnel(host: "gateway.test", upstream: "gw"))
        #expect(target == "gateway.test:443")
        #expect(decide("CONNECT module.test:8443 HTTP/1.1\r\n\r\n").0 == .tunnel(host: "module.test", upstream: "module"))
    }

    @Test func connectAnywhereElseIs403NamingTheTarget() {
        for head in ["CONNECT gateway.test:8443 HTTP/1.1\r\n\r\n", "CONNECT evil.test:443 HTTP/1.1\r\n\r\n",
                     "CONNECT module.test:443 HTTP/1.1\r\n\r\n", "CONNECT 127.0.0.1:443 HTTP/1.1\r\n\r\n"] {
            let (decision, target, _) = decide(head)
            guard case .answer(403, let reason, .refused) = decision else {
                Issue.record("\(head.debugDescription) → \(decision)")
                continue
            }
            #expect(reason.contains(target ?? "-"), "\(reason)")
        }
    }

    @Test func absoluteFormIsForwardedOnlyOnRoutedPorts() {
        #expect(decide("GET http://gateway.test/pay HTTP/1.1\r\n\r\n").0 == .forward(host: "gateway.test", port: 80, upstream: "gw"))
        #expect(decide("GET http://gateway.test:443/pay HTTP/1.1\r\n\r\n").0
            == .forward(host: "gateway.test", port: 443, upstream: "gw"))
        let (refused, _, host) = decide("GET http://gateway.test:8080/pay HTTP/1.1\r\n\r\n")
        #expect(host == "gateway.test:8080")
        guard case .answer(403, _, .refused) = refused else {
            Issue.record("port 8080 was not refused: \(refused)")
            return
        }
    }

    @Test func whatTheBridgeNeverForwardsGetsItsOwnAnswer() {
        #expect(decide("GET https://gateway.test/pay HTTP/1.1\r\n\r\n").0.status == 400)
        #expect(decide("TRACE http://gateway.test/ HTTP/1.1\r\n\r\n").0.status == 405)
        #expect(decide("GET /pay HTTP/1.1\r\nHost: gateway.test\r\n\r\n").0.status == 400)
        #expect(decide("GET http://gateway.test/pay HTTP/1.1\r\n\r\n", authorized: false).0.status == 407)
    }
}

extension ProxyFront.Decision {
    /// The status of the bridge's own answer, or nil when it forwards or tunnels.
    var status: Int? {
        if case .answer(let status, _, _) = self { return status }
        return nil
    }
}
