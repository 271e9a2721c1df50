/// Parses the head of a response from the gateway.
///
/// As strict as the request side: the bridge forwards the response body by the framing this head
/// declares, so an ambiguous head would let the gateway's bytes be read as two different streams.
public enum ResponseParser {
    /// Heads with more header lines than this are refused.
    public static let maxHeaderLines = 100

    /// Parses a response head from the start of `bytes`.
    ///
    /// The status line is `HTTP/1.x SP 3DIGIT SP reason CRLF` (the reason may be empty, the space
    /// before it may not be missing); header lines follow the same rules as requests. Refused, all
    /// with status 502: anything a request would be refused for; a version other than 1.0/1.1; a
    /// status outside 100...599; `101 Switching Protocols`; control characters in the reason;
    /// `Transfer-Encoding` together with `Content-Length`, in HTTP/1.0, empty, or with chunked
    /// applied twice or not last; non-decimal or differing `Content-Length`. `.incomplete` and
    /// `limit` work as for `ProxyRequestParser.parse(_:limit:)`.
    public static func parse(_ bytes: UnsafeRawBufferPointer, limit: Int = 64 * 1024) -> ParseResult<ResponseHead> {
        var reader = HeadReader(bytes, limit: limit)
        let statusLine: StatusLine
        switch reader.nextLine() {
        case .partial(let range, let atLimit):
            if case .failure(let error) = StatusLine.scan(bytes[range], complete: false) { return .invalid(error) }
            return atLimit ? .invalid(headTooLarge(limit)) : .incomplete
        case .badLineEnd(let range, let bareCR):
            if case .failure(let error) = StatusLine.scan(bytes[range], complete: false) { return .invalid(error) }
            return .invalid(HeadReader.lineEndError(line: "the status line", bareCR: bareCR, status: 502))
        case .line(let range):
            switch StatusLine.scan(bytes[range], complete: true) {
            case .failure(let error): return .invalid(error)
            case .success(let line?): statusLine = line
            case .success(nil): return .invalid(bad("the status line is malformed"))
            }
        }

        let headers: [HTTPHeader]
        switch reader.headerLines(message: "response", maxLines: maxHeaderLines, status: 502, tooManyStatus: 502,
                                  headTooLarge: headTooLarge(limit)) {
        case .incomplete: return .incomplete
        case .invalid(let error): return .invalid(error)
        case .complete(let lines): headers = lines
        }

        let fields: MessageFields
        switch MessageFields.read(headers, status: 502, equalLengthsAllowed: true) {
        case .failure(let error): return .invalid(HTTPParseError(status: 502, reason: "response " + error.reason))
        case .success(let value): fields = value
        }
        if fields.hasTransferEncoding {
            if fields.contentLength != nil { return .invalid(bad("the response has both Transfer-Encoding and Content-Length")) }
            if statusLine.version == .http10 { return .invalid(bad("Transfer-Encoding in an HTTP/1.0 response")) }
            let names = fields.transferCodings.map(codingName)
            if names.isEmpty { return .invalid(bad("the response's Transfer-Encoding is empty")) }
            guard names.allSatisfy({ !$0.isEmpty && $0.utf8.allSatisfy(ASCII.isTokenChar) }) else {
                return .invalid(bad("the response's Transfer-Encoding is malformed"))
            }
            if let chunked = names.firstIndex(of: "chunked"), chunked != names.count - 1 {
                return .invalid(bad("the response applies chunked other than as the final transfer coding"))
            }
        }
        return .complete(ResponseHead(
            status: statusLine.status, reason: statusLine.reason, version: statusLine.version, headers: headers,
            headLength: reader.position, wantsClose: fields.wantsClose(version: statusLine.version)))
    }

    private static func bad(_ reason: String) -> HTTPParseError {
        HTTPParseError(status: 502, reason: reason)
    }

    private static func headTooLarge(_ limit: Int) -> HTTPParseError {
        bad("the response head does not end within \(limit) bytes")
    }
}

/// The parts of a status line.
struct StatusLine {
    var version: HTTPVersion
    var status: Int
    var reason: String

    /// `HTTP/d.d ddd ` before the reason phrase, where `0` stands for any digit.
    private static let pattern: [UInt8] = Array("HTTP/0.0 000 ".utf8)

    /// Checks a status line byte by byte from the left, like `RequestLine.scan`. Incomplete lines
    /// give `nil` unless something is already certain to be wrong.
    static func scan(_ line: UnsafeRawBufferPointer.SubSequence, complete: Bool) -> Result<StatusLine?, HTTPParseError> {
        func failure(_ reason: String) -> Result<StatusLine?, HTTPParseError> {
            .failure(HTTPParseError(status: 502, reason: reason))
        }
        let pattern = Self.pattern
        let start = line.startIndex
        for index in line.indices {
            let offset = index - start
            let byte = line[index]
            if offset < pattern.count {
                let matches = pattern[offset] == 0x30 ? ASCII.isDigit(byte) : byte == pattern[offset]
                guard matches else { return failure("the status line is malformed") }
            } else if !ASCII.isFieldValueChar(byte) {
                return failure("the reason phrase contains a control character")
            }
        }
        guard complete else { return .success(nil) }
        guard line.count >= pattern.count else { return failure("the status line is malformed") }
        let major = line[start + 5], minor = line[start + 7]
        guard major == 0x31, minor == 0x30 || minor == 0x31 else { return failure("the gateway answered with an HTTP version other than 1.0 or 1.1") }
        let status = line[(start + 9)..<(start + 12)].reduce(0) { $0 * 10 + Int($1 - 0x30) }
        guard (100...599).contains(status) else { return failure("the status code is outside 100-599") }
        guard status != 101 else { return failure("the gateway switched protocols, but upgrades are not forwarded") }
        let reason = String(decoding: line[(start + pattern.count)...], as: UTF8.self)
        return .success(StatusLine(version: minor == 0x31 ? .http11 : .http10, status: status, reason: reason))
    }
}
