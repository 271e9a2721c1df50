import Testing
@testable import BridgeHTTP

/// `nextSegment`, which passes a chunked body on decoded (to an HTTP/1.0 client), and
/// `decisionWindow`, the prefix that always lets the scanner decide.
@Suite("Chunked body decoding")
struct ChunkedDecodingTests {
    /// What decoding found: the data bytes, the body's length on the wire, or the refusal.
    enum Decoded: Equatable {
        case body(data: [UInt8], wireLength: Int)
        case invalid(String)
        case waiting
    }

    /// Feeds `input` in pieces of `piece` bytes and shows the scanner at most `prefix` bytes at a
    /// time, as the forwarder does.
    func decode(_ input: [UInt8], piece: Int = .max, prefix: Int = .max) -> Decoded {
        var scanner = ChunkedBodyScanner()
        var buffer: [UInt8] = []
        var data: [UInt8] = []
        var wire = 0
        var offset = 0
        while true {
            let take = min(piece, input.count - offset)
            buffer += input[offset..<(offset + take)]
            offset += take
            segments: while true {
                let segment = buffer.withUnsafeBytes { all in
                    scanner.nextSegment(prefix: UnsafeRawBufferPointer(rebasing: all.prefix(prefix)), available: buffer.count)
                }
                switch segment {
                case .data(let count):
                    data += buffer.prefix(count)
                    buffer.removeFirst(count)
                    wire += count
                case .framing(let count):
                    buffer.removeFirst(count)
                    wire += count
                case .end(let count):
                    return .body(data: data, wireLength: wire + count)
                case .needMore:
                    break segments
                case .invalid(let reason):
                    return .invalid(reason)
                }
            }
            if take == 0 { return .waiting }
        }
    }

    private let body = Array("""
        5\r\nhello\r\n1a;name="quoted \\" value";flag\r\nabcdefghijklmnopqrstuvwxyz\r\n1\r\n!\r\n0\r\nX-Check: 1\r\n\r\n
        """.utf8)

    @Test("keeps exactly the chunk data, however the bytes arrive")
    func decodesInAnyPieces() {
        let expected = Decoded.body(data: Array("helloabcdefghijklmnopqrstuvwxyz!".utf8), wireLength: body.count)
        for piece in [1, 2, 3, 7, 64, .max] {
            #expect(decode(body, piece: piece) == expected, "pieces of \(piece)")
        }
    }

    @Test("refuses what `next` refuses, for the same reason", arguments: [
        "5;\r\nhello\r\n0\r\n\r\n", "11111111111111111\r\n", "0x5\r\nhello\r\n0\r\n\r\n", "5\nhello\r\n0\r\n\r\n",
        "5\r\nhelloXX0\r\n\r\n", "0\r\nTransfer-Encoding: chunked\r\n\r\n", "0\r\nbad line\r\n\r\n",
    ])
    func refusesLikeNext(text: String) {
        let bytes = Array(text.utf8)
        guard case .invalid(let reason) = scanChunked(bytes) else {
            Issue.record("`next` accepted \(text.debugDescription)")
            return
        }
        #expect(decode(bytes) == .invalid(reason))
        #expect(decode(bytes, piece: 1) == .invalid(reason))
    }

    @Test("a chunk size has at most 16 hex digits, leading zeros included")
    func sizeDigits() {
        #expect(decode(Array("0000000000000005\r\nhello\r\n0\r\n\r\n".utf8)) == .body(data: Array("hello".utf8), wireLength: 30))
        #expect(decode(Array("00000000000000005\r\nhello\r\n0\r\n\r\n".utf8)) == .invalid("a chunk size has more than 16 hex digits"))
    }

    @Test("a trailer line longer than a short prefix is decided once the decision window is shown")
    func longTrailerNeedsTheWindow() {
        let trailer = "X-Long: " + String(repeating: "t", count: 12 * 1024)
        let bytes = Array("3\r\nabc\r\n0\r\n\(trailer)\r\n\r\n".utf8)
        var scanner = ChunkedBodyScanner()
        // Shown 4 KiB, the scanner cannot decide the trailer line and asks for more...
        var forwarded = 0
        while true {
            let step = bytes.withUnsafeBytes { all in
                scanner.next(prefix: UnsafeRawBufferPointer(rebasing: all[forwarded...].prefix(4096)), available: bytes.count - forwarded)
            }
            guard case .forward(let count) = step else {
                #expect(step == .needMore)
                break
            }
            forwarded += count
        }
        // ...although every byte is buffered; shown its decision window, it finds the end.
        let step = bytes.withUnsafeBytes { all in
            scanner.next(prefix: UnsafeRawBufferPointer(rebasing: all[forwarded...].prefix(scanner.decisionWindow)),
                         available: bytes.count - forwarded)
        }
        #expect(step == .finished(bytes.count - forwarded))
        #expect(scanner.decisionWindow >= scanner.maxTrailerBytes && scanner.decisionWindow >= scanner.maxChunkSizeLine)
    }

    @Test("trailers past the limit are refused within the decision window, never waited for")
    func endlessTrailerIsRefused() {
        let scanner = ChunkedBodyScanner()
        let bytes = Array(("0\r\nX-Endless: " + String(repeating: "e", count: scanner.decisionWindow)).utf8)
        #expect(decode(bytes, prefix: scanner.decisionWindow) == .invalid("the trailers are longer than \(scanner.maxTrailerBytes) bytes"))
    }
}

@Suite("Responses to HTTP/1.0 clients")
struct HTTP10ResponseTests {
    @Test("a chunked head loses its framing and the connection's fields, and says the connection closes")
    func dechunkedHead() throws {
        let head = try #require(responseHead("""
            HTTP/1.1 200 Fine Thanks\r\nContent-Type: text/plain\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\n\
            Keep-Alive: timeout=5\r\nTransfer-Encoding: chunked\r\nTrailer: X-Check\r\nX-Gateway: gw\r\n\r\n
            """))
        #expect(head.isOnlyChunked)
        #expect(String(decoding: head.dechunkedForHTTP10Client(), as: UTF8.self) == """
            HTTP/1.1 200 Fine Thanks\r\nContent-Type: text/plain\r\nX-Gateway: gw\r\nConnection: close\r\n\r\n
            """)
    }

    @Test("only a head whose one transfer coding is chunked can be decoded")
    func otherCodings() throws {
        #expect(try #require(responseHead("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n")).isOnlyChunked == false)
        #expect(try #require(responseHead("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n")).isOnlyChunked == false)
    }
}
