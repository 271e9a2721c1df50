import Testing
@testable import BridgeHTTP

@Suite("Rewriting a proxy request for the origin")
struct OriginRewriteTests {
    private func rewrite(_ text: String, host: String = "gateway.example") throws -> String {
        let head = try #require(requestHead(text))
        return String(decoding: head.rewrittenForOrigin(host: host), as: UTF8.self)
    }

    @Test("sends origin form with HTTP/1.1 and the given Host first")
    func requestLineAndHost() throws {
        let text = "POST http://Gateway.Example:8080/pay?order=1 HTTP/1.0\r\nHost: wrong.example\r\nContent-Length: 2\r\n\r\n"
        #expect(try rewrite(text, host: "gateway.example:8080") ==
            "POST /pay?order=1 HTTP/1.1\r\nHost: gateway.example:8080\r\nContent-Length: 2\r\n\r\n")
    }

    @Test("adds Host when the client sent none")
    func addsHost() throws {
        #expect(try rewrite("GET http://gateway.example HTTP/1.0\r\nAccept: */*\r\n\r\n") ==
            "GET / HTTP/1.1\r\nHost: gateway.example\r\nAccept: */*\r\n\r\n")
    }

    @Test("removes hop-by-hop headers and keeps the others in order")
    func removesHopByHop() throws {
        let text = """
            POST http://gateway.example/pay HTTP/1.1\r
            Proxy-Connection: keep-alive\r
            X-First: 1\r
            Connection: keep-alive\r
            Keep-Alive: timeout=5\r
            Proxy-Authorization: Basic dTpw\r
            Proxy-Authenticate: Basic\r
            TE: trailers\r
            Trailer: X-Checksum\r
            Upgrade: h2c\r
            Content-Type: application/json\r
            X-Last: 2\r
            Content-Length: 2\r
            \r

            """
        #expect(try rewrite(text) ==
            "POST /pay HTTP/1.1\r\nHost: gateway.example\r\nX-First: 1\r\nContent-Type: application/json\r\nX-Last: 2\r\nContent-Length: 2\r\n\r\n")
    }

    @Test("removes every header named in Connection, in any case")
    func removesNamedHeaders() throws {
        let text = "GET http://gateway.example/ HTTP/1.1\r\nConnection: X-Trace, x-secret\r\nx-trace: 1\r\nX-SECRET: 2\r\nConnection: X-Other\r\nX-Other: 3\r\nX-Kept: 4\r\n\r\n"
        #expect(try rewrite(text) == "GET / HTTP/1.1\r\nHost: gateway.example\r\nX-Kept: 4\r\n\r\n")
    }

    @Test("keeps Transfer-Encoding and Content-Length so the body passes through unchanged")
    func keepsFraming() throws {
        #expect(try rewrite("POST http://gateway.example/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTE: trailers\r\n\r\n") ==
            "POST / HTTP/1.1\r\nHost: gateway.example\r\nTransfer-Encoding: chunked\r\n\r\n")
        #expect(try rewrite("POST http://gateway.example/ HTTP/1.1\r\nContent-Length: 10\r\n\r\n") ==
            "POST / HTTP/1.1\r\nHost: gateway.example\r\nContent-Length: 10\r\n\r\n")
    }

    @Test("keeps header names as sent and values without surrounding whitespace")
    func spelling() throws {
        #expect(try rewrite("GET http://gateway.example/ HTTP/1.1\r\nx-MiXeD:   v a l  \r\n\r\n") ==
            "GET / HTTP/1.1\r\nHost: gateway.example\r\nx-MiXeD: v a l\r\n\r\n")
    }

    @Test("strips line breaks from the Host value so it cannot add header lines")
    func hostCannotInject() throws {
        #expect(try rewrite("GET http://gateway.example/ HTTP/1.1\r\n\r\n", host: "a.example\r\nX-Injected: 1") ==
            "GET / HTTP/1.1\r\nHost: a.exampleX-Injected: 1\r\n\r\n")
    }

    @Test("produces a head that parses again to the same method, path and headers")
    func roundTrip() throws {
        let text = "PUT http://gateway.example/a?b HTTP/1.1\r\nConnection: x-hop\r\nX-Hop: 1\r\nX-A: 1\r\nTransfer-Encoding: chunked\r\n\r\n"
        let head = try #require(requestHead(text))
        let rewritten = head.rewrittenForOrigin(host: "gateway.example")
        guard case .complete(let again) = parseRequest(bytes: rewritten) else {
            Issue.record("rewritten head did not parse")
            return
        }
        #expect(again.method == "PUT")
        #expect(again.target == .origin(pathAndQuery: "/a?b"))
        #expect(again.headers == [
            HTTPHeader(name: "Host", value: "gateway.example"), HTTPHeader(name: "X-A", value: "1"),
            HTTPHeader(name: "Transfer-Encoding", value: "chunked"),
        ])
        #expect(again.bodyFraming == .chunked)
        #expect(again.headLength == rewritten.count)
    }
}
