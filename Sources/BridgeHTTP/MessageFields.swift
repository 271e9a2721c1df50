/// The header fields that decide how a message is framed and whether its connection stays open,
/// read once per head and checked for conflicts.
///
/// Framing is where request smuggling lives: two parsers that disagree on where a body ends see
/// different requests. So every way of making the length ambiguous is refused outright rather than
/// resolved by a precedence rule the gateway (or the merchant's old client) might not share. In a
/// request that includes spellings RFC 9110 lets a recipient accept, such as `Content-Length: 5, 5`
/// or two equal `Content-Length` lines: the bridge forwards header lines as they came, so whatever
/// it accepts, the gateway must read the same, and a request is where smuggling starts. A response
/// comes from the one gateway and ends where the bridge says, so equal repeated lengths are
/// accepted there, as RFC 9110 §8.6 allows. An empty element in `Transfer-Encoding` (`chunked,`)
/// is refused both ways.
struct MessageFields {
    /// The one `Content-Length`, if a line carried one.
    var contentLength: Int?
    /// Every `Transfer-Encoding` element across all lines, in order, lowercased and trimmed.
    var transferCodings: [String] = []
    /// True if any `Transfer-Encoding` line was present.
    var hasTransferEncoding = false
    /// The options named by `Connection`, lowercased.
    var connectionOptions: [String] = []
    /// How many `Host` lines there were.
    var hostCount = 0

    /// Reads the fields, refusing (with `status`): a `Content-Length` that is not one decimal
    /// number on one line (with `equalLengthsAllowed`: that is not decimal, or differs from another);
    /// a `Transfer-Encoding` line that is empty or has an empty element; a `Connection` value that
    /// is not a list of tokens.
    static func read(_ headers: [HTTPHeader], status: Int,
                     equalLengthsAllowed: Bool = false) -> Result<MessageFields, HTTPParseError> {
        var fields = MessageFields()
        for header in headers {
            let name = header.name
            if name.equalsIgnoringASCIICase("content-length") {
                let elements = listElements(header.value, keepingEmpty: true)
                guard !elements.isEmpty, elements != [""] else {
                    return .failure(HTTPParseError(status: status, reason: "Content-Length is empty"))
                }
                let values = elements.map(decimalValue)
                guard let length = values.first ?? nil, !values.contains(nil) else {
                    return .failure(HTTPParseError(status: status, reason: "Content-Length is not a decimal number"))
                }
                if equalLengthsAllowed {
                    guard values.allSatisfy({ $0 == length }), fields.contentLength ?? length == length else {
                        return .failure(HTTPParseError(status: status, reason: "Content-Length values differ"))
                    }
                } else {
                    guard values.count == 1 else {
                        return .failure(HTTPParseError(status: status, reason: "Content-Length has more than one value"))
                    }
                    guard fields.contentLength == nil else {
                        return .failure(HTTPParseError(status: status, reason: "Content-Length appears on more than one line"))
                    }
                }
                fields.contentLength = length
            } else if name.equalsIgnoringASCIICase("transfer-encoding") {
                fields.hasTransferEncoding = true
                let elements = listElements(header.value, keepingEmpty: true)
                guard !elements.contains("") else {
                    return .failure(HTTPParseError(status: status, reason: "Transfer-Encoding is empty or has an empty element"))
                }
                fields.transferCodings += elements.map(\.asciiLowercased)
            } else if name.equalsIgnoringASCIICase("connection") {
                for element in listElements(header.value, keepingEmpty: false) {
                    guard element.utf8.allSatisfy(ASCII.isTokenChar) else {
                        return .failure(HTTPParseError(status: status, reason: "Connection must be a list of header names or options"))
                    }
                    fields.connectionOptions.append(element.asciiLowercased)
                }
            } else if name.equalsIgnoringASCIICase("host") {
                fields.hostCount += 1
            }
        }
        return .success(fields)
    }

    /// True if `Connection` names this option (`close`, `keep-alive`, or a header name).
    func connectionNames(_ option: String) -> Bool {
        connectionOptions.contains(option)
    }

    /// Whether the connection closes after this message: `Connection: close`, or HTTP/1.0 without
    /// `Connection: keep-alive`.
    func wantsClose(version: HTTPVersion) -> Bool {
        if connectionNames("close") { return true }
        return version == .http10 && !connectionNames("keep-alive")
    }
}

/// The elements of a comma-separated field value (RFC 9110 §5.6.1), trimmed of whitespace.
/// Empty elements are dropped, as the RFC asks of recipients, unless `keepingEmpty` is set (for
/// fields such as `Content-Length` where an empty element is an error worth seeing).
func listElements(_ value: String, keepingEmpty: Bool) -> [String] {
    var elements: [String] = []
    for piece in value.utf8.split(separator: ASCII.comma, omittingEmptySubsequences: false) {
        var slice = piece[...]
        while let first = slice.first, ASCII.isWhitespace(first) { slice = slice.dropFirst() }
        while let last = slice.last, ASCII.isWhitespace(last) { slice = slice.dropLast() }
        if slice.isEmpty, !keepingEmpty { continue }
        elements.append(String(decoding: slice, as: UTF8.self))
    }
    return elements
}

/// A non-negative decimal number of at most 18 digits (so it cannot overflow), or `nil`.
func decimalValue(_ text: String) -> Int? {
    let digits = text.utf8
    guard !digits.isEmpty, digits.count <= 18 else { return nil }
    var value = 0
    for digit in digits {
        guard ASCII.isDigit(digit) else { return nil }
        value = value * 10 + Int(digit - 0x30)
    }
    return value
}
