import BridgeHTTP

/// One fuzz input: the same bytes are read as a request head, a response head, a chunked body and
/// proxy credentials, and every answer is checked against what the API promises. A broken promise
/// is a crash, which libFuzzer reports with the input.
func fuzzHTTP(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    checkRequest(bytes)
    checkResponse(bytes)
    checkChunked(bytes)
    checkCredentials(bytes)
    return 0
}

func require(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError("invariant broken: \(message())") }
}

/// A split point taken from the input, so the fuzzer can steer it.
func splitPoint(_ bytes: UnsafeRawBufferPointer, below bound: Int) -> Int {
    guard bound > 0 else { return 0 }
    let seed = bytes.isEmpty ? 0 : Int(bytes[bytes.count - 1]) << 8 | Int(bytes[bytes.count / 2])
    return seed % bound
}

// MARK: Requests

let hopByHop: Set<String> = [
    "connection", "keep-alive", "proxy-connection", "proxy-authorization", "proxy-authenticate", "te", "trailer", "upgrade", "host",
]

func checkRequest(_ bytes: UnsafeRawBufferPointer) {
    let result = ProxyRequestParser.parse(bytes)
    checkPrefixes(bytes, full: result, parse: { ProxyRequestParser.parse($0) })
    switch result {
    case .incomplete:
        require(bytes.count < 16 * 1024, "incomplete with the limit reached")
    case .invalid(let error):
        require([400, 414, 431, 501, 505].contains(error.status), "request status \(error.status)")
    case .complete(let head):
        require(head.headLength > 0 && head.headLength <= bytes.count, "headLength \(head.headLength) of \(bytes.count)")
        require(head.bodyFraming != .untilClose, "request framed until close")
        if case .length(let length) = head.bodyFraming { require(length >= 0, "negative length") }
        // The same bytes with a limit one short of the head are too large, never something else.
        if case .invalid(let error) = ProxyRequestParser.parse(bytes, limit: head.headLength - 1) {
            require(error.status == 431, "limit below the head gave \(error.status)")
        } else {
            fatalError("invariant broken: limit below the head was not refused")
        }
        checkRewrite(head)
    }
}

/// Parsing a prefix gives `.incomplete` or the full input's refusal; a head never looks
/// complete before all of it has arrived.
func checkPrefixes<Head: Equatable>(_ bytes: UnsafeRawBufferPointer, full: ParseResult<Head>,
                                     parse: (UnsafeRawBufferPointer) -> ParseResult<Head>) {
    guard bytes.count > 1 else { return }
    for end in [splitPoint(bytes, below: bytes.count), bytes.count - 1] {
        let prefix = UnsafeRawBufferPointer(rebasing: bytes[..<end])
        switch (parse(prefix), full) {
        case (.incomplete, _):
            continue
        case (.invalid(let early), .invalid(let late)):
            require(early == late, "prefix \(end) refused for \(early.reason), all for \(late.reason)")
        case (.complete(let early), .complete(let late)):
            require(early == late, "prefix \(end) parsed differently")
        case (let early, _):
            fatalError("invariant broken: prefix \(end) gave \(early), all gave \(full)")
        }
    }
}

func checkRewrite(_ head: ProxyRequestHead) {
    let host = head.target.hostHeaderValue ?? "fuzz.example"
    let rewritten = head.rewrittenForOrigin(host: host)
    var named = Set<String>()
    for header in head.headers where header.name.lowercased() == "connection" {
        for option in header.value.split(separator: ",") {
            named.insert(trimmed(option).lowercased())
        }
    }
    named.subtract(["content-length", "transfer-encoding"])
    let kept = head.headers.filter { !hopByHop.contains($0.name.lowercased()) && !named.contains($0.name.lowercased()) }
    let expected = [HTTPHeader(name: "Host", value: host)] + kept
    guard expected.count <= 100 else { return }
    let again = rewritten.withUnsafeBytes { ProxyRequestParser.parse($0, limit: rewritten.count) }
    guard case .complete(let parsed) = again else {
        fatalError("invariant broken: rewritten head does not parse: \(again)")
    }
    require(parsed.headLength == rewritten.count, "rewritten headLength")
    require(parsed.method == head.method, "rewritten method")
    require(parsed.version == .http11, "rewritten version")
    require(parsed.headers == expected, "rewritten headers \(parsed.headers) vs \(expected)")
    require(parsed.bodyFraming == head.bodyFraming, "rewritten framing")
    switch head.target {
    case .absolute(_, _, _, let pathAndQuery), .origin(let pathAndQuery):
        require(parsed.target == .origin(pathAndQuery: pathAndQuery), "rewritten target")
    case .authority, .asterisk:
        require(parsed.target == head.target, "rewritten target")
    }
}

func trimmed(_ text: Substring) -> String {
    var slice = text.utf8[...]
    while let first = slice.first, first == 0x20 || first == 0x09 { slice = slice.dropFirst() }
    while let last = slice.last, last == 0x20 || last == 0x09 { slice = slice.dropLast() }
    return String(decoding: slice, as: UTF8.self)
}

// MARK: Responses

func checkResponse(_ bytes: UnsafeRawBufferPointer) {
    let result = ResponseParser.parse(bytes)
    checkPrefixes(bytes, full: result, parse: { ResponseParser.parse($0) })
    switch result {
    case .incomplete:
        require(bytes.count < 64 * 1024, "incomplete with the limit reached")
    case .invalid(let error):
        require(error.status == 502, "response status \(error.status)")
    case .complete(let head):
        require(head.headLength > 0 && head.headLength <= bytes.count, "headLength \(head.headLength) of \(bytes.count)")
        require(head.status >= 100 && head.status <= 599 && head.status != 101, "status \(head.status)")
        for method in ["GET", "HEAD", "CONNECT", "POST"] {
            let framing = head.bodyFraming(requestMethod: method)
            if head.isInterim || method == "HEAD" { require(framing == .none, "interim or HEAD with a body") }
            if case .length(let length) = framing { require(length >= 0, "negative length") }
        }
    }
}

// MARK: Chunked bodies

enum ChunkOutcome: Equatable {
    case finished(Int)
    case invalid(String)
    case waiting(Int)
}

/// Feeds `input` in pieces of `piece` bytes, showing the scanner at most `prefixSize` bytes at a
/// time (more when it asks), like a session would.
func scan(_ input: UnsafeRawBufferPointer, piece: Int, prefixSize: Int) -> ChunkOutcome {
    var scanner = ChunkedBodyScanner(maxChunkSizeLine: 64, maxTrailerBytes: 256)
    var start = 0  // first byte not yet forwarded
    var end = 0    // bytes that have arrived
    var forwarded = 0
    while true {
        var shown = prefixSize
        while true {
            let buffered = end - start
            let prefix = UnsafeRawBufferPointer(rebasing: input[start..<(start + min(shown, buffered))])
            switch scanner.next(prefix: prefix, available: buffered) {
            case .forward(let count):
                require(count > 0 && count <= buffered, "forwarded \(count) of \(buffered)")
                start += count
                forwarded += count
                shown = prefixSize
                continue
            case .finished(let count):
                require(count >= 0 && count <= buffered, "finished with \(count) of \(buffered)")
                return .finished(forwarded + count)
            case .invalid(let reason):
                return .invalid(reason)
            case .needMore:
                if shown < buffered {
                    shown = min(buffered, shown * 2)
                    continue
                }
            }
            break
        }
        guard end < input.count else { return .waiting(forwarded) }
        end = min(input.count, end + piece)
    }
}

func checkChunked(_ bytes: UnsafeRawBufferPointer) {
    let whole = scan(bytes, piece: bytes.count, prefixSize: .max)
    let byteByByte = scan(bytes, piece: 1, prefixSize: .max)
    require(whole == byteByByte, "whole \(whole) vs one at a time \(byteByByte)")
    let piece = 1 + splitPoint(bytes, below: 16)
    let split = scan(bytes, piece: piece, prefixSize: 1 + piece / 2)
    require(whole == split, "whole \(whole) vs pieces of \(piece) \(split)")
    if case .finished(let length) = whole { require(length <= bytes.count, "finished past the input") }
}

// MARK: Credentials

func checkCredentials(_ bytes: UnsafeRawBufferPointer) {
    let text = String(decoding: bytes, as: UTF8.self)
    _ = basicCredentials("Basic " + text)
    // Encoding user:password and decoding it again gives them back.
    guard let colon = bytes.firstIndex(of: 0x3A),
          !bytes.contains(where: { $0 < 0x20 || $0 == 0x7F }),
          String(validating: bytes, as: UTF8.self) != nil else { return }
    let decoded = basicCredentials("Basic " + base64(Array(bytes)))
    require(decoded?.user == String(decoding: bytes[..<colon], as: UTF8.self), "user round trip")
    require(decoded?.password == String(decoding: bytes[(colon + 1)...], as: UTF8.self), "password round trip")
}

func base64(_ bytes: [UInt8]) -> String {
    let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    var output: [UInt8] = []
    for start in stride(from: 0, to: bytes.count, by: 3) {
        let group = bytes[start..<min(start + 3, bytes.count)]
        var value = 0
        for (offset, byte) in group.enumerated() { value |= Int(byte) << (16 - 8 * offset) }
        for position in 0..<4 {
            output.append(position <= group.count ? alphabet[(value >> (18 - 6 * position)) & 0x3F] : 0x3D)
        }
    }
    return String(decoding: output, as: UTF8.self)
}
