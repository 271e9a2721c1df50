/// A response head from the gateway, parsed and checked.
public struct ResponseHead: Sendable, Equatable {
    /// The status code, 100...599 except 101 (upgrades are never forwarded, so a 101 is refused).
    public var status: Int
    /// The reason phrase as sent (it may be empty).
    public var reason: String
    /// The response's HTTP version.
    public var version: HTTPVersion
    /// The header fields in the order received, names as sent.
    public var headers: [HTTPHeader]
    /// Bytes of the head including the final CRLF CRLF: the body (or the next head) starts here.
    public var headLength: Int
    /// True if the gateway closes the connection after this response: `Connection: close`, or
    /// HTTP/1.0 without `Connection: keep-alive`. A body framed `.untilClose` also ends the
    /// connection, whatever this says.
    public var wantsClose: Bool

    /// A head with these parts, for tests and for the session's own bookkeeping.
    public init(status: Int, reason: String = "", version: HTTPVersion, headers: [HTTPHeader], headLength: Int,
                wantsClose: Bool) {
        self.status = status
        self.reason = reason
        self.version = version
        self.headers = headers
        self.headLength = headLength
        self.wantsClose = wantsClose
    }

    /// True for 1xx: an interim response, after which the final head for the same request follows.
    public var isInterim: Bool {
        (100...199).contains(status)
    }

    /// The value of the first header with this name, compared case-insensitively.
    public func header(_ name: String) -> String? {
        headers.first { $0.name.equalsIgnoringASCIICase(name) }?.value
    }

    /// The values of every header with this name, in order, compared case-insensitively.
    public func headerValues(_ name: String) -> [String] {
        headers.filter { $0.name.equalsIgnoringASCIICase(name) }.map(\.value)
    }

    /// True if the only transfer coding is `chunked`: then the body can be passed on decoded.
    public var isOnlyChunked: Bool {
        guard case .success(let fields) = MessageFields.read(headers, status: 502, equalLengthsAllowed: true) else { return false }
        return fields.transferCodings.map(codingName) == ["chunked"]
    }

    /// The head to send an HTTP/1.0 client in place of this one when the chunked body is passed on
    /// decoded (RFC 9112 §6.1: chunked is never sent to an HTTP/1.0 client). `Transfer-Encoding`
    /// and `Trailer` are gone; so are `Connection`, `Keep-Alive` and the headers `Connection`
    /// names, replaced by `Connection: close`, because the decoded body ends where the connection
    /// does. Only for a head whose `isOnlyChunked` is true.
    public func dechunkedForHTTP10Client() -> [UInt8] {
        var named: Set<String> = ["transfer-encoding", "trailer", "connection", "keep-alive", "proxy-connection"]
        for header in headers where header.name.equalsIgnoringASCIICase("connection") {
            for option in listElements(header.value, keepingEmpty: false) { named.insert(option.asciiLowercased) }
        }
        var output = Array("HTTP/1.1 \(status) \(reason)\r\n".utf8)
        for header in headers where !named.contains(header.name.asciiLowercased) {
            output += header.name.utf8
            output += [ASCII.colon, ASCII.space]
            output += header.value.utf8
            output += [ASCII.cr, ASCII.lf]
        }
        output += "Connection: close\r\n\r\n".utf8
        return output
    }

    /// How this response's body is delimited (RFC 9112 §6.3), given the method of the request it
    /// answers: no body for `HEAD`, 1xx, 204, 304 and a 2xx to `CONNECT`; `.chunked` when chunked is
    /// the final transfer coding; `.untilClose` for any other transfer coding; `.length` from
    /// `Content-Length`; otherwise `.untilClose`. Conflicting fields were refused by the parser.
    public func bodyFraming(requestMethod: String) -> BodyFraming {
        if requestMethod == "HEAD" || isInterim || status == 204 || status == 304 { return .none }
        if requestMethod == "CONNECT", (200...299).contains(status) { return .none }
        guard case .success(let fields) = MessageFields.read(headers, status: 502, equalLengthsAllowed: true) else { return .untilClose }
        if fields.hasTransferEncoding {
            return fields.transferCodings.last.map(codingName) == "chunked" ? .chunked : .untilClose
        }
        if let length = fields.contentLength { return .length(length) }
        return .untilClose
    }
}

/// The name of a transfer coding element, without its parameters (`gzip;q=1` → `gzip`).
func codingName(_ element: String) -> String {
    let name = element.utf8.prefix { $0 != ASCII.semicolon }
    return String(decoding: name.reversed().drop(while: ASCII.isWhitespace).reversed(), as: UTF8.self)
}
