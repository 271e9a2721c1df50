/// Reads a request target (RFC 9112 §3.2) in the form its method calls for.
///
/// `CONNECT` must carry authority-form (`host:port`), `*` is only for `OPTIONS`, and everything else
/// is origin-form (`/path?query`, which a proxy refuses later) or absolute-form
/// (`scheme://host[:port][/path][?query]`). The target has already been checked to be visible ASCII
/// without spaces and at most 8 KiB long.
enum RequestTargetParsing {
    static func parse(method: String, target: UnsafeRawBufferPointer.SubSequence) -> Result<ProxyRequestHead.Target, HTTPParseError> {
        func failure(_ reason: String) -> Result<ProxyRequestHead.Target, HTTPParseError> {
            .failure(HTTPParseError(status: 400, reason: reason))
        }
        if method == "CONNECT" {
            guard target.first != ASCII.slash, target.first != ASCII.asterisk, !containsSchemeSeparator(target) else {
                return failure("CONNECT needs a host:port target (authority-form)")
            }
            return authorityForm(target).mapError { HTTPParseError(status: 400, reason: "CONNECT target \($0.text)") }
        }
        if target.count == 1, target.first == ASCII.asterisk {
            return method == "OPTIONS" ? .success(.asterisk) : failure("the target * is only valid with OPTIONS")
        }
        if target.first == ASCII.slash {
            guard !target.contains(ASCII.hash) else { return failure("request target contains a fragment (#)") }
            return .success(.origin(pathAndQuery: String(checkedBytes: target)))
        }
        if containsSchemeSeparator(target) {
            return absoluteForm(target)
        }
        if case .success = authorityForm(target) {
            return failure("a host:port target (authority-form) is only valid with CONNECT")
        }
        return failure("request target is not a URL (scheme://host/path) or a path")
    }

    /// True if the target starts with `scheme://`.
    private static func containsSchemeSeparator(_ target: UnsafeRawBufferPointer.SubSequence) -> Bool {
        guard let first = target.first, ASCII.isAlpha(first) else { return false }
        var index = target.startIndex + 1
        while index < target.endIndex {
            let byte = target[index]
            if byte == ASCII.colon {
                return target.endIndex - index >= 3 && target[index + 1] == ASCII.slash && target[index + 2] == ASCII.slash
            }
            guard ASCII.isAlpha(byte) || ASCII.isDigit(byte) || byte == 0x2B || byte == ASCII.dash || byte == ASCII.dot else {
                return false
            }
            index += 1
        }
        return false
    }

    /// `host:port` with a required port; the error text completes "CONNECT target ...".
    private static func authorityForm(_ target: UnsafeRawBufferPointer.SubSequence) -> Result<ProxyRequestHead.Target, TargetError> {
        switch hostAndPort(target) {
        case .failure(let error):
            return .failure(error)
        case .success((let host, let port)):
            guard let port else { return .failure(TargetError("has no port")) }
            return .success(.authority(host: host, port: port))
        }
    }

    /// `scheme://authority[path-abempty][?query]`. The scheme and host are lowercased, the path
    /// and query kept as sent (starting with `/`; `/` if there was none).
    private static func absoluteForm(_ target: UnsafeRawBufferPointer.SubSequence) -> Result<ProxyRequestHead.Target, HTTPParseError> {
        func failure(_ reason: String) -> Result<ProxyRequestHead.Target, HTTPParseError> {
            .failure(HTTPParseError(status: 400, reason: reason))
        }
        guard !target.contains(ASCII.hash) else { return failure("request target contains a fragment (#)") }
        let colon = target.firstIndex(of: ASCII.colon)!  // present: containsSchemeSeparator checked it
        let scheme = String(decoding: target[target.startIndex..<colon].map(ASCII.lowercased), as: UTF8.self)
        let authorityStart = colon + 3
        let authorityEnd = target[authorityStart...].firstIndex { $0 == ASCII.slash || $0 == ASCII.question } ?? target.endIndex
        let authority = target[authorityStart..<authorityEnd]
        guard !authority.isEmpty else { return failure("request URL has no host") }
        let hostPort: (String, UInt16?)
        switch hostAndPort(authority, emptyPortAllowed: true) {
        case .failure(let error): return failure("request URL host \(error.text)")
        case .success(let value): hostPort = value
        }
        let rest = target[authorityEnd...]
        let pathAndQuery: String
        if rest.isEmpty {
            pathAndQuery = "/"
        } else if rest.first == ASCII.question {
            pathAndQuery = "/" + String(checkedBytes: rest)
        } else {
            pathAndQuery = String(checkedBytes: rest)
        }
        return .success(.absolute(scheme: scheme, host: hostPort.0, port: hostPort.1, pathAndQuery: pathAndQuery))
    }

    struct TargetError: Error {
        var text: String
        init(_ text: String) { self.text = text }
    }

    /// `host[:port]` where host is a name, an IPv4 address or a bracketed IPv6 address. User
    /// information (`user:password@`) is refused: it would put credentials into logs and upstream
    /// requests, and `a@b` is a classic way of making two parsers see different hosts.
    private static func hostAndPort(_ authority: UnsafeRawBufferPointer.SubSequence,
                                    emptyPortAllowed: Bool = false) -> Result<(String, UInt16?), TargetError> {
        guard !authority.contains(ASCII.at) else { return .failure(TargetError("contains user information (@), which is not accepted")) }
        var hostEnd = authority.endIndex
        var port: UInt16?
        // The port follows the last colon, unless that colon is inside IPv6 brackets.
        if let colon = authority.lastIndex(of: ASCII.colon),
           authority.first != ASCII.openBracket || authority[colon - 1] == ASCII.closeBracket {
            hostEnd = colon
            let portBytes = authority[(colon + 1)...]
            if portBytes.isEmpty {
                guard emptyPortAllowed else { return .failure(TargetError("has an empty port")) }
            } else {
                guard let value = HostSyntax.port(portBytes) else { return .failure(TargetError("has a port outside 1-65535")) }
                port = value
            }
        }
        guard let host = HostSyntax.host(authority[authority.startIndex..<hostEnd]) else {
            return .failure(TargetError("is not a DNS name or IP address"))
        }
        return .success((host, port))
    }
}
