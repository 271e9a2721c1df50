import Testing
@testable import BridgeHTTP

@Suite("Request line")
struct RequestLineTests {
    @Test("parses a CONNECT request line and its version")
    func connect() throws {
        let head = try #require(requestHead("CONNECT gateway.example:443 HTTP/1.1\r\nHost: gateway.example:443\r\n\r\n"))
        #expect(head.method == "CONNECT")
        #expect(head.target == .authority(host: "gateway.example", port: 443))
        #expect(head.version == .http11)
        #expect(head.headers == [HTTPHeader(name: "Host", value: "gateway.example:443")])
        #expect(head.bodyFraming == .none)
    }

    @Test("accepts HTTP/1.0 and keeps the method's case as sent")
    func http10AndMethodCase() throws {
        let head = try #require(requestHead("get http://a.example/ HTTP/1.0\r\n\r\n"))
        #expect(head.method == "get")
        #expect(head.version == .http10)
    }

    @Test("skips one empty line before the request line, counting it in the head length")
    func skipsOneLeadingEmptyLine() throws {
        let text = "\r\nGET http://a.example/ HTTP/1.1\r\n\r\n"
        let head = try #require(requestHead(text))
        #expect(head.headLength == text.utf8.count)
        #expect(requestError("\r\n\r\nGET http://a.example/ HTTP/1.1\r\n\r\n")?.status == 400)
    }

    @Test("refuses HTTP versions other than 1.0 and 1.1 with 505", arguments: ["HTTP/2.0", "HTTP/1.2", "HTTP/0.9", "HTTP/3.0"])
    func unsupportedVersion(version: String) {
        #expect(requestError("GET http://a.example/ \(version)\r\n\r\n")?.status == 505)
    }

    @Test("refuses a malformed version with 400", arguments: ["http/1.1", "HTTP/1.10", "HTTP/1", "HTTP/1.x", "HTTP1.1", "HTTPS/1.1"])
    func malformedVersion(version: String) {
        let error = requestError("GET http://a.example/ \(version)\r\n\r\n")
        #expect(error == HTTPParseError(status: 400, reason: "the HTTP version is malformed"))
    }

    @Test("refuses a request line without a version (HTTP/0.9 style)")
    func missingVersion() {
        #expect(requestError("GET http://a.example/\r\n\r\n") == HTTPParseError(status: 400, reason: "the request line has no HTTP version"))
        #expect(requestError("GET\r\n\r\n")?.status == 400)
    }

    @Test("refuses spaces inside the target", arguments: [
        "GET http://a.example/a b HTTP/1.1", "GET http://a.example/ HTTP/1.1 ", "GET /a b c HTTP/1.1",
    ])
    func spacesInTarget(line: String) {
        #expect(requestError("\(line)\r\n\r\n")?.reason.contains("more than two spaces") == true)
    }

    @Test("refuses doubled or leading whitespace and tabs as separators", arguments: [
        "GET  http://a.example/ HTTP/1.1", " GET http://a.example/ HTTP/1.1", "GET\thttp://a.example/ HTTP/1.1",
        "GET http://a.example/\tHTTP/1.1",
    ])
    func badSeparators(line: String) {
        #expect(requestError("\(line)\r\n\r\n")?.status == 400)
    }

    @Test("refuses control characters and non-ASCII bytes in the target")
    func controlCharactersInTarget() {
        for byte: UInt8 in [0x00, 0x01, 0x7F, 0x80, 0xC3] {
            let bytes = Array("GET http://a.example/".utf8) + [byte] + Array(" HTTP/1.1\r\n\r\n".utf8)
            #expect(requestError(bytes: bytes)?.status == 400, "byte \(byte)")
        }
    }

    @Test("refuses a method that is not a token")
    func invalidMethod() {
        #expect(requestError("GE(T http://a.example/ HTTP/1.1\r\n\r\n") ==
            HTTPParseError(status: 400, reason: "the method contains an invalid character"))
    }

    @Test("says so when a TLS handshake arrives instead of a request, before the head is complete")
    func tlsHandshake() {
        let clientHelloStart: [UInt8] = [0x16, 0x03, 0x01, 0x02, 0x00, 0x01]
        #expect(requestError(bytes: clientHelloStart)?.reason.contains("TLS handshake") == true)
    }

    @Test("refuses an invalid method as soon as it arrives, without waiting for the line end")
    func earlyRefusal() {
        #expect(requestError("G@T http://a.example/")?.status == 400)
        #expect(isIncomplete(parseRequest("GET http://a.example/")))
    }

    @Test("refuses a target longer than 8 KiB with 414, and accepts exactly 8 KiB")
    func longTarget() {
        let prefix = "http://a.example/"
        let exact = prefix + String(repeating: "a", count: 8192 - prefix.utf8.count)
        #expect(requestHead("GET \(exact) HTTP/1.1\r\n\r\n") != nil)
        let tooLong = requestError("GET \(exact)a HTTP/1.1\r\n\r\n")
        #expect(tooLong?.status == 414)
        // Refused while the line is still arriving, too.
        #expect(requestError("GET \(exact)a")?.status == 414)
    }
}
