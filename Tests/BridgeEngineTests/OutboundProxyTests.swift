@testable import BridgeEngine
import BridgeModel
import Glibc
import Testing

/// What the bridge says to the merchant's outbound proxy and how it reads the answer: any 2xx opens
/// the tunnel, 1xx is skipped, everything else is refused in words naming the target.
@Suite("Outbound proxy exchange")
struct OutboundProxyTests {
    private let target = HostPort(host: "sandbox.paygent.test", port: 443)

    private func proxy(credentials: String? = nil) throws -> OutboundProxy {
        var path: String?
        if let credentials {
            var template = Array("/tmp/tls-bridge-via-XXXXXX".utf8CString)
            let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
            _ = credentials.withCString { write(fd, $0, strlen($0)) }
            close(fd)
            path = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        }
        defer { if let path { unlink(path) } }
        return try OutboundProxy(address: HostPort(host: "127.0.0.1", port: 3128), credentialsFile: path,
                                 key: "upstream[gw].via_credentials")
    }

    private func answer(_ text: String, credentials: String? = nil) throws -> OutboundProxy.Answer {
        let via = try proxy(credentials: credentials)
        return Array(text.utf8).withUnsafeBytes { via.answer($0, target: target) }
    }

    @Test func theRequestNamesTheTargetAndCarriesCredentialsOnlyWhenConfigured() throws {
        #expect(String(decoding: try proxy().connectRequest(to: target), as: UTF8.self)
            == "CONNECT sandbox.paygent.test:443 HTTP/1.1\r\nHost: sandbox.paygent.test:443\r\n\r\n")
        let withCredentials = String(decoding: try proxy(credentials: "# for the DMZ proxy\nmerchant:s3cret\n")
            .connectRequest(to: target), as: UTF8.self)
        #expect(withCredentials.contains("\r\nProxy-Authorization: Basic bWVyY2hhbnQ6czNjcmV0\r\n"))
    }

    @Test func aCredentialsFileMustHoldExactlyOnePair() throws {
        #expect(throws: ConfigError.self) { try proxy(credentials: "a:b\nc:d\n") }
        #expect(throws: ConfigError.self) { try proxy(credentials: "no-colon\n") }
    }

    @Test func anyTwoHundredOpensTheTunnelAfterItsHead() throws {
        #expect(try answer("HTTP/1.1 200 Connection established\r\n\r\n") == .tunnel(headLength: 39))
        #expect(try answer("HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\n") == .tunnel(headLength: 38))
        #expect(try answer("HTTP/1.1 200 Connection estab") == .incomplete)
        #expect(try answer("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n") == .interim(headLength: 25))
    }

    @Test func refusalsSayWhatTheProxyWantedAndForWhichTarget() throws {
        #expect(try answer("HTTP/1.1 403 Forbidden\r\n\r\n") == .refused("refused CONNECT sandbox.paygent.test:443: 403 Forbidden"))
        #expect(try answer("HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"dmz\"\r\n\r\n")
            == .refused("wants credentials (Basic realm=\"dmz\") for CONNECT sandbox.paygent.test:443: 407 Proxy"
                + " Authentication Required; set via_credentials"))
        guard case .refused(let rejected) = try answer("HTTP/1.1 407 No\r\n\r\n", credentials: "merchant:s3cret\n") else {
            Issue.record("a 407 opened the tunnel")
            return
        }
        #expect(rejected.hasPrefix("rejected the credentials in via_credentials") && !rejected.contains("s3cret"))
        #expect(try answer("HTTP/1.1 502 Bad Gateway\r\n\r\n") == .refused("answered CONNECT sandbox.paygent.test:443 with 502 Bad Gateway"))
    }

    /// A Windows domain proxy that offers only NTLM and Negotiate: the bridge cannot answer either,
    /// and says so, with or without via_credentials, rather than blaming the password.
    @Test func aProxyThatOffersOnlySchemesOtherThanBasicIsNamedAsSuch() throws {
        let ntlmOnly = "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: NTLM\r\n"
            + "Proxy-Authenticate: Negotiate\r\n\r\n"
        for credentials in [nil, "merchant:s3cret\n"] {
            guard case .refused(let said) = try answer(ntlmOnly, credentials: credentials) else {
                Issue.record("a 407 opened the tunnel")
                return
            }
            #expect(said.hasPrefix("wants NTLM or Negotiate authentication for CONNECT sandbox.paygent.test:443: 407"), "\(said)")
            #expect(said.contains("the bridge speaks only Basic") && !said.contains("rejected the credentials"), "\(said)")
        }
        // Basic among several: then the credentials are what is wrong.
        let withBasic = "HTTP/1.1 407 No\r\nProxy-Authenticate: Negotiate\r\nProxy-Authenticate: Basic realm=\"dmz\"\r\n\r\n"
        guard case .refused(let said) = try answer(withBasic, credentials: "merchant:s3cret\n") else { return }
        #expect(said.hasPrefix("rejected the credentials in via_credentials") && said.contains("Basic realm=\"dmz\""), "\(said)")
    }

    /// The password is the rest of the line, spaces included; the user must not be empty.
    @Test func aPasswordKeepsItsSpacesAndAnEmptyUserIsNamed() throws {
        let request = String(decoding: try proxy(credentials: "  merchant:s3cret \r\n").connectRequest(to: target), as: UTF8.self)
        // base64("merchant:s3cret ")
        #expect(request.contains("Proxy-Authorization: Basic bWVyY2hhbnQ6czNjcmV0IA==\r\n"), "\(request)")
        let error = #expect(throws: ConfigError.self) { try proxy(credentials: ":s3cret\n") }
        let message = error?.message ?? ""
        #expect(message.contains("line 1") && message.contains("no user name") && !message.contains("s3cret"), "\(message)")
    }

    @Test func garbageAndOverLongHeadsAreRefused() throws {
        guard case .refused(let garbage) = try answer("SSH-2.0-OpenSSH_9.2\r\n") else {
            Issue.record("garbage was not refused")
            return
        }
        #expect(garbage.contains("that is not HTTP"))
        let long = "HTTP/1.1 200 OK\r\n" + String(repeating: "X-Filler: " + String(repeating: "a", count: 100) + "\r\n", count: 200)
        guard case .refused(let tooLong) = try answer(long) else {
            Issue.record("a 20 KiB head was not refused")
            return
        }
        #expect(tooLong.contains("over 16 KiB"), "\(tooLong)")
    }
}
