@testable import BridgeHTTP

/// Parses a request head from text (use `\r\n` explicitly).
func parseRequest(_ text: String, limit: Int = 16 * 1024) -> ParseResult<ProxyRequestHead> {
    parseRequest(bytes: Array(text.utf8), limit: limit)
}

func parseRequest(bytes: [UInt8], limit: Int = 16 * 1024) -> ParseResult<ProxyRequestHead> {
    bytes.withUnsafeBytes { ProxyRequestParser.parse($0, limit: limit) }
}

/// The head if the text parses completely, else `nil`.
func requestHead(_ text: String) -> ProxyRequestHead? {
    if case .complete(let head) = parseRequest(text) { return head }
    return nil
}

/// The error if the text is refused, else `nil`.
func requestError(_ text: String, limit: Int = 16 * 1024) -> HTTPParseError? {
    if case .invalid(let error) = parseRequest(text, limit: limit) { return error }
    return nil
}

func requestError(bytes: [UInt8]) -> HTTPParseError? {
    if case .invalid(let error) = parseRequest(bytes: bytes) { return error }
    return nil
}

func parseResponse(_ text: String, limit: Int = 64 * 1024) -> ParseResult<ResponseHead> {
    parseResponse(bytes: Array(text.utf8), limit: limit)
}

func parseResponse(bytes: [UInt8], limit: Int = 64 * 1024) -> ParseResult<ResponseHead> {
    bytes.withUnsafeBytes { ResponseParser.parse($0, limit: limit) }
}

func responseHead(_ text: String) -> ResponseHead? {
    if case .complete(let head) = parseResponse(text) { return head }
    return nil
}

func responseError(_ text: String) -> HTTPParseError? {
    if case .invalid(let error) = parseResponse(text) { return error }
    return nil
}

/// A minimal valid absolute-form request with extra header lines.
func post(_ headerLines: String = "", version: String = "HTTP/1.1") -> String {
    "POST http://gateway.example/pay \(version)\r\nHost: gateway.example\r\n\(headerLines)\r\n"
}

/// True for `.incomplete`.
func isIncomplete<Head>(_ result: ParseResult<Head>) -> Bool {
    if case .incomplete = result { return true }
    return false
}
