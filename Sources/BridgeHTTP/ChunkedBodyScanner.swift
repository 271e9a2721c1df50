/// Walks a chunked body (RFC 9112 §7.1) as it streams by, so it can be forwarded unchanged and its
/// end found.
///
/// The scanner never copies or changes the body: it only says how many of the buffered bytes
/// belong to it. Chunk-size lines and trailer lines are checked whole before they are counted, so a
/// malformed line is never forwarded; chunk data is counted without being looked at. Refused: a
/// missing or non-hex size, a size that overflows or has more than 16 hex digits, whitespace other
/// than before `;` in the size line, malformed chunk extensions, line ends other than CRLF, data
/// not followed by CRLF, a size line longer than `maxChunkSizeLine`, trailers longer than
/// `maxTrailerBytes`, malformed trailer lines and trailers that would change framing or routing (`Content-Length`,
/// `Transfer-Encoding`, `Host`).
public struct ChunkedBodyScanner: Sendable {
    /// What to do with the buffered bytes.
    public enum Step: Sendable, Equatable {
        /// These many bytes belong to the body: forward them, then call `next` again.
        case forward(Int)
        /// The bytes given do not yet decide anything (for example an incomplete chunk-size line):
        /// call again with more. If more is already buffered than the prefix held, pass a longer
        /// prefix; a whole size line (`maxChunkSizeLine`) or trailer line is needed at once.
        case needMore
        /// Forward these many bytes; the body (last chunk, trailers and final CRLF) is complete.
        case finished(Int)
        /// The body is malformed; close both connections. Nothing of the bad line was counted.
        case invalid(String)
    }

    private enum State: Sendable {
        case sizeLine
        case data(remaining: Int)
        case dataCR
        case dataLF
        case trailers
        case done
        case failed(String)
    }

    /// The longest chunk-size line accepted, including extensions and its CRLF.
    public let maxChunkSizeLine: Int
    /// The most bytes accepted after the last chunk's size line: trailer lines and the final CRLF.
    public let maxTrailerBytes: Int
    private var state = State.sizeLine
    private var trailerBytes = 0

    /// A scanner at the start of a chunked body.
    public init(maxChunkSizeLine: Int = 1024, maxTrailerBytes: Int = 16 * 1024) {
        self.maxChunkSizeLine = maxChunkSizeLine
        self.maxTrailerBytes = maxTrailerBytes
    }

    /// True once the whole body has been counted.
    public var isFinished: Bool {
        if case .done = state { return true }
        return false
    }

    /// How many bytes from the body's current position `next`/`nextSegment` may need to see at
    /// once to decide: the longest size line or trailer section, plus a data CRLF before it. Pass
    /// a prefix this long (or all that is buffered) when a shorter one answered `.needMore`.
    public var decisionWindow: Int { max(maxChunkSizeLine, maxTrailerBytes) + 2 }

    /// Looks at the start of what is buffered and says how much of it belongs to the body.
    ///
    /// `prefix` is a contiguous prefix of what is buffered; `available` the total buffered
    /// (at least `prefix.count`). Inside chunk data the answer may be
    /// `.forward(min(remaining, available))` without looking at the bytes. After `.forward(n)` the
    /// caller drops those `n` bytes from the front and calls again; after `.finished` the bytes that
    /// follow belong to the next message. Once `.invalid`, it stays invalid.
    public mutating func next(prefix: UnsafeRawBufferPointer, available: Int) -> Step {
        let available = max(available, prefix.count)
        var consumed = 0
        while true {
            let rest = consumed < prefix.count ? UnsafeRawBufferPointer(rebasing: prefix[consumed...])
                                               : UnsafeRawBufferPointer(start: nil, count: 0)
            switch nextSegment(prefix: rest, available: available - consumed) {
            case .data(let count), .framing(let count):
                consumed += count
            case .end(let count):
                return .finished(consumed + count)
            case .needMore:
                return consumed > 0 ? .forward(consumed) : .needMore
            case .invalid(let reason):
                return .invalid(reason)
            }
        }
    }

    /// One piece of the body, for passing it on decoded (to an HTTP/1.0 client, which must never
    /// receive chunked framing).
    public enum Segment: Sendable, Equatable {
        /// These many bytes are chunk data: pass them on.
        case data(Int)
        /// These many bytes are framing (size lines, the CRLF after data, trailer lines): drop them.
        case framing(Int)
        /// These many framing bytes end the body: the last trailer line's CRLF or the final CRLF.
        case end(Int)
        /// As `Step.needMore`.
        case needMore
        /// As `Step.invalid`.
        case invalid(String)
    }

    /// Like `next`, but stops where chunk data and framing meet, so the caller can keep the one and
    /// drop the other. Framing is checked exactly as by `next`.
    public mutating func nextSegment(prefix: UnsafeRawBufferPointer, available: Int) -> Segment {
        let available = max(available, prefix.count)
        var consumed = 0
        func framingSoFar() -> Segment { consumed > 0 ? .framing(consumed) : .needMore }

        while true {
            switch state {
            case .failed(let reason):
                return .invalid(reason)
            case .done:
                return .end(consumed)
            case .data(let remaining):
                if consumed > 0 { return .framing(consumed) }
                let take = min(remaining, available)
                guard take > 0 else { return .needMore }
                state = take == remaining ? .dataCR : .data(remaining: remaining - take)
                return .data(take)
            case .dataCR, .dataLF:
                guard consumed < prefix.count else { return framingSoFar() }
                let expectingCR: Bool
                if case .dataCR = state { expectingCR = true } else { expectingCR = false }
                guard prefix[consumed] == (expectingCR ? ASCII.cr : ASCII.lf) else {
                    return failed("chunk data is not followed by CRLF")
                }
                consumed += 1
                state = expectingCR ? .dataLF : .sizeLine
            case .sizeLine:
                switch Self.findLine(prefix, from: consumed, maxLength: maxChunkSizeLine) {
                case .notYet:
                    return framingSoFar()
                case .tooLong:
                    return failed("a chunk-size line is longer than \(maxChunkSizeLine) bytes")
                case .bad(let reason):
                    return failed("a chunk-size line \(reason)")
                case .line(let contentEnd):
                    switch Self.chunkSize(prefix[consumed..<contentEnd]) {
                    case .failure(let error):
                        return failed(error.text)
                    case .success(let size):
                        consumed = contentEnd + 2
                        state = size == 0 ? .trailers : .data(remaining: size)
                    }
                }
            case .trailers:
                switch Self.findLine(prefix, from: consumed, maxLength: maxTrailerBytes - trailerBytes) {
                case .notYet:
                    return framingSoFar()
                case .tooLong:
                    return failed("the trailers are longer than \(maxTrailerBytes) bytes")
                case .bad(let reason):
                    return failed("a trailer line \(reason)")
                case .line(let contentEnd):
                    let lineLength = contentEnd + 2 - consumed
                    if contentEnd == consumed {
                        state = .done
                        return .end(consumed + 2)
                    }
                    switch parseHeaderLine(prefix[consumed..<contentEnd], number: 1, status: 400) {
                    case .failure:
                        return failed("a trailer line is malformed")
                    case .success(let field):
                        let name = field.name.asciiLowercased
                        if name == "content-length" || name == "transfer-encoding" || name == "host" {
                            return failed("a trailer carries \(field.name), which must not be sent as a trailer")
                        }
                    }
                    trailerBytes += lineLength
                    consumed = contentEnd + 2
                }
            }
        }
    }

    private mutating func failed(_ reason: String) -> Segment {
        state = .failed(reason)
        return .invalid(reason)
    }

    private enum LineSearch {
        case line(contentEnd: Int)
        case notYet
        case tooLong
        case bad(String)
    }

    /// Finds the CRLF that ends the line starting at `start`, looking at most `maxLength` bytes
    /// (CRLF included) ahead.
    private static func findLine(_ bytes: UnsafeRawBufferPointer, from start: Int, maxLength: Int) -> LineSearch {
        let end = min(bytes.count, start + max(maxLength, 0))
        var index = start
        while index < end {
            let byte = bytes[index]
            if byte == ASCII.lf {
                guard index > start, bytes[index - 1] == ASCII.cr else { return .bad("ends with a bare LF; lines must end with CRLF") }
                return .line(contentEnd: index - 1)
            }
            // Only bytes inside the window count: looking past it would make the answer depend on
            // how much happened to be buffered.
            if byte == ASCII.cr, index + 1 < end, bytes[index + 1] != ASCII.lf {
                return .bad("contains a CR not followed by LF")
            }
            index += 1
        }
        return bytes.count - start >= maxLength ? .tooLong : .notYet
    }

    /// The most hex digits a chunk size may have.
    static let maxSizeDigits = 16

    private struct SizeLineError: Error {
        var text: String
    }

    /// The size from a chunk-size line's content: `1*HEXDIG *( BWS ";" BWS name [ BWS "=" BWS
    /// ( token / quoted-string ) ] )`.
    private static func chunkSize(_ line: UnsafeRawBufferPointer.SubSequence) -> Result<Int, SizeLineError> {
        func failure(_ text: String) -> Result<Int, SizeLineError> { .failure(SizeLineError(text: text)) }
        var index = line.startIndex
        let end = line.endIndex
        var size = 0
        while index < end, let digit = ASCII.hexValue(line[index]) {
            // More digits than a 64-bit size needs, even as leading zeros, is where parsers part
            // ways (some truncate, some overflow, some refuse): refused, never forwarded.
            guard index - line.startIndex < maxSizeDigits else {
                return failure("a chunk size has more than \(maxSizeDigits) hex digits")
            }
            guard size <= (Int.max - digit) >> 4 else { return failure("a chunk size is too large") }
            size = size << 4 | digit
            index += 1
        }
        guard index > line.startIndex else { return failure("a chunk size is missing or not hexadecimal") }

        func skipWhitespace(_ position: inout Int) {
            while position < end, ASCII.isWhitespace(line[position]) { position += 1 }
        }
        func skipToken(_ position: inout Int) -> Bool {
            let start = position
            while position < end, ASCII.isTokenChar(line[position]) { position += 1 }
            return position > start
        }
        while index < end {
            skipWhitespace(&index)
            guard index < end, line[index] == ASCII.semicolon else {
                return failure("a chunk-size line has an invalid character after the size")
            }
            index += 1
            skipWhitespace(&index)
            guard skipToken(&index) else { return failure("a chunk extension has no name") }
            var valueIndex = index
            skipWhitespace(&valueIndex)
            guard valueIndex < end, line[valueIndex] == ASCII.equals else { continue }
            valueIndex += 1
            skipWhitespace(&valueIndex)
            if valueIndex < end, line[valueIndex] == ASCII.quote {
                valueIndex += 1
                var closed = false
                while valueIndex < end {
                    let byte = line[valueIndex]
                    if byte == ASCII.quote {
                        valueIndex += 1
                        closed = true
                        break
                    }
                    if byte == ASCII.backslash {
                        guard valueIndex + 1 < end, ASCII.isFieldValueChar(line[valueIndex + 1]) else {
                            return failure("a chunk extension has a malformed quoted value")
                        }
                        valueIndex += 2
                    } else {
                        guard ASCII.isFieldValueChar(byte) else { return failure("a chunk extension has a malformed quoted value") }
                        valueIndex += 1
                    }
                }
                guard closed else { return failure("a chunk extension has a malformed quoted value") }
            } else {
                guard skipToken(&valueIndex) else { return failure("a chunk extension has an empty value") }
            }
            index = valueIndex
        }
        return .success(size)
    }
}
