/// Host and port syntax for request targets: what the bridge accepts as a place to connect to.
///
/// Narrower than RFC 3986's `reg-name` on purpose: a host is a DNS name, a canonical dotted-quad
/// IPv4 address or a bracketed IPv6 address. Percent-encoding, sub-delims, zone identifiers,
/// IPvFuture, empty labels and a trailing dot are refused, as are numbers that a C resolver reads
/// as an address in a surprising way (`127.1`, `0x7f.0.0.1`, `017700000001`), so the name the
/// session checks against its allowlist is the name that gets resolved.
enum HostSyntax {
    /// The host, lowercased, with IPv6 brackets removed; or `nil` if it is not acceptable.
    static func host(_ bytes: UnsafeRawBufferPointer.SubSequence) -> String? {
        guard let first = bytes.first else { return nil }
        if first == ASCII.openBracket {
            guard bytes.count > 2, bytes.last == ASCII.closeBracket else { return nil }
            let inner = bytes.dropFirst().dropLast()
            guard isIPv6(inner) else { return nil }
            return String(decoding: inner.map(ASCII.lowercased), as: UTF8.self)
        }
        guard bytes.count <= 253 else { return nil }
        let labels = bytes.split(separator: ASCII.dot, omittingEmptySubsequences: false)
        if labels.allSatisfy(looksNumeric) {
            guard isIPv4(bytes) else { return nil }
            return String(checkedBytes: bytes)
        }
        for label in labels {
            guard (1...63).contains(label.count), label.first != ASCII.dash, label.last != ASCII.dash,
                  label.allSatisfy({ ASCII.isAlpha($0) || ASCII.isDigit($0) || $0 == ASCII.dash || $0 == ASCII.underscore })
            else { return nil }
        }
        // A name whose last label is a number is a mistyped address, not a name.
        if let last = labels.last, last.allSatisfy(ASCII.isDigit) { return nil }
        return String(decoding: bytes.map(ASCII.lowercased), as: UTF8.self)
    }

    /// A port of one to five digits in 1...65535.
    static func port(_ bytes: UnsafeRawBufferPointer.SubSequence) -> UInt16? {
        guard (1...5).contains(bytes.count), bytes.allSatisfy(ASCII.isDigit) else { return nil }
        let value = bytes.reduce(0) { $0 * 10 + Int($1 - 0x30) }
        guard (1...65535).contains(value) else { return nil }
        return UInt16(value)
    }

    /// A label a C resolver might read as a number: decimal, octal or `0x` hex digits.
    private static func looksNumeric(_ label: UnsafeRawBufferPointer.SubSequence) -> Bool {
        guard !label.isEmpty else { return false }
        if label.count >= 2, label[label.startIndex] == 0x30, ASCII.lowercased(label[label.startIndex + 1]) == 0x78 {
            return label.dropFirst(2).allSatisfy { ASCII.hexValue($0) != nil }
        }
        return label.allSatisfy(ASCII.isDigit)
    }

    /// Exactly four decimal parts of 0...255 without leading zeros.
    static func isIPv4(_ bytes: UnsafeRawBufferPointer.SubSequence) -> Bool {
        let parts = bytes.split(separator: ASCII.dot, omittingEmptySubsequences: false)
        guard parts.count == 4 else { return false }
        return parts.allSatisfy { part in
            guard (1...3).contains(part.count), part.allSatisfy(ASCII.isDigit) else { return false }
            if part.count > 1, part.first == 0x30 { return false }
            return part.reduce(0) { $0 * 10 + Int($1 - 0x30) } <= 255
        }
    }

    /// An IPv6 address without brackets: up to eight groups of 1...4 hex digits, at most one `::`,
    /// optionally ending in a dotted quad. No zone identifier.
    static func isIPv6(_ bytes: UnsafeRawBufferPointer.SubSequence) -> Bool {
        guard bytes.count >= 2, bytes.count <= 45 else { return false }
        // Find a "::", at most one.
        var doubleColon: Int?
        var index = bytes.startIndex
        while index + 1 < bytes.endIndex {
            if bytes[index] == ASCII.colon, bytes[index + 1] == ASCII.colon {
                guard doubleColon == nil else { return false }
                doubleColon = index
                index += 2
                continue
            }
            index += 1
        }
        func groupCount(_ part: UnsafeRawBufferPointer.SubSequence, ipv4Allowed: Bool) -> Int? {
            if part.isEmpty { return 0 }
            let groups = part.split(separator: ASCII.colon, omittingEmptySubsequences: false)
            var count = 0
            for (position, group) in groups.enumerated() {
                if ipv4Allowed, position == groups.count - 1, group.contains(ASCII.dot) {
                    guard isIPv4(group) else { return nil }
                    count += 2
                } else {
                    guard (1...4).contains(group.count), group.allSatisfy({ ASCII.hexValue($0) != nil }) else { return nil }
                    count += 1
                }
            }
            return count
        }
        if let doubleColon {
            let head = bytes[bytes.startIndex..<doubleColon]
            let tail = bytes[(doubleColon + 2)...]
            guard let headCount = groupCount(head, ipv4Allowed: false),
                  let tailCount = groupCount(tail, ipv4Allowed: true) else { return false }
            return headCount + tailCount <= 7
        }
        return groupCount(bytes, ipv4Allowed: true) == 8
    }
}
