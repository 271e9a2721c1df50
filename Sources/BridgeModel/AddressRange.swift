/// An IPv4 or IPv6 network in CIDR notation (`203.0.113.0/24`, `::1/128`), for `allow_sources`.
public struct AddressRange: Sendable, Equatable, Codable, CustomStringConvertible {
    /// Network address bytes (4 or 16), host bits cleared.
    public let network: [UInt8]
    public let prefixLength: Int

    /// Parses `a.b.c.d/n` or `v6/n`; a bare address means a single host (/32 or /128).
    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), let bytes = IPAddress.parse(parts[0]) else { return nil }
        let maximum = bytes.count * 8
        var length = maximum
        if parts.count == 2 {
            guard isDecimalDigits(parts[1]), let parsed = Int(parts[1]), parsed <= maximum else { return nil }
            length = parsed
        }
        prefixLength = length
        network = Self.masked(bytes, prefixLength: length)
    }

    /// Does this range contain `address` (4 or 16 bytes)? IPv4-mapped IPv6 addresses match IPv4 ranges.
    public func contains(_ address: [UInt8]) -> Bool {
        var candidate = address
        let mappedPrefix: [UInt8] = [UInt8](repeating: 0, count: 10) + [0xff, 0xff]
        if network.count == 4, address.count == 16, Array(address.prefix(12)) == mappedPrefix {
            candidate = Array(address.suffix(4))
        }
        guard candidate.count == network.count else { return false }
        return Self.masked(candidate, prefixLength: prefixLength) == network
    }

    public var description: String {
        let text = network.count == 4 ? network.map(String.init).joined(separator: ".")
            : stride(from: 0, to: 16, by: 2).map { String(UInt16(network[$0]) << 8 | UInt16(network[$0 + 1]), radix: 16) }
                .joined(separator: ":")
        return "\(text)/\(prefixLength)"
    }

    private static func masked(_ bytes: [UInt8], prefixLength: Int) -> [UInt8] {
        bytes.enumerated().map { index, byte in
            let bitsHere = max(0, min(8, prefixLength - index * 8))
            return bitsHere == 8 ? byte : byte & UInt8(truncatingIfNeeded: 0xff << (8 - bitsHere))
        }
    }
}

/// Loopback (127/8, ::1) or private (10/8, 172.16/12, 192.168/16, fc00::/7) address bytes: where
/// legacy TLS toward a backend may go without `unsafe_public_backend`.
public func isLoopbackOrPrivate(_ address: [UInt8]) -> Bool {
    let ranges = ["127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "::1/128", "fc00::/7"]
    return ranges.compactMap(AddressRange.init).contains { $0.contains(address) }
}

/// The bytes of an IP literal (brackets allowed), or nil for a name.
public func ipAddressBytes(_ host: String) -> [UInt8]? {
    var literal = Substring(host)
    if literal.hasPrefix("["), literal.hasSuffix("]") { literal = literal.dropFirst().dropLast() }
    return IPAddress.parse(literal)
}
