/// The few responses the bridge writes itself, toward a proxy client.
public enum HTTPResponse {
    /// The answer to a `CONNECT` whose tunnel is open: `HTTP/1.1 200 Connection established`,
    /// no headers. Tunnel bytes follow it.
    public static let connectionEstablished: [UInt8] = Array("HTTP/1.1 200 Connection established\r\n\r\n".utf8)

    /// The realm the bridge names when it asks for proxy credentials.
    public static let proxyAuthenticateValue = "Basic realm=\"tls-bridge\""

    /// A complete error response that closes the connection:
    /// `HTTP/1.1 <status> <phrase>`, `Content-Type: text/plain; charset=utf-8`, `Content-Length`,
    /// `Connection: close`, the extra headers, and `<reason>\n` as the body.
    ///
    /// A 407 carries `Proxy-Authenticate: Basic realm="tls-bridge"` unless `extraHeaders` has its
    /// own. Extra headers with a name that is not a token are left out, and control characters in
    /// their values become spaces, so no header can be split into two.
    public static func error(status: Int, reason: String, extraHeaders: [HTTPHeader] = []) -> [UInt8] {
        var headers = extraHeaders.filter { !$0.name.isEmpty && $0.name.utf8.allSatisfy(ASCII.isTokenChar) }
        if status == 407, !headers.contains(where: { $0.name.equalsIgnoringASCIICase("proxy-authenticate") }) {
            headers.insert(HTTPHeader(name: "Proxy-Authenticate", value: proxyAuthenticateValue), at: 0)
        }
        let body = Array(reason.utf8) + [ASCII.lf]
        var output = Array("HTTP/1.1 \(statusText(status)) \(reasonPhrase(for: status))\r\n".utf8)
        output += "Content-Type: text/plain; charset=utf-8\r\nContent-Length: \(body.count)\r\nConnection: close\r\n".utf8
        for header in headers {
            output += header.name.utf8
            output += [ASCII.colon, ASCII.space]
            output += header.value.utf8.map { ASCII.isFieldValueChar($0) ? $0 : ASCII.space }
            output += [ASCII.cr, ASCII.lf]
        }
        output += [ASCII.cr, ASCII.lf]
        output += body
        return output
    }

    /// The standard reason phrase for a status the bridge sends, or a generic one by class.
    public static func reasonPhrase(for status: Int) -> String {
        switch status {
        case 200: return "Connection established"
        case 400: return "Bad Request"
        case 403: return "Forbidden"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 407: return "Proxy Authentication Required"
        case 408: return "Request Timeout"
        case 411: return "Length Required"
        case 413: return "Content Too Large"
        case 414: return "URI Too Long"
        case 431: return "Request Header Fields Too Large"
        case 500: return "Internal Server Error"
        case 501: return "Not Implemented"
        case 502: return "Bad Gateway"
        case 503: return "Service Unavailable"
        case 504: return "Gateway Timeout"
        case 505: return "HTTP Version Not Supported"
        case 400...499: return "Client Error"
        case 500...599: return "Server Error"
        default: return "Status"
        }
    }

    /// Three digits; anything outside 100...599 is sent as 500 rather than as a malformed line.
    private static func statusText(_ status: Int) -> String {
        (100...599).contains(status) ? String(status) : "500"
    }
}
