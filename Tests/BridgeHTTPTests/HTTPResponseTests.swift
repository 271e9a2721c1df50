import Testing
@testable import BridgeHTTP

@Suite("Responses the bridge writes")
struct HTTPResponseTests {
    private func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

    @Test("writes a complete, closing error response with the reason as a plain-text body")
    func errorResponse() {
        #expect(text(HTTPResponse.error(status: 400, reason: "the request line has no HTTP version")) ==
            "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 37\r\nConnection: close\r\n\r\n" +
            "the request line has no HTTP version\n")
    }

    @Test("counts the body in bytes, not characters")
    func contentLengthInBytes() throws {
        let bytes = HTTPResponse.error(status: 502, reason: "Zahlungs-Gateway für Händler")
        let head = try #require(responseHead(text(bytes)))
        let length = try #require(Int(head.header("Content-Length") ?? ""))
        #expect(head.headLength + length == bytes.count)
        #expect(head.bodyFraming(requestMethod: "GET") == .length(length))
        #expect(head.wantsClose)
    }

    @Test("uses the standard reason phrases", arguments: [
        (400, "Bad Request"), (403, "Forbidden"), (405, "Method Not Allowed"), (407, "Proxy Authentication Required"),
        (414, "URI Too Long"), (431, "Request Header Fields Too Large"), (501, "Not Implemented"), (502, "Bad Gateway"),
        (504, "Gateway Timeout"), (505, "HTTP Version Not Supported"),
    ])
    func phrases(status: Int, phrase: String) {
        #expect(text(HTTPResponse.error(status: status, reason: "x")).hasPrefix("HTTP/1.1 \(status) \(phrase)\r\n"))
    }

    @Test("asks for Basic proxy credentials on 407, once")
    func proxyAuthenticate() {
        let response = text(HTTPResponse.error(status: 407, reason: "proxy credentials required"))
        #expect(response.contains("\r\nProxy-Authenticate: Basic realm=\"tls-bridge\"\r\n"))
        let custom = text(HTTPResponse.error(status: 407, reason: "x", extraHeaders: [HTTPHeader(name: "Proxy-Authenticate", value: "Basic realm=\"pay\"")]))
        #expect(custom.contains("Proxy-Authenticate: Basic realm=\"pay\"\r\n"))
        #expect(!custom.contains("tls-bridge"))
        #expect(!text(HTTPResponse.error(status: 403, reason: "x")).contains("Proxy-Authenticate"))
    }

    @Test("adds extra headers without letting them split the head")
    func extraHeaders() throws {
        let bytes = HTTPResponse.error(status: 405, reason: "x", extraHeaders: [
            HTTPHeader(name: "Allow", value: "CONNECT, GET\r\nX-Injected: 1"), HTTPHeader(name: "Bad Name", value: "v"),
        ])
        let head = try #require(responseHead(text(bytes)))
        #expect(head.header("Allow") == "CONNECT, GET  X-Injected: 1")
        #expect(head.header("X-Injected") == nil)
        #expect(head.headers.count == 4)
    }

    @Test("answers an opened tunnel with 200 Connection established and no headers")
    func connectionEstablished() throws {
        #expect(text(HTTPResponse.connectionEstablished) == "HTTP/1.1 200 Connection established\r\n\r\n")
        let head = try #require(responseHead(text(HTTPResponse.connectionEstablished)))
        #expect(head.bodyFraming(requestMethod: "CONNECT") == BodyFraming.none)
    }
}
