import Testing
@testable import BridgeHTTP

/// A notification on its way to the merchant's web server: every client-address header the peer sent
/// is gone, whatever its letter case or count, and exactly one, the bridge's, is there; nothing else
/// of the head changes.
@Suite("Setting the client's address for an origin server")
struct ClientAddressRewriteTests {
    private let names = ["X-Forwarded-For", "X-Real-IP", "Forwarded", "Client-IP"]

    private func rewrite(_ text: String, header: String = "X-Forwarded-For", value: String = "127.0.0.2") throws -> String {
        let head = try #require(requestHead(text))
        return String(decoding: head.rewrittenForOriginServer(setting: header, to: value, removing: names), as: UTF8.self)
    }

    @Test func theRequestLineAndOtherHeadersStayAsSent() throws {
        let text = "POST /notify?id=7 HTTP/1.0\r\nHost: merchant.example\r\nConnection: keep-alive\r\nContent-Length: 4\r\n\r\n"
        #expect(try rewrite(text) == "POST /notify?id=7 HTTP/1.0\r\nHost: merchant.example\r\nConnection: keep-alive\r\n"
            + "Content-Length: 4\r\nX-Forwarded-For: 127.0.0.2\r\n\r\n")
    }

    @Test func everySpoofedAddressHeaderIsRemovedWhateverItsCase() throws {
        let text = "POST /notify HTTP/1.1\r\nHost: m\r\nx-forwarded-for: 203.0.113.9\r\nX-FORWARDED-FOR: 203.0.113.9, 10.0.0.1\r\n"
            + "forwarded: for=203.0.113.9\r\nX-Real-Ip: 203.0.113.9\r\nX-Keep: yes\r\n\r\n"
        let rewritten = try rewrite(text)
        #expect(!rewritten.contains("203.0.113.9") && !rewritten.lowercased().contains("forwarded:"))
        #expect(rewritten == "POST /notify HTTP/1.1\r\nHost: m\r\nX-Keep: yes\r\nX-Forwarded-For: 127.0.0.2\r\n\r\n")
    }

    @Test func theOtherKindsOfHeader() throws {
        let text = "GET / HTTP/1.1\r\nHost: m\r\nX-Forwarded-For: 203.0.113.9\r\n\r\n"
        #expect(try rewrite(text, header: "X-Real-IP") == "GET / HTTP/1.1\r\nHost: m\r\nX-Real-IP: 127.0.0.2\r\n\r\n")
        #expect(try rewrite(text, header: "Forwarded", value: "for=\"[2001:db8::1]\"")
            == "GET / HTTP/1.1\r\nHost: m\r\nForwarded: for=\"[2001:db8::1]\"\r\n\r\n")
    }

    @Test func anAbsoluteFormTargetGoesInOriginForm() throws {
        #expect(try rewrite("GET http://merchant.example/notify HTTP/1.1\r\nHost: merchant.example\r\n\r\n")
            == "GET /notify HTTP/1.1\r\nHost: merchant.example\r\nX-Forwarded-For: 127.0.0.2\r\n\r\n")
    }

    /// PHP and IIS give `X_Real_IP` to the application as `HTTP_X_REAL_IP`, the same as `X-Real-IP`:
    /// an underscore spelling must go too, or it would spoof the header the bridge sets.
    @Test func underscoreSpellingsAreRemovedToo() throws {
        let text = "POST /notify HTTP/1.1\r\nHost: m\r\nX_Real_IP: 203.0.113.9\r\nx_forwarded_for: 203.0.113.9\r\n"
            + "CLIENT_IP: 203.0.113.9\r\nX_Keep: yes\r\n\r\n"
        #expect(try rewrite(text, header: "X-Real-IP")
            == "POST /notify HTTP/1.1\r\nHost: m\r\nX_Keep: yes\r\nX-Real-IP: 127.0.0.2\r\n\r\n")
    }
}
