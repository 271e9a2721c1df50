/// Proxy credentials from a `Proxy-Authorization: Basic ...` value (RFC 7617).
///
/// Returns `nil` unless the value is the `Basic` scheme (any case) followed by one or more spaces and
/// strict base64 (standard alphabet, `=` padding, no whitespace or line breaks inside) that decodes
/// to UTF-8 `user:password` without control characters. The user is everything before the first
/// colon; the password may contain colons and may be empty.
public func basicCredentials(_ header: String?) -> (user: String, password: String)? {
    guard let header else { return nil }
    let bytes = Array(header.utf8)
    let scheme = Array("basic".utf8)
    guard bytes.count > scheme.count + 1,
          zip(bytes, scheme).allSatisfy({ ASCII.lowercased($0) == $1 }),
          bytes[scheme.count] == ASCII.space else { return nil }
    let encoded = bytes[(scheme.count + 1)...].drop { $0 == ASCII.space }
    guard let decoded = Base64.decode(encoded),
          String(validating: decoded, as: UTF8.self) != nil,
          let colon = decoded.firstIndex(of: ASCII.colon),
          !decoded.contains(where: { $0 < 0x20 || $0 == 0x7F }) else { return nil }
    let user = String(decoding: decoded[..<colon], as: UTF8.self)
    let password = String(decoding: decoded[(colon + 1)...], as: UTF8.self)
    return (user, password)
}

/// A strict base64 decoder (RFC 4648 §4): the standard alphabet, length a multiple of four, at
/// most two `=` and only at the end, and unused bits of the last group zero (so every byte string
/// has exactly one accepted encoding).
enum Base64 {
    static func decode<Bytes: Collection>(_ text: Bytes) -> [UInt8]? where Bytes.Element == UInt8 {
        guard !text.isEmpty, text.count % 4 == 0 else { return nil }
        var output: [UInt8] = []
        output.reserveCapacity(text.count / 4 * 3)
        let characters = Array(text)
        let padding = characters.suffix(2).reduce(0) { $0 + ($1 == ASCII.equals ? 1 : 0) }
        if padding == 1, characters[characters.count - 2] == ASCII.equals { return nil }
        for groupStart in stride(from: 0, to: characters.count, by: 4) {
            let isLast = groupStart + 4 == characters.count
            let used = isLast ? 4 - padding : 4
            var group: UInt32 = 0
            for offset in 0..<4 {
                let value: UInt32
                if offset < used {
                    guard let sextet = sextet(characters[groupStart + offset]) else { return nil }
                    value = sextet
                } else {
                    value = 0
                }
                group = group << 6 | value
            }
            let decoded = [UInt8(group >> 16 & 0xFF), UInt8(group >> 8 & 0xFF), UInt8(group & 0xFF)]
            let produced = used - 1
            // The bits below the last full byte must be zero.
            if produced < 3, decoded[produced] != 0 || (produced == 1 && group & 0xFFFF != 0) { return nil }
            output += decoded.prefix(produced)
        }
        return output
    }

    private static func sextet(_ character: UInt8) -> UInt32? {
        switch character {
        case 0x41...0x5A: return UInt32(character - 0x41)
        case 0x61...0x7A: return UInt32(character - 0x61 + 26)
        case 0x30...0x39: return UInt32(character - 0x30 + 52)
        case 0x2B: return 62
        case 0x2F: return 63
        default: return nil
        }
    }
}
