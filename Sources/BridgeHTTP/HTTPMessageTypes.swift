/// The vocabulary shared by the request and response parsers: header fields, versions, errors,
/// results and body framing.
///
/// Everything here is a plain `Sendable` value, so a parsed head can be logged, compared in a test or
/// handed to another thread without thinking about buffers: the parsers copy what they keep out of
/// the caller's bytes.

/// One header field line, as received.
///
/// `name` keeps the spelling the peer sent (names are compared case-insensitively, but forwarded as
/// written). `value` has its leading and trailing whitespace removed and is otherwise unchanged.
public struct HTTPHeader: Sendable, Equatable {
    /// The field name, a token, spelled as sent.
    public var name: String
    /// The field value without surrounding whitespace.
    public var value: String

    /// A header field with this name and value.
    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

/// The two HTTP versions the bridge speaks. Anything else is refused with 505 (requests) or 502
/// (responses).
public enum HTTPVersion: Sendable, Equatable {
    case http10
    case http11
}

/// Why a head was refused, and the status the bridge answers with.
///
/// Request statuses: 400 malformed, 414 target too long, 431 head too large or too many header
/// lines, 501 unsupported transfer coding, 505 unsupported version. Every response-parsing error
/// carries 502, since a broken upstream answer is a bad gateway from the client's point of view.
///
/// `reason` is written for an operator and for the client's error body. It never quotes the bytes
/// received (they may carry card data or credentials), only positions and names of rules.
public struct HTTPParseError: Error, Sendable, Equatable {
    /// The HTTP status the bridge answers with.
    public var status: Int
    /// What was wrong, without payload.
    public var reason: String

    /// An error with this status and reason.
    public init(status: Int, reason: String) {
        self.status = status
        self.reason = reason
    }
}

/// The outcome of parsing a head from the start of a buffer.
public enum ParseResult<Head: Sendable>: Sendable {
    /// No complete head yet and nothing seen so far is wrong: call again when more bytes arrive.
    case incomplete
    /// A complete head; its `headLength` says where the body (or the next head) starts.
    case complete(Head)
    /// The head is refused; answer with the error's status and close the connection.
    case invalid(HTTPParseError)
}

extension ParseResult: Equatable where Head: Equatable {}

/// How the end of a message body is found (RFC 9112 §6).
public enum BodyFraming: Sendable, Equatable {
    /// No body follows the head.
    case none
    /// Exactly this many bytes follow the head.
    case length(Int)
    /// A chunked body follows; walk it with `ChunkedBodyScanner`.
    case chunked
    /// The body runs until the sender closes the connection (responses only).
    case untilClose
}
