@testable import BridgeEngine
import BridgeIO
import Testing

/// The property behind issue #13's memory DoS, for every session state the engine has: a client
/// that keeps sending what the bridge is not consuming makes the bridge stop reading; it never
/// buffers more than its input limit, and the rest waits in the kernel (the client's socket
/// blocks). Each case drives a real session into one state, then pushes.
@Suite("Reading pauses in every state", .serialized)
struct ReadingPausesTests {
    /// One read past the limit is allowed (16 KiB less a chain header).
    private static let oneRead = 16 * 1024
    /// What two socket buffers (client's send, bridge's receive) may hold, generously.
    private static let kernelSlack = 2 * 1024 * 1024

    /// Pushes until the client's socket blocks, lets the loop run, pushes again, and checks what the
    /// session holds and that the client was stopped.
    private func assertReadingPauses(_ harness: EngineHarness, _ client: Peer, _ session: Session,
                                     _ state: String, sourceLocation: SourceLocation = #_sourceLocation) {
        var pushed = 0
        for _ in 0..<6 {
            pushed += client.pushUntilBlocked()
            harness.run(milliseconds: 20)
        }
        let held = session.downstream.inputLength + (session.upstream?.outputLength ?? 0)
        let bound = 2 * session.inputLimit + Self.oneRead
        #expect(held <= bound, "\(state): the session holds \(held) bytes, more than \(bound)", sourceLocation: sourceLocation)
        #expect(pushed < bound + Self.kernelSlack,
                "\(state): the client pushed \(pushed) bytes and never blocked: the bridge kept reading",
                sourceLocation: sourceLocation)
    }

    @Test func whileTheGatewayIsBeingDialled() throws {
        let harness = try EngineHarness(config: TestConfigs.proxy)
        let (client, session, _) = harness.open(
            listener: "proxy", sending: "POST http://gateway.test/pay HTTP/1.1\r\nContent-Length: 100000000\r\n\r\n",
            connectGateway: false)
        #expect(session.phase == .resolve)
        assertReadingPauses(harness, client, session, "dialling")
    }

    @Test func afterTheLastRequestOfAConnectionCloseClient() throws {
        let harness = try EngineHarness(config: TestConfigs.proxy)
        let (client, session, gateway) = harness.open(
            listener: "proxy", sending: "GET http://gateway.test/big HTTP/1.1\r\nConnection: close\r\n\r\n")
        #expect(gateway?.receivedText().hasPrefix("GET /big HTTP/1.1\r\n") == true)
        #expect(session.phase == .open)
        assertReadingPauses(harness, client, session, "after Connection: close")
    }

    @Test func whileAChunkedTrailerNeverEnds() throws {
        let harness = try EngineHarness(config: TestConfigs.proxy)
        let (client, session, gateway) = harness.open(
            listener: "proxy",
            sending: "POST http://gateway.test/pay HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-Trailer: ")
        var pushed = 0
        for _ in 0..<6 {
            pushed += client.pushUntilBlocked()
            harness.run(milliseconds: 20)
        }
        // Past 16 KiB of trailers the body is refused: answered, never buffered.
        #expect(client.receivedText().hasPrefix("HTTP/1.1 400 "))
        #expect(pushed < session.inputLimit + 2 * 1024 * 1024)
        harness.run(until: { !harness.records.isEmpty })
        #expect(harness.records.first?.close == "downstream_error")
        withExtendedLifetime(gateway) {}
    }

    @Test func whileTheGatewayReadsNothing() throws {
        let harness = try EngineHarness(config: TestConfigs.proxy)
        let (client, session, gateway) = harness.open(
            listener: "proxy", sending: "POST http://gateway.test/pay HTTP/1.1\r\nContent-Length: 1000000000\r\n\r\n")
        assertReadingPauses(harness, client, session, "gateway not reading")
        withExtendedLifetime(gateway) {}
    }

    @Test func whileTheMostRequestsAllowedAwaitAnswers() throws {
        let harness = try EngineHarness(config: TestConfigs.proxy)
        let request = "GET http://gateway.test/a HTTP/1.1\r\n\r\n"
        let (client, session, gateway) = harness.open(listener: "proxy", sending: request)
        // Pipelined requests that the gateway reads and never answers.
        for _ in 0..<200 {
            client.send(request)
            harness.run(milliseconds: 1)
            _ = gateway?.receive()
        }
        #expect(session.forwarder?.waitsForAnswers == true)
        assertReadingPauses(harness, client, session, "requests in flight at the limit")
    }

    @Test func onAPlainListenerWhoseGatewayReadsNothing() throws {
        let harness = try EngineHarness(config: TestConfigs.plain)
        let (client, session) = harness.connect(listener: "plain")
        harness.run(until: { !harness.dials.isEmpty })
        assertReadingPauses(harness, client, session, "plain, dialling")
        let gateway = harness.dials[0].connect()
        harness.run(milliseconds: 20)
        assertReadingPauses(harness, client, session, "plain, gateway not reading")
        withExtendedLifetime(gateway) {}
    }
}
