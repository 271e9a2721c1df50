/// Parses `"127.0.0.1:8080"`, `"[::1]:8080"` or `"host.example:443"` into a `HostPort`.
///
/// The port is required and must be 1...65535. An IPv6 literal must be in brackets (otherwise its
/// last group could not be told apart from the port) and is stored without them. A name must be a
/// syntactically valid DNS name; dotted numbers that are not a valid IPv4 address (`"127.1"`,
/// `"999.0.0.1"`) are rejected rather than passed to a resolver that might read them differently.
/// Whether a host is allowed where it is used (listeners need IP literals) is the caller's check.
public func parseHostPort(_ text: String) -> HostPort? {
    guard let colon = text.lastIndex(of: ":") else { return nil }
    let hostText = text[..<colon]
    let portText = text[text.index(after: colon)...]
    guard isDecimalDigits(portText), portText.count <= 5, let port = Int(portText), (1...65535).contains(port) else {
        return nil
    }
    if hostText.hasPrefix("[") {
        guard hostText.hasSuffix("]"), hostText.count > 2 else { return nil }
        let inner = hostText.dropFirst().dropLast()
        guard IPAddress.parseIPv6(inner) != nil else { return nil }
        return HostPort(host: String(inner), port: UInt16(port))
    }
    guard IPAddress.parseIPv4(hostText) != nil || isValidHostName(hostText) else { return nil }
    return HostPort(host: String(hostText), port: UInt16(port))
}

/// True for addresses only this machine can reach: `127.0.0.0/8`, `::1`, `::ffff:127.x.y.z`
/// and the name `localhost`.
///
/// Used to decide whether a listener may bind without `unsafe_listen_public`. Any other name is
/// false, since what it resolves to can change.
public func isLoopback(_ host: String) -> Bool {
    if host.lowercased() == "localhost" { return true }
    var literal = Substring(host)
    if literal.hasPrefix("["), literal.hasSuffix("]") { literal = literal.dropFirst().dropLast() }
    guard let bytes = IPAddress.parse(literal) else { return false }
    if bytes.count == 4 { return bytes[0] == 127 }
    let loopback6: [UInt8] = [UInt8](repeating: 0, count: 15) + [1]
    let mappedPrefix: [UInt8] = [UInt8](repeating: 0, count: 10) + [0xff, 0xff]
    return bytes == loopback6 || (Array(bytes.prefix(12)) == mappedPrefix && bytes[12] == 127)
}

/// True for an IPv4 literal or a bare IPv6 literal (no brackets).
func isIPLiteral(_ host: String) -> Bool {
    IPAddress.parse(Substring(host)) != nil
}

/// A DNS name: dot-separated labels of letters, digits, `-` and `_`, 1...63 characters each, not
/// starting or ending with `-`, at most 253 characters, one optional trailing dot, and a last label
/// that is not all digits (so a mistyped IPv4 address is not taken for a name).
func isValidHostName(_ text: Substring) -> Bool {
    var name = text
    if name.hasSuffix(".") { name = name.dropLast() }
    guard !name.isEmpty, name.count <= 253 else { return false }
    let labels = name.split(separator: ".", omittingEmptySubsequences: false)
    for label in labels {
        guard (1...63).contains(label.count), !label.hasPrefix("-"), !label.hasSuffix("-"),
              label.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") })
        else { return false }
    }
    return !(labels.last.map { isDecimalDigits($0) } ?? true)
}
