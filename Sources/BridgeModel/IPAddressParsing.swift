/// IP literal parsing in pure Swift, so the model can validate addresses without calling into C.
///
/// Addresses are returned as their bytes (4 or 16), which is also how two spellings of the same
/// address (`::1` and `0:0:0:0:0:0:0:1`) are recognised as the same listening address.
enum IPAddress {
    /// The four bytes of a dotted-quad IPv4 literal (`"127.0.0.1"`), or `nil`.
    ///
    /// Exactly four decimal parts of 0...255 without leading zeros: `"127.1"` and `"010.0.0.1"`
    /// are rejected because C resolvers read them differently (short form, octal).
    static func parseIPv4(_ text: Substring) -> [UInt8]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var bytes: [UInt8] = []
        for part in parts {
            guard isDecimalDigits(part), part.count <= 3, part == "0" || !part.hasPrefix("0"),
                  let value = UInt8(part) else { return nil }
            bytes.append(value)
        }
        return bytes
    }

    /// The sixteen bytes of an IPv6 literal without brackets (`"::1"`, `"2001:db8::8"`,
    /// `"::ffff:192.0.2.1"`), or `nil`. Zone indexes (`%eth0`) are not accepted.
    static func parseIPv6(_ text: Substring) -> [UInt8]? {
        guard text.contains(":") else { return nil }
        let halves = text.split(separator: "::", omittingEmptySubsequences: false)
        guard halves.count <= 2 else { return nil }
        guard let head = groups(halves[0], allowsIPv4Tail: halves.count == 1) else { return nil }
        if halves.count == 1 {
            return head.count == 16 ? head : nil
        }
        guard let tail = groups(halves[1], allowsIPv4Tail: true) else { return nil }
        // "::" stands for at least one group of zeros.
        guard head.count + tail.count <= 14 else { return nil }
        return head + [UInt8](repeating: 0, count: 16 - head.count - tail.count) + tail
    }

    /// The bytes of an IPv4 or IPv6 literal (no brackets), or `nil`.
    static func parse(_ text: Substring) -> [UInt8]? {
        parseIPv4(text) ?? parseIPv6(text)
    }

    /// Colon-separated hex groups, each 1...4 digits, optionally ending in a dotted quad.
    private static func groups(_ text: Substring, allowsIPv4Tail: Bool) -> [UInt8]? {
        if text.isEmpty { return [] }
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        var bytes: [UInt8] = []
        for (index, part) in parts.enumerated() {
            if index == parts.count - 1, allowsIPv4Tail, part.contains(".") {
                guard let v4 = parseIPv4(part) else { return nil }
                bytes += v4
                continue
            }
            guard (1...4).contains(part.count), part.allSatisfy(\.isHexDigit), part.allSatisfy(\.isASCII),
                  let value = UInt16(part, radix: 16) else { return nil }
            bytes += [UInt8(value >> 8), UInt8(value & 0xff)]
        }
        return bytes.count <= 16 ? bytes : nil
    }
}
