import Testing
@testable import BridgeHTTP

@Suite("Request body framing and connection handling")
struct RequestFramingTests {
    private func framing(_ headerLines: String, version: String = "HTTP/1.1") -> BodyFraming? {
        requestHead(post(headerLines, version: version))?.bodyFraming
    }

    private func refusal(_ headerLines: String, version: String = "HTTP/1.1") -> HTTPParseError? {
        requestError(post(headerLines, version: version))
    }

    @Test("frames by Content-Length, chunked, or nothing")
    func framings() {
        #expect(framing("Content-Length: 42\r\n") == .length(42))
        #expect(framing("Content-Length: 0\r\n") == .length(0))
        #expect(framing("Transfer-Encoding: chunked\r\n") == .chunked)
        #expect(framing("Transfer-Encoding: Chunked \r\n") == .chunked)
        #expect(framing("") == BodyFraming.none)
    }

    @Test("refuses Content-Length given twice even with equal values: it is forwarded as sent")
    func identicalLengths() {
        #expect(refusal("Content-Length: 7\r\nContent-Length: 7\r\n")
            == HTTPParseError(status: 400, reason: "Content-Length appears on more than one line"))
        #expect(refusal("Content-Length: 7, 7\r\n") == HTTPParseError(status: 400, reason: "Content-Length has more than one value"))
        #expect(refusal("content-length: 5\r\nContent-Length:5\r\n")?.status == 400)
    }

    @Test("refuses empty Transfer-Encoding elements and lines with 400", arguments: [
        "Transfer-Encoding: chunked,\r\n", "Transfer-Encoding: ,chunked\r\n", "Transfer-Encoding: chunked, ,\r\n",
        "Transfer-Encoding: chunked\r\nTransfer-Encoding:\r\n", "Transfer-Encoding:\r\nTransfer-Encoding: chunked\r\n",
    ])
    func emptyTransferCodingElements(lines: String) {
        #expect(refusal(lines) == HTTPParseError(status: 400, reason: "Transfer-Encoding is empty or has an empty element"))
    }

    @Test("refuses differing or non-decimal Content-Length with 400", arguments: [
        "Content-Length: 7\r\nContent-Length: 8\r\n", "Content-Length: 7, 8\r\n", "Content-Length: -1\r\n",
        "Content-Length: +7\r\n", "Content-Length: 0x10\r\n", "Content-Length: 7 7\r\n", "Content-Length:\r\n",
        "Content-Length: 7,\r\n", "Content-Length: 1234567890123456789\r\n", "Content-Length: 1.0\r\n",
    ])
    func badContentLength(lines: String) {
        #expect(refusal(lines)?.status == 400)
    }

    @Test("refuses Content-Length together with Transfer-Encoding")
    func bothLengthAndChunked() {
        let error = refusal("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n")
        #expect(error == HTTPParseError(status: 400, reason: "the request has both Transfer-Encoding and Content-Length"))
        #expect(refusal("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n")?.status == 400)
    }

    @Test("refuses transfer codings other than exactly chunked with 501", arguments: [
        "gzip", "gzip, chunked", "chunked, chunked", "chunked;x=1", "identity", "x-chunked",
    ])
    func unsupportedTransferCoding(value: String) {
        #expect(refusal("Transfer-Encoding: \(value)\r\n")?.status == 501)
    }

    @Test("counts chunked on two Transfer-Encoding lines as applied twice")
    func chunkedOnTwoLines() {
        #expect(refusal("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n")?.status == 501)
    }

    @Test("refuses an empty Transfer-Encoding and Transfer-Encoding in HTTP/1.0 with 400")
    func transferEncodingMisuse() {
        #expect(refusal("Transfer-Encoding: \r\n")?.status == 400)
        #expect(refusal("Transfer-Encoding: chunked\r\n", version: "HTTP/1.0")?.status == 400)
    }

    @Test("refuses more than one Host header")
    func duplicateHost() {
        #expect(refusal("Host: other.example\r\n") == HTTPParseError(status: 400, reason: "the request has more than one Host header"))
    }

    @Test("refuses a Connection header that names a framing header")
    func connectionNamesFraming() {
        #expect(refusal("Connection: close, Content-Length\r\nContent-Length: 5\r\n")?.status == 400)
        #expect(refusal("Connection: transfer-encoding\r\nTransfer-Encoding: chunked\r\n")?.status == 400)
    }

    @Test("refuses a Connection header that is not a list of tokens")
    func connectionSyntax() {
        #expect(refusal("Connection: close; now\r\n")?.status == 400)
    }

    @Test("refuses a CONNECT request with a body")
    func connectWithBody() {
        #expect(requestError("CONNECT a.example:443 HTTP/1.1\r\nContent-Length: 5\r\n\r\n")?.status == 400)
        #expect(requestError("CONNECT a.example:443 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")?.status == 400)
        #expect(requestHead("CONNECT a.example:443 HTTP/1.1\r\nContent-Length: 0\r\n\r\n") != nil)
    }

    @Test("wants the connection closed for Connection: close or HTTP/1.0 without keep-alive")
    func wantsClose() {
        func close(_ lines: String, _ version: String) -> Bool? { requestHead(post(lines, version: version))?.wantsClose }
        #expect(close("", "HTTP/1.1") == false)
        #expect(close("Connection: close\r\n", "HTTP/1.1") == true)
        #expect(close("Connection: Keep-Alive, CLOSE\r\n", "HTTP/1.1") == true)
        #expect(close("Connection: x-custom\r\nConnection: close\r\n", "HTTP/1.1") == true)
        #expect(close("", "HTTP/1.0") == true)
        #expect(close("Connection: keep-alive\r\n", "HTTP/1.0") == false)
        #expect(close("Connection: keep-alive, close\r\n", "HTTP/1.0") == true)
        #expect(close("Proxy-Connection: keep-alive\r\n", "HTTP/1.0") == true)
    }
}
