/// A request head as a forward-proxy client sends it, parsed and checked.
///
/// Only `ProxyRequestParser` makes these from bytes, so a value whose `bodyFraming` says
/// `.length(n)` has exactly one agreed `Content-Length`, never together with `Transfer-Encoding`.
public struct ProxyRequestHead: Sendable, Equatable {
    /// The request target, in the form it was sent (RFC 9112 §3.2).
    public enum Target: Sendable, Equatable {
        /// `CONNECT host:port`. An IPv6 host is stored without its brackets; the host is lowercased.
        case authority(host: String, port: UInt16)
        /// `scheme://host[:port]/path?query`. Scheme and host lowercased (an IPv6 host without
        /// brackets), port as written if present, `pathAndQuery` as sent and starting with `/`
        /// (`/` if the URL had no path). Schemes other than http/https are parsed; refusing them is
        /// the session's decision.
        case absolute(scheme: String, host: String, port: UInt16?, pathAndQuery: String)
        /// `/path?query`: a request meant for an origin server. Not valid toward a proxy; the session
        /// answers 400.
        case origin(pathAndQuery: String)
        /// `OPTIONS *`.
        case asterisk

        /// The value for a `Host` header naming this target's host: IPv6 in brackets, and the port
        /// when one was written. `nil` for origin-form and `*`, which name no host.
        public var hostHeaderValue: String? {
            switch self {
            case .authority(let host, let port):
                return Self.bracketed(host) + ":\(port)"
            case .absolute(_, let host, let port, _):
                return Self.bracketed(host) + (port.map { ":\($0)" } ?? "")
            case .origin, .asterisk:
                return nil
            }
        }

        /// The target as it goes into an origin-form request line.
        var originFormText: String {
            switch self {
            case .authority: return hostHeaderValue ?? ""
            case .absolute(_, _, _, let pathAndQuery), .origin(let pathAndQuery): return pathAndQuery
            case .asterisk: return "*"
            }
        }

        private static func bracketed(_ host: String) -> String {
            host.utf8.contains(ASCII.colon) ? "[\(host)]" : host
        }
    }

    /// The method token, case-sensitive as sent (`CONNECT`, `POST`, ...).
    public var method: String
    /// Where the request goes.
    public var target: Target
    /// The request's HTTP version.
    public var version: HTTPVersion
    /// The header fields in the order received, names as sent.
    public var headers: [HTTPHeader]
    /// Bytes of the head from the start of the buffer, including the final CRLF CRLF: the body (or
    /// the next pipelined request) starts here.
    public var headLength: Int
    /// How the request body is delimited: `Transfer-Encoding: chunked` → `.chunked`,
    /// `Content-Length` → `.length`, neither → `.none`. Never `.untilClose` for a request.
    public var bodyFraming: BodyFraming
    /// True if the client wants the connection closed after this exchange: `Connection: close`,
    /// or HTTP/1.0 without `Connection: keep-alive`.
    public var wantsClose: Bool

    /// A head with these parts, for tests and for the session's own bookkeeping.
    public init(method: String, target: Target, version: HTTPVersion, headers: [HTTPHeader],
                headLength: Int, bodyFraming: BodyFraming, wantsClose: Bool) {
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        self.headLength = headLength
        self.bodyFraming = bodyFraming
        self.wantsClose = wantsClose
    }

    /// The value of the first header with this name, compared case-insensitively.
    public func header(_ name: String) -> String? {
        headers.first { $0.name.equalsIgnoringASCIICase(name) }?.value
    }

    /// The headers a proxy never forwards (RFC 9110 §7.6.1), lowercased. `Transfer-Encoding` is
    /// not among them: the body passes through unchanged, so its framing must too.
    static let hopByHopNames: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "proxy-authorization", "proxy-authenticate",
        "te", "trailer", "upgrade",
    ]

    /// Headers that describe the body's framing; never dropped, even if `Connection` names them.
    static let framingNames: Set<String> = ["content-length", "transfer-encoding"]

    /// The head to send upstream in origin form.
    ///
    /// The request line is `METHOD pathAndQuery HTTP/1.1`; then `Host: host` (replacing every
    /// `Host` the client sent), then the client's headers in order without the hop-by-hop ones:
    /// `Connection` and every header it names, `Keep-Alive`, `Proxy-Connection`,
    /// `Proxy-Authorization`, `Proxy-Authenticate`, `TE`, `Trailer` and `Upgrade`.
    /// `Transfer-Encoding` and `Content-Length` are kept, since the body follows unchanged.
    ///
    /// - Parameter host: the `Host` value to send, as it should appear (see `Target.hostHeaderValue`).
    ///   Characters that could end the header line are removed from it.
    public func rewrittenForOrigin(host: String) -> [UInt8] {
        var named = Set<String>()
        for header in headers where header.name.equalsIgnoringASCIICase("connection") {
            for option in listElements(header.value, keepingEmpty: false) {
                named.insert(option.asciiLowercased)
            }
        }
        named.subtract(Self.framingNames)

        var output: [UInt8] = []
        output.reserveCapacity(headLength + host.utf8.count + 64)
        output += method.utf8
        output.append(ASCII.space)
        output += target.originFormText.utf8
        output += " HTTP/1.1\r\nHost: ".utf8
        output += host.utf8.filter { ASCII.isFieldValueChar($0) && $0 != ASCII.tab }
        output += [ASCII.cr, ASCII.lf]
        for header in headers {
            let lowered = header.name.asciiLowercased
            if lowered == "host" || Self.hopByHopNames.contains(lowered) || named.contains(lowered) { continue }
            output += header.name.utf8
            output += [ASCII.colon, ASCII.space]
            output += header.value.utf8
            output += [ASCII.cr, ASCII.lf]
        }
        output += [ASCII.cr, ASCII.lf]
        return output
    }

    /// The head to deliver to an origin server behind the bridge (a notification to the merchant's
    /// web server), with the peer's address in one header the bridge vouches for.
    ///
    /// The request line keeps the method and the version as sent (an absolute-form target goes in
    /// origin form, which every origin server reads). Every header whose name is in `removing` is
    /// dropped (whatever the peer claimed about addresses), compared in any letter case and with
    /// `_` read as `-`: PHP and IIS hand `X_Forwarded_For` to the application exactly as they hand
    /// `X-Forwarded-For` (both become `HTTP_X_FORWARDED_FOR`). Then `header: value` is added, once,
    /// after the peer's headers. Nothing else changes.
    public func rewrittenForOriginServer(setting header: String, to value: String, removing names: [String]) -> [UInt8] {
        func normalized(_ name: String) -> String {
            String(decoding: name.utf8.map { $0 == UInt8(ascii: "_") ? UInt8(ascii: "-") : ASCII.lowercased($0) }, as: UTF8.self)
        }
        let dropped = Set(names.map(normalized))
        var output: [UInt8] = []
        output.reserveCapacity(headLength + header.utf8.count + value.utf8.count + 8)
        output += method.utf8
        output.append(ASCII.space)
        output += target.originFormText.utf8
        output += (version == .http10 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n").utf8
        for field in headers where !dropped.contains(normalized(field.name)) {
            output += field.name.utf8
            output += [ASCII.colon, ASCII.space]
            output += field.value.utf8
            output += [ASCII.cr, ASCII.lf]
        }
        output += header.utf8
        output += [ASCII.colon, ASCII.space]
        output += value.utf8.filter { ASCII.isFieldValueChar($0) && $0 != ASCII.tab }
        output += [ASCII.cr, ASCII.lf, ASCII.cr, ASCII.lf]
        return output
    }
}
