import Testing
@testable import BridgeHTTP

@Suite("Header lines")
struct HeaderLineTests {
    @Test("keeps names as sent and values without surrounding whitespace, in order")
    func namesAndValues() throws {
        let head = try #require(requestHead(post("X-Order:   42 \t\r\ncontent-TYPE:text/plain\r\nX-Empty:\r\n")))
        #expect(head.headers == [
            HTTPHeader(name: "Host", value: "gateway.example"),
            HTTPHeader(name: "X-Order", value: "42"),
            HTTPHeader(name: "content-TYPE", value: "text/plain"),
            HTTPHeader(name: "X-Empty", value: ""),
        ])
    }

    @Test("looks headers up case-insensitively, first match")
    func lookup() throws {
        let head = try #require(requestHead(post("X-A: 1\r\nx-a: 2\r\n")))
        #expect(head.header("X-A") == "1")
        #expect(head.header("HOST") == "gateway.example")
        #expect(head.header("missing") == nil)
    }

    @Test("keeps tabs, spaces and UTF-8 inside values")
    func valueCharacters() throws {
        let head = try #require(requestHead(post("X-Name: Zoë\t Müller\r\n")))
        #expect(head.header("x-name") == "Zoë\t Müller")
    }

    @Test("refuses a bare LF line end with 'lines must end with CRLF'")
    func bareLF() {
        let inHeader = requestError("GET http://a.example/ HTTP/1.1\r\nHost: a\n\r\n")
        #expect(inHeader?.status == 400)
        #expect(inHeader?.reason.contains("lines must end with CRLF") == true)
        let inRequestLine = requestError("GET http://a.example/ HTTP/1.1\nHost: a\r\n\r\n")
        #expect(inRequestLine?.reason.contains("lines must end with CRLF") == true)
        #expect(requestError("GET http://a.example/ HTTP/1.1\r\n\n")?.status == 400)
    }

    @Test("refuses a bare CR anywhere in the head")
    func bareCR() {
        #expect(requestError("GET http://a.example/ HTTP/1.1\r\nX: a\rb\r\n\r\n")?.status == 400)
        #expect(requestError("GET http://a.example/ HTTP/1.1\r\r\n\r\n")?.status == 400)
        #expect(requestError("GET http://a.example/ HTTP/1.1\r\nX: a\r\r\n\r\n")?.status == 400)
    }

    @Test("refuses NUL and other control characters in values, but not HTAB")
    func controlCharacters() {
        for byte in [UInt8](0x00...0x1F).filter({ $0 != 0x09 && $0 != 0x0A && $0 != 0x0D }) + [0x7F] {
            let bytes = Array(post("X: a").utf8.dropLast(2)) + [byte] + Array("b\r\n\r\n".utf8)
            let error = requestError(bytes: bytes)
            #expect(error?.status == 400, "byte \(byte)")
        }
        #expect(requestError(bytes: Array("GET http://a.example/ HTTP/1.1\r\nX: a\u{0}b\r\n\r\n".utf8))?.reason ==
            "header line 1 has a NUL byte in its value")
    }

    @Test("refuses values that are not valid UTF-8")
    func invalidUTF8() {
        let bytes = Array("GET http://a.example/ HTTP/1.1\r\nX: caf".utf8) + [0xE9] + Array("\r\n\r\n".utf8)
        #expect(requestError(bytes: bytes)?.reason == "header line 1 has a value that is not valid UTF-8")
    }

    @Test("refuses whitespace before the colon")
    func whitespaceBeforeColon() {
        #expect(requestError(post("Content-Length : 5\r\n"))?.reason == "header line 2 has whitespace before the colon")
        #expect(requestError(post("Transfer-Encoding\t: chunked\r\n"))?.status == 400)
    }

    @Test("refuses obsolete line folding")
    func obsFold() {
        let error = requestError(post("X-Long: part one\r\n  part two\r\n"))
        #expect(error?.status == 400)
        #expect(error?.reason.contains("line folding") == true)
        #expect(requestError("GET http://a.example/ HTTP/1.1\r\n\tX: a\r\n\r\n")?.status == 400)
    }

    @Test("refuses empty and invalid header names, and lines without a colon", arguments: [
        ": value", "X(1): value", "X@: v", "no colon here", "Ünicode: v", "\"X\": v",
    ])
    func badNames(line: String) {
        #expect(requestError(post("\(line)\r\n"))?.status == 400)
    }

    @Test("numbers header lines in refusals and never quotes their content")
    func reasonsAreSafe() throws {
        let error = try #require(requestError(post("Authorization: Basic c2VjcmV0\r\nX :y\r\n")))
        #expect(error.reason == "header line 3 has whitespace before the colon")
        #expect(!error.reason.contains("c2VjcmV0"))
    }
}
