/// Splits the start of a buffer into head lines, enforcing CRLF line ends and the byte limit.
///
/// Lines are handed out in order; nothing after the line being looked at is read. That keeps the
/// parsers consistent however the bytes arrive: if a prefix of a head is refused, the whole head is
/// refused for the same reason, and a head that parses never looked `invalid` while incomplete.
struct HeadReader {
    /// What the next line looks like.
    enum Next {
        /// A complete line; the range excludes its CRLF. An empty range is the end of the head.
        case line(Range<Int>)
        /// No line end yet; the range is what has arrived (without a trailing CR that may start a
        /// CRLF). `atLimit` is true when no more bytes may be added before the limit.
        case partial(Range<Int>, atLimit: Bool)
        /// The line ends in a bare LF, or contains a CR not followed by LF. The range is the line's
        /// content before that byte.
        case badLineEnd(Range<Int>, bareCR: Bool)
    }

    let bytes: UnsafeRawBufferPointer
    /// How far lines may reach: the buffer's end or the limit, whichever is first.
    let end: Int
    let atLimit: Bool
    /// Where the next line starts; after the empty line, the head's length.
    private(set) var position = 0

    init(_ bytes: UnsafeRawBufferPointer, limit: Int) {
        self.bytes = bytes
        self.end = min(bytes.count, max(limit, 0))
        self.atLimit = bytes.count >= limit
    }

    /// The next line, advancing past it when it is complete.
    mutating func nextLine() -> Next {
        let start = position
        var index = start
        while index < end {
            let byte = bytes[index]
            if byte == ASCII.lf {
                guard index > start, bytes[index - 1] == ASCII.cr else {
                    return .badLineEnd(start..<index, bareCR: false)
                }
                position = index + 1
                return .line(start..<(index - 1))
            }
            if byte == ASCII.cr, index + 1 < end, bytes[index + 1] != ASCII.lf {
                return .badLineEnd(start..<index, bareCR: true)
            }
            index += 1
        }
        // A CR as the last byte may be the start of the CRLF: leave it out of the partial line.
        let partialEnd = (index > start && bytes[index - 1] == ASCII.cr) ? index - 1 : index
        return .partial(start..<partialEnd, atLimit: atLimit)
    }

    /// What reading the header lines of a head found.
    enum Headers {
        case complete([HTTPHeader])
        case incomplete
        case invalid(HTTPParseError)
    }

    /// Reads header lines up to the empty line that ends the head. `message` ("request" or
    /// "response") names them in errors; `status` is the status of a malformed line, `tooManyStatus`
    /// that of more than `maxLines` lines, `headTooLarge` the error when the limit is reached first.
    mutating func headerLines(message: String, maxLines: Int, status: Int, tooManyStatus: Int,
                              headTooLarge: HTTPParseError) -> Headers {
        var headers: [HTTPHeader] = []
        while true {
            switch nextLine() {
            case .partial(_, let atLimit):
                return atLimit ? .invalid(headTooLarge) : .incomplete
            case .badLineEnd(_, let bareCR):
                let line = message == "request" ? "header line \(headers.count + 1)" : "\(message) header line \(headers.count + 1)"
                return .invalid(Self.lineEndError(line: line, bareCR: bareCR, status: status))
            case .line(let range):
                if range.isEmpty { return .complete(headers) }
                guard headers.count < maxLines else {
                    return .invalid(HTTPParseError(status: tooManyStatus, reason: "the \(message) has more than \(maxLines) header lines"))
                }
                switch parseHeaderLine(bytes[range], number: headers.count + 1, status: status) {
                case .failure(let error):
                    return .invalid(message == "request" ? error : HTTPParseError(status: status, reason: "\(message) " + error.reason))
                case .success(let header):
                    headers.append(header)
                }
            }
        }
    }

    /// The error for a line ending that is not CRLF.
    static func lineEndError(line: String, bareCR: Bool, status: Int) -> HTTPParseError {
        if bareCR {
            return HTTPParseError(status: status, reason: "\(line) contains a CR not followed by LF; lines must end with CRLF")
        }
        return HTTPParseError(status: status, reason: "\(line) ends with a bare LF; lines must end with CRLF")
    }
}

/// Parses one complete header field line: `token ":" OWS value OWS`.
///
/// Refused: a line starting with whitespace (obsolete line folding, or whitespace before the first
/// field), an empty or non-token name, whitespace between name and colon (RFC 9112 §5.1 requires a
/// 400 because some parsers would read a different name), control characters other than HTAB in
/// the value (NUL included), and values that are not valid UTF-8.
func parseHeaderLine(_ line: UnsafeRawBufferPointer.SubSequence, number: Int, status: Int) -> Result<HTTPHeader, HTTPParseError> {
    func failure(_ text: String) -> Result<HTTPHeader, HTTPParseError> {
        .failure(HTTPParseError(status: status, reason: "header line \(number) \(text)"))
    }
    var index = line.startIndex
    let end = line.endIndex
    if index < end, ASCII.isWhitespace(line[index]) {
        return failure("starts with whitespace (obsolete line folding is not accepted)")
    }
    while index < end, ASCII.isTokenChar(line[index]) { index += 1 }
    guard index < end else { return failure("has no colon") }
    let byte = line[index]
    if byte != ASCII.colon {
        if ASCII.isWhitespace(byte) { return failure("has whitespace before the colon") }
        return failure("has an invalid character in its name")
    }
    if index == line.startIndex { return failure("has an empty name") }
    let name = String(checkedBytes: line[line.startIndex..<index])

    var valueStart = index + 1
    while valueStart < end, ASCII.isWhitespace(line[valueStart]) { valueStart += 1 }
    var valueEnd = end
    while valueEnd > valueStart, ASCII.isWhitespace(line[valueEnd - 1]) { valueEnd -= 1 }
    var hasHighBytes = false
    for position in valueStart..<valueEnd {
        let valueByte = line[position]
        guard ASCII.isFieldValueChar(valueByte) else {
            return failure(valueByte == 0 ? "has a NUL byte in its value" : "has a control character in its value")
        }
        if valueByte >= 0x80 { hasHighBytes = true }
    }
    let valueBytes = line[valueStart..<valueEnd]
    if hasHighBytes {
        // Values are kept as strings and forwarded as their UTF-8; bytes that are not UTF-8 would
        // be changed on the way, so they are refused instead.
        guard let value = String(validating: valueBytes, as: UTF8.self) else {
            return failure("has a value that is not valid UTF-8")
        }
        return .success(HTTPHeader(name: name, value: value))
    }
    return .success(HTTPHeader(name: name, value: String(checkedBytes: valueBytes)))
}
