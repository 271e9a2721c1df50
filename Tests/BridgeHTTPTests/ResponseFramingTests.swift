import Testing
@testable import BridgeHTTP

@Suite("Response body framing")
struct ResponseFramingTests {
    private func framing(_ statusAndHeaders: String, method: String = "GET") -> BodyFraming? {
        responseHead("HTTP/1.1 \(statusAndHeaders)\r\n\r\n")?.bodyFraming(requestMethod: method)
    }

    @Test("has no body for a HEAD request, whatever the headers say")
    func head() {
        #expect(framing("200 OK\r\nContent-Length: 500", method: "HEAD") == BodyFraming.none)
        #expect(framing("200 OK\r\nTransfer-Encoding: chunked", method: "HEAD") == BodyFraming.none)
    }

    @Test("has no body for 1xx, 204 and 304", arguments: ["100 Continue", "103 Early Hints", "204 No Content", "304 Not Modified"])
    func bodiless(status: String) {
        #expect(framing("\(status)\r\nContent-Length: 10") == BodyFraming.none)
    }

    @Test("has no body for a 2xx answer to CONNECT")
    func connect() {
        #expect(framing("200 Connection established", method: "CONNECT") == BodyFraming.none)
        #expect(framing("407 Auth\r\nContent-Length: 3", method: "CONNECT") == .length(3))
    }

    @Test("is chunked when chunked is the final coding")
    func chunked() {
        #expect(framing("200 OK\r\nTransfer-Encoding: chunked") == .chunked)
        #expect(framing("200 OK\r\nTransfer-Encoding: gzip, Chunked") == .chunked)
        #expect(framing("200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked") == .chunked)
    }

    @Test("runs until close for other transfer codings and without framing headers")
    func untilClose() {
        #expect(framing("200 OK\r\nTransfer-Encoding: gzip") == .untilClose)
        #expect(framing("200 OK") == .untilClose)
    }

    @Test("uses Content-Length")
    func length() {
        #expect(framing("200 OK\r\nContent-Length: 1234") == .length(1234))
        #expect(framing("500 Oops\r\nContent-Length: 0") == .length(0))
    }

    @Test("refuses conflicting or malformed framing at parse time", arguments: [
        "Transfer-Encoding: chunked\r\nContent-Length: 5", "Content-Length: 5\r\nContent-Length: 6", "Content-Length: five",
        "Transfer-Encoding: chunked, gzip", "Transfer-Encoding: chunked, chunked", "Transfer-Encoding: gz(ip, chunked", "Transfer-Encoding: ,",
        "Content-Length: 5, 6", "Content-Length: 5\r\nContent-Length: 5, 6", "Transfer-Encoding: chunked,",
        "Transfer-Encoding: ,chunked", "Transfer-Encoding: chunked\r\nTransfer-Encoding: ",
    ])
    func conflicts(lines: String) {
        #expect(responseError("HTTP/1.1 200 OK\r\n\(lines)\r\n\r\n")?.status == 502)
    }

    @Test("accepts equal repeated Content-Length in a response (RFC 9110 §8.6), unlike in a request")
    func equalLengths() {
        #expect(framing("200 OK\r\nContent-Length: 5\r\nContent-Length: 5") == .length(5))
        #expect(framing("200 OK\r\nContent-Length: 5, 5") == .length(5))
    }

    @Test("refuses Transfer-Encoding in an HTTP/1.0 response")
    func transferEncodingIn10() {
        #expect(responseError("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")?.status == 502)
    }

    @Test("marks 1xx as interim and everything else as final")
    func interim() {
        #expect(responseHead("HTTP/1.1 100 Continue\r\n\r\n")?.isInterim == true)
        #expect(responseHead("HTTP/1.1 199 Whatever\r\n\r\n")?.isInterim == true)
        #expect(responseHead("HTTP/1.1 200 OK\r\n\r\n")?.isInterim == false)
    }
}
