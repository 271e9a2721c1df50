import BridgeModel

/// Reading the protocol names the records carry (OpenSSL's spelling: `TLSv1`, `TLSv1.1`, `TLSv1.2`,
/// `TLSv1.3`, `SSLv3`; `plain` on plain listeners).
enum TLSVersion {
    /// `plain`, SSL, or TLS below 1.2: what the gateway's notice asks merchants to retire.
    static func isLegacy(_ name: String) -> Bool {
        if name == "plain" || name.hasPrefix("SSL") { return true }
        guard let version = tlsVersion(name) else { return false }
        return version < (1, 2)
    }

    /// TLS 1.2 or later (by number, so a future `TLSv1.4` counts too).
    static func isAtLeast12(_ name: String) -> Bool {
        guard let version = tlsVersion(name) else { return false }
        return version >= (1, 2)
    }

    private static func tlsVersion(_ name: String) -> (Int, Int)? {
        guard name.hasPrefix("TLSv") else { return nil }
        let parts = name.dropFirst(4).split(separator: ".", omittingEmptySubsequences: false)
        guard let major = parts.first.flatMap({ Int($0) }), parts.count <= 2 else { return nil }
        let minor = parts.count == 2 ? Int(parts[1]) : 0
        return minor.map { (major, $0) }
    }
}

/// The host part of a record's `IP:port` / `[IPv6]:port` address.
enum SourceAddress {
    static func host(of address: String) -> String {
        SessionRecord.Downstream.host(of: address)  // the same reading as /metrics' source label
    }

    /// Orders IPv4 addresses numerically (10.0.0.9 before 10.0.0.10), then everything else by text.
    static func sortKey(_ host: String) -> String {
        let octets = host.split(separator: ".", omittingEmptySubsequences: false)
        let numbers = octets.compactMap { UInt8($0) }
        if octets.count == 4, numbers.count == 4 {
            return "0" + numbers.map { String(repeating: "0", count: 3 - String($0).count) + String($0) }.joined(separator: ".")
        }
        return "1" + host
    }
}

/// Groups error texts so that one cause is one row: the text before its first ": " (OpenSSL's detail
/// and the peer's own words follow it), with socket addresses replaced, since every merchant connection
/// has its own port.
enum FailureReason {
    static func group(_ error: String) -> String {
        let head = error.range(of: ": ").map { String(error[..<$0.lowerBound]) } ?? error
        return maskAddresses(head)
    }

    /// Replaces `a.b.c.d`, `a.b.c.d:port` and `[v6]:port` tokens with `<address>`.
    static func maskAddresses(_ text: String) -> String {
        var out = ""
        var rest = Substring(text)
        while let first = rest.first {
            if first == "[", let close = rest.firstIndex(of: "]"), rest[rest.index(after: rest.startIndex)..<close].contains(":"),
               rest[rest.index(after: rest.startIndex)..<close].allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }) {
                out += "<address>"
                rest = dropPort(rest[rest.index(after: close)...])
                continue
            }
            if first.isNumber, out.last.map({ !$0.isLetter && !$0.isNumber && $0 != "." }) ?? true,
               let end = ipv4End(rest) {
                out += "<address>"
                rest = dropPort(rest[end...])
                continue
            }
            out.append(first)
            rest = rest.dropFirst()
        }
        return out
    }

    private static func ipv4End(_ text: Substring) -> Substring.Index? {
        var index = text.startIndex
        for octet in 0..<4 {
            let start = index
            while index < text.endIndex, text[index].isASCII, text[index].isNumber, text.distance(from: start, to: index) < 3 {
                index = text.index(after: index)
            }
            guard index > start else { return nil }
            if octet < 3 {
                guard index < text.endIndex, text[index] == "." else { return nil }
                index = text.index(after: index)
            }
        }
        if index < text.endIndex, text[index].isNumber || text[index] == "." && text.index(after: index) < text.endIndex
            && text[text.index(after: index)].isNumber {
            return nil
        }
        return index
    }

    private static func dropPort(_ text: Substring) -> Substring {
        guard text.first == ":", text.dropFirst().first?.isNumber == true else { return text }
        return text.dropFirst().drop { $0.isASCII && $0.isNumber }
    }
}
