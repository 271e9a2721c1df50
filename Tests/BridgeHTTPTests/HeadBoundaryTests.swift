import Testing
@testable import BridgeHTTP

/// Where a head ends: incomplete input, the size limits, and pipelined requests.
@Suite("Head boundaries and limits")
struct HeadBoundaryTests {
    @Test("reports incomplete until the empty line arrives, at every prefix")
    func incompleteAtEveryPrefix() throws {
        let text = "POST http://gateway.example/pay HTTP/1.1\r\nHost: gateway.example\r\nContent-Length: 3\r\n\r\n"
        let bytes = Array(text.utf8)
        for end in 0..<bytes.count {
            #expect(isIncomplete(parseRequest(bytes: Array(bytes[..<end]))), "prefix \(end)")
        }
        let head = try #require(requestHead(text))
        #expect(head.headLength == bytes.count)
    }

    @Test("refuses a malformed head for the same reason at every prefix that shows the problem", arguments: [
        "GET http://a.example/ HTTP/1.1\r\nX: a\nY: b\r\n\r\n",
        "GET http://a.example/ HTTP/1.1\r\nX : a\r\n\r\n",
        "GET http://a.example/ HTTP/9.9\r\n\r\n",
        "G(T http://a.example/ HTTP/1.1\r\n\r\n",
        "GET http://a.example/ HTTP/1.1 x\r\n\r\n",
        "GET http://a.example/\r\r\n\r\n",
        "GET http://a.example/ HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
    ])
    func consistentRefusal(text: String) throws {
        let bytes = Array(text.utf8)
        let final = try #require(requestError(bytes: bytes))
        for end in 0..<bytes.count {
            switch parseRequest(bytes: Array(bytes[..<end])) {
            case .incomplete: continue
            case .invalid(let error): #expect(error == final, "prefix \(end)")
            case .complete: Issue.record("prefix \(end) parsed as complete")
            }
        }
    }

    @Test("points headLength at the second of two pipelined requests")
    func pipelined() throws {
        let first = "POST http://gateway.example/a HTTP/1.1\r\nHost: gateway.example\r\nContent-Length: 5\r\n\r\nhello"
        let second = "GET http://gateway.example/b HTTP/1.1\r\nHost: gateway.example\r\n\r\n"
        let bytes = Array((first + second).utf8)
        let head = try #require(requestHead(first + second))
        #expect(head.bodyFraming == .length(5))
        let secondStart = head.headLength + 5
        #expect(secondStart == first.utf8.count)
        guard case .complete(let next) = parseRequest(bytes: Array(bytes[secondStart...])) else {
            Issue.record("second request did not parse")
            return
        }
        #expect(next.target == .absolute(scheme: "http", host: "gateway.example", port: nil, pathAndQuery: "/b"))
        #expect(next.headLength == second.utf8.count)
    }

    @Test("ignores bytes after the head, even malformed ones")
    func trailingBytesIgnored() throws {
        let head = try #require(requestHead("GET http://a.example/ HTTP/1.1\r\n\r\n\u{0}\n\r garbage"))
        #expect(head.headLength == 34)
    }

    @Test("refuses with 431 a head that does not end within the limit")
    func limit() {
        let text = post("X-Pad: " + String(repeating: "a", count: 200) + "\r\n")
        let length = text.utf8.count
        #expect(requestHead(text) != nil)
        if case .complete(let head) = parseRequest(text, limit: length) { #expect(head.headLength == length) } else {
            Issue.record("a head ending exactly at the limit must parse")
        }
        #expect(requestError(text, limit: length - 1)?.status == 431)
        // Fewer bytes than the limit: still incomplete, not yet too large.
        #expect(isIncomplete(parseRequest(String(text.prefix(100)), limit: length - 1)))
        // A head that never ends: 431 once the limit is buffered.
        let endless = "GET http://a.example/ HTTP/1.1\r\nX: " + String(repeating: "a", count: 17_000)
        #expect(requestError(endless)?.status == 431)
    }

    @Test("accepts 100 header lines and refuses 101 with 431")
    func headerLineCount() {
        let lines = (1...99).map { "X-\($0): v\r\n" }.joined()
        #expect(requestHead(post(lines))?.headers.count == 100)
        let error = requestError(post(lines + "X-100: v\r\n"))
        #expect(error?.status == 431)
        #expect(error?.reason.contains("100 header lines") == true)
    }
}
