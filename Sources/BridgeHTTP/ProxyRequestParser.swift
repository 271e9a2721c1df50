/// Parses the head of a request sent to the bridge as an HTTP forward proxy.
///
/// Strict by design: card data passes through here, and every leniency is a place where the bridge
/// and the gateway could disagree about where one request ends and the next begins. See
/// `parse(_:limit:)` for what is refused.
public enum ProxyRequestParser {
    /// Targets longer than this are refused with 414.
    public static let maxTargetLength = 8 * 1024
    /// Heads with more header lines than this are refused with 431.
    public static let maxHeaderLines = 100

    /// Parses a request head from the start of `bytes`.
    ///
    /// Returns `.incomplete` while no CRLF CRLF has arrived and fewer than `limit` bytes are
    /// buffered, `.invalid` with 431 if the head does not end within `limit` bytes or has more than
    /// 100 header lines. The request line must be `token SP target SP HTTP/1.0|HTTP/1.1 CRLF` (one
    /// empty line before it is skipped, as RFC 9112 §2.2 suggests) and header lines
    /// `token ":" OWS value OWS CRLF`.
    ///
    /// Refused with 400: bare CR or bare LF line ends; NUL and other control characters except HTAB
    /// in values; whitespace before a colon; obsolete line folding; empty or invalid header names;
    /// a request line without a version or with spaces in the target; a `CONNECT` target that is
    /// not `host:port`; `host:port` or `*` with a method other than `CONNECT` or `OPTIONS`; user
    /// information in a URL; a host that is not a DNS name or IP literal; a port outside
    /// 1...65535; `Content-Length` together with `Transfer-Encoding`, differing or non-decimal
    /// `Content-Length` values; `Transfer-Encoding` in HTTP/1.0; more than one `Host`;
    /// `Connection` naming `Content-Length` or `Transfer-Encoding`; a `CONNECT` with a body.
    /// Refused with 414: a target longer than 8 KiB. With 501: a `Transfer-Encoding` other than
    /// exactly `chunked`. With 505: an HTTP version other than 1.0 and 1.1.
    ///
    /// Anything refused for a prefix of the bytes is refused for the same reason once more bytes
    /// arrive, so the session may answer as soon as it sees `.invalid`.
    public static func parse(_ bytes: UnsafeRawBufferPointer, limit: Int = 16 * 1024) -> ParseResult<ProxyRequestHead> {
        var reader = HeadReader(bytes, limit: limit)

        // The request line, after at most one empty line.
        var requestLine: RequestLine
        var skippedEmptyLine = false
        while true {
            switch reader.nextLine() {
            case .partial(let range, let atLimit):
                if case .failure(let error) = RequestLine.scan(bytes[range], complete: false) { return .invalid(error) }
                return atLimit ? .invalid(headTooLarge(limit)) : .incomplete
            case .badLineEnd(let range, let bareCR):
                if case .failure(let error) = RequestLine.scan(bytes[range], complete: false) { return .invalid(error) }
                return .invalid(HeadReader.lineEndError(line: "the request line", bareCR: bareCR, status: 400))
            case .line(let range):
                if range.isEmpty, !skippedEmptyLine {
                    skippedEmptyLine = true
                    continue
                }
                switch RequestLine.scan(bytes[range], complete: true) {
                case .failure(let error): return .invalid(error)
                case .success(let line?): requestLine = line
                case .success(nil): return .invalid(HTTPParseError(status: 400, reason: "the request line is empty"))
                }
            }
            break
        }
        let method = String(checkedBytes: bytes[requestLine.method])
        let target: ProxyRequestHead.Target
        switch RequestTargetParsing.parse(method: method, target: bytes[requestLine.target]) {
        case .failure(let error): return .invalid(error)
        case .success(let value): target = value
        }

        // Header lines up to the empty line.
        let headers: [HTTPHeader]
        switch reader.headerLines(message: "request", maxLines: maxHeaderLines, status: 400, tooManyStatus: 431,
                                  headTooLarge: headTooLarge(limit)) {
        case .incomplete: return .incomplete
        case .invalid(let error): return .invalid(error)
        case .complete(let lines): headers = lines
        }

        // What the headers say about framing and the connection.
        let fields: MessageFields
        switch MessageFields.read(headers, status: 400) {
        case .failure(let error): return .invalid(error)
        case .success(let value): fields = value
        }
        if fields.hostCount > 1 {
            return .invalid(HTTPParseError(status: 400, reason: "the request has more than one Host header"))
        }
        if fields.connectionOptions.contains(where: ProxyRequestHead.framingNames.contains) {
            return .invalid(HTTPParseError(status: 400, reason: "Connection names a header that frames the body"))
        }
        let framing: BodyFraming
        switch requestFraming(fields, version: requestLine.version) {
        case .failure(let error): return .invalid(error)
        case .success(let value): framing = value
        }
        if method == "CONNECT", framing != .none, framing != .length(0) {
            return .invalid(HTTPParseError(status: 400, reason: "a CONNECT request must not have a body"))
        }
        return .complete(ProxyRequestHead(
            method: method, target: target, version: requestLine.version, headers: headers,
            headLength: reader.position, bodyFraming: framing, wantsClose: fields.wantsClose(version: requestLine.version)))
    }

    /// Request body framing (RFC 9112 §6.1–6.3), refusing every ambiguous combination.
    private static func requestFraming(_ fields: MessageFields, version: HTTPVersion) -> Result<BodyFraming, HTTPParseError> {
        if fields.hasTransferEncoding {
            if fields.contentLength != nil {
                return .failure(HTTPParseError(status: 400, reason: "the request has both Transfer-Encoding and Content-Length"))
            }
            if version == .http10 {
                return .failure(HTTPParseError(status: 400, reason: "Transfer-Encoding is not allowed in an HTTP/1.0 request"))
            }
            if fields.transferCodings.isEmpty {
                return .failure(HTTPParseError(status: 400, reason: "Transfer-Encoding is empty"))
            }
            guard fields.transferCodings == ["chunked"] else {
                return .failure(HTTPParseError(status: 501, reason: "only Transfer-Encoding: chunked is supported in requests"))
            }
            return .success(.chunked)
        }
        if let length = fields.contentLength { return .success(.length(length)) }
        return .success(.none)
    }

    private static func headTooLarge(_ limit: Int) -> HTTPParseError {
        HTTPParseError(status: 431, reason: "the request head does not end within \(limit) bytes")
    }
}

/// The three parts of a request line, located in the buffer.
struct RequestLine {
    var method: Range<Int>
    var target: Range<Int>
    var version: HTTPVersion

    /// `HTTP/d.d`, where `0` stands for any digit.
    private static let versionPattern: [UInt8] = Array("HTTP/0.0".utf8)

    /// Checks a request line byte by byte, from the left, so that a line refused while incomplete
    /// is refused for the same reason once complete. With `complete: false` only what is certain
    /// is reported and the result is `nil`; a complete empty line also gives `nil`.
    static func scan(_ line: UnsafeRawBufferPointer.SubSequence, complete: Bool) -> Result<RequestLine?, HTTPParseError> {
        func failure(_ reason: String, status: Int = 400) -> Result<RequestLine?, HTTPParseError> {
            .failure(HTTPParseError(status: status, reason: reason))
        }
        if line.isEmpty { return .success(nil) }
        let start = line.startIndex
        let end = line.endIndex

        // Method: a token, then one space.
        var index = start
        while index < end, ASCII.isTokenChar(line[index]) { index += 1 }
        if index < end, line[index] != ASCII.space {
            if index == start, line[index] == 0x16 {
                return failure("received a TLS handshake; this listener expects a plain HTTP proxy request")
            }
            if index == start, ASCII.isWhitespace(line[index]) { return failure("the request line starts with whitespace") }
            return failure("the method contains an invalid character")
        }
        if index < end, index == start { return failure("the request line starts with whitespace") }
        let method = start..<index
        guard index < end else { return complete ? failure("the request line has no target and no HTTP version") : .success(nil) }
        index += 1

        // Target: visible ASCII, at most maxTargetLength bytes, then one space.
        let targetStart = index
        while index < end {
            let byte = line[index]
            if byte == ASCII.space { break }
            guard ASCII.isVisible(byte) else { return failure("the request target contains a control character, tab or non-ASCII byte") }
            if index - targetStart >= ProxyRequestParser.maxTargetLength {
                return failure("the request target is longer than \(ProxyRequestParser.maxTargetLength) bytes", status: 414)
            }
            index += 1
        }
        if index < end, index == targetStart { return failure("the request line has an empty target (two spaces)") }
        let target = targetStart..<index
        guard index < end else { return complete ? failure("the request line has no HTTP version") : .success(nil) }
        index += 1

        // Version: exactly HTTP/DIGIT.DIGIT. Its spelling is checked once the line is complete, so
        // that a space after a short word ("GET /a b HTTP/1.1") is reported as what it is.
        let versionStart = index
        let pattern = Self.versionPattern
        while index < end {
            if line[index] == ASCII.space {
                return failure("the request line has more than two spaces (a target must not contain whitespace)")
            }
            guard index - versionStart < pattern.count else { return failure("the HTTP version is malformed") }
            index += 1
        }
        guard complete else { return .success(nil) }
        let matches = index - versionStart == pattern.count && zip(line[versionStart...], pattern).allSatisfy { byte, expected in
            expected == 0x30 ? ASCII.isDigit(byte) : byte == expected
        }
        guard matches else { return failure("the HTTP version is malformed") }
        let major = line[versionStart + 5], minor = line[versionStart + 7]
        guard major == 0x31, minor == 0x30 || minor == 0x31 else {
            return failure("only HTTP/1.0 and HTTP/1.1 are supported", status: 505)
        }
        return .success(RequestLine(method: method, target: target, version: minor == 0x31 ? .http11 : .http10))
    }
}
