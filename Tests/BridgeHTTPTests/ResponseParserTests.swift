import Testing
@testable import BridgeHTTP

@Suite("Response heads")
struct ResponseParserTests {
    @Test("parses a status line, headers and the head length")
    func parses() throws {
        let text = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
        let head = try #require(responseHead(text))
        #expect(head.status == 200)
        #expect(head.version == .http11)
        #expect(head.headers.count == 2)
        #expect(head.header("content-length") == "2")
        #expect(head.headLength == text.utf8.count - 2)
        #expect(!head.wantsClose)
    }

    @Test("accepts an empty reason phrase after the space, and any visible text in it")
    func reasonPhrases() {
        #expect(responseHead("HTTP/1.1 204 \r\n\r\n")?.status == 204)
        #expect(responseHead("HTTP/1.0 404 Not\tFound (really)\r\n\r\n")?.status == 404)
    }

    @Test("refuses malformed status lines with 502", arguments: [
        "HTTP/1.1 200", "HTTP/1.1 20 OK", "HTTP/1.1 2000 OK", "HTTP/1.1  200 OK", "http/1.1 200 OK", "HTTP/1.1 OK",
        "ICY 200 OK", "HTTP/1.1 099 Low", "HTTP/1.1 600 High", "HTTP/1.1\t200 OK", "",
    ])
    func malformedStatusLine(line: String) {
        #expect(responseError("\(line)\r\n\r\n")?.status == 502)
    }

    @Test("refuses versions other than 1.0 and 1.1")
    func versions() {
        #expect(responseError("HTTP/2.0 200 OK\r\n\r\n")?.status == 502)
        #expect(responseError("HTTP/0.9 200 OK\r\n\r\n")?.status == 502)
    }

    @Test("refuses 101 Switching Protocols, since upgrades are never forwarded")
    func switchingProtocols() {
        #expect(responseError("HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n")?.reason.contains("upgrades") == true)
    }

    @Test("refuses control characters in the reason phrase")
    func reasonControl() {
        #expect(responseError("HTTP/1.1 200 O\u{1}K\r\n\r\n")?.status == 502)
    }

    @Test("applies the request's header-line rules, answering 502", arguments: [
        "X: a\nY: b\r\n", "X : a\r\n", "X: a\r\n b\r\n", "X: a\u{0}\r\n", ": a\r\n", "X: a\rb\r\n",
    ])
    func headerRules(lines: String) {
        let error = responseError("HTTP/1.1 200 OK\r\n\(lines)\r\n")
        #expect(error?.status == 502)
        #expect(error?.reason.hasPrefix("response") == true)
    }

    @Test("is incomplete until the empty line, and 502 past the limit")
    func limits() {
        #expect(isIncomplete(parseResponse("HTTP/1.1 200 OK\r\nX: 1\r\n")))
        #expect(isIncomplete(parseResponse("HTTP/1.1 2")))
        if case .invalid(let error) = parseResponse("HTTP/1.1 200 OK\r\nX: 1\r\n", limit: 20) { #expect(error.status == 502) } else {
            Issue.record("expected the limit to apply")
        }
        let many = (0...100).map { "X-\($0): v\r\n" }.joined()
        #expect(responseError("HTTP/1.1 200 OK\r\n\(many)\r\n")?.status == 502)
    }

    @Test("refuses garbage from the first byte instead of waiting for a line end")
    func earlyRefusal() {
        #expect(responseError("SSH-2.0-OpenSSH")?.status == 502)
    }

    @Test("finds the final head after an interim 100 Continue in the same buffer")
    func interimThenFinal() throws {
        let interim = "HTTP/1.1 100 Continue\r\n\r\n"
        let final = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
        let bytes = Array((interim + final).utf8)
        let first = try #require(responseHead(interim + final))
        #expect(first.isInterim)
        #expect(first.headLength == interim.utf8.count)
        guard case .complete(let second) = parseResponse(bytes: Array(bytes[first.headLength...])) else {
            Issue.record("final head did not parse")
            return
        }
        #expect(second.status == 200)
        #expect(!second.isInterim)
    }

    @Test("wants the connection closed for Connection: close or HTTP/1.0 without keep-alive")
    func wantsClose() {
        #expect(responseHead("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")?.wantsClose == true)
        #expect(responseHead("HTTP/1.0 200 OK\r\n\r\n")?.wantsClose == true)
        #expect(responseHead("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n")?.wantsClose == false)
        #expect(responseHead("HTTP/1.1 200 OK\r\n\r\n")?.wantsClose == false)
    }
}
