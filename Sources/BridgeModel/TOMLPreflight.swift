/// Inputs that crash the TOML parser underneath TOMLKit (toml++ asserts instead of reporting an
/// error), found by the config fuzzer. They are refused here, before the parser sees them, so a
/// typo in a config can never abort `check` or a running bridge's reload.
enum TOMLPreflight {
    /// A `config` error message for the first such construct, or nil when the text is safe to parse.
    static func problem(in text: String) -> String? {
        if let line = tableHeaderWithoutKey(text) {
            return "line \(line): a [table] or [[table]] header must start with a key name, e.g. [limits] or [[upstream]]"
        }
        if let line = dateWithBrokenTime(text) {
            return "line \(line): a date-time needs digits after its \"T\", e.g. 1979-05-27T07:32:00Z"
        }
        if let line = braceWhereArrayValueExpected(text) {
            return "line \(line): a \"}\" where an array value or \"]\" was expected, e.g. ciphers = [\"A\", \"B\"]"
        }
        return nil
    }

    /// `a = [}]`, `a = [1, }]`: a `}` right after an array's `[` or a `,` (blanks and comments
    /// between), outside strings and comments. No valid TOML has one there (inline tables allow no
    /// trailing comma either), so this refuses nothing that would parse.
    private static func braceWhereArrayValueExpected(_ text: String) -> Int? {
        let bytes = Array(text.utf8)
        let quote = UInt8(ascii: "\""), apostrophe = UInt8(ascii: "'"), newline = UInt8(ascii: "\n")
        var line = 1
        var index = 0
        var afterOpenerOrComma = false
        func startsWith(_ marker: [UInt8], at position: Int) -> Bool {
            position + marker.count <= bytes.count && Array(bytes[position..<(position + marker.count)]) == marker
        }
        /// Skips a string that opens at `index` (basic or literal, one line or multi-line).
        func skipString() {
            let delimiter = bytes[index]
            let multiLine = startsWith([delimiter, delimiter, delimiter], at: index)
            index += multiLine ? 3 : 1
            while index < bytes.count {
                let byte = bytes[index]
                if byte == newline { line += 1 }
                if delimiter == quote && byte == UInt8(ascii: "\\") {
                    index += 2
                    continue
                }
                if multiLine ? startsWith([delimiter, delimiter, delimiter], at: index) : byte == delimiter {
                    index += multiLine ? 3 : 1
                    return
                }
                if !multiLine && byte == newline { return }
                index += 1
            }
        }
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case newline:
                line += 1
                index += 1
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r"):
                index += 1
            case UInt8(ascii: "#"):
                while index < bytes.count && bytes[index] != newline { index += 1 }
            case quote, apostrophe:
                skipString()
                afterOpenerOrComma = false
            case UInt8(ascii: "}") where afterOpenerOrComma:
                return line
            default:
                afterOpenerOrComma = byte == UInt8(ascii: "[") || byte == UInt8(ascii: ",")
                index += 1
            }
        }
        return nil
    }

    /// `[=`, `[.a]`, `[#`, `[é]`, `[[[a]]]`: a header whose first character cannot start a key.
    private static func tableHeaderWithoutKey(_ text: String) -> Int? {
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            // A byte-order mark may precede the first line.
            let scalars = Array(line.unicodeScalars.drop { $0 == " " || $0 == "\t" || $0 == "\u{FEFF}" })
            guard scalars.first == "[" else { continue }
            var next = 1
            let arrayOfTables = next < scalars.count && scalars[next] == "["
            if arrayOfTables { next += 1 }
            while next < scalars.count && (scalars[next] == " " || scalars[next] == "\t") { next += 1 }
            guard next < scalars.count else { return number + 1 }
            if !startsKey(scalars[next]) || (arrayOfTables && scalars[next] == "[") { return number + 1 }
        }
        return nil
    }

    private static func startsKey(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar {
        case "A"..."Z", "a"..."z", "0"..."9", "_", "-", "\"", "'", "]", "[": true
        default: false
        }
    }

    /// `1979-05-27T:00Z`: a date followed by T and something other than a digit.
    private static func dateWithBrokenTime(_ text: String) -> Int? {
        let bytes = Array(text.utf8)
        let isDigit = { (byte: UInt8) in (0x30...0x39).contains(byte) }
        guard bytes.count >= 12 else { return nil }
        for start in 0...(bytes.count - 12) {
            let date = bytes[start..<(start + 10)]
            let shaped = date.enumerated().allSatisfy { offset, byte in
                offset == 4 || offset == 7 ? byte == UInt8(ascii: "-") : isDigit(byte)
            }
            let separator = bytes[start + 10]
            if shaped, separator == UInt8(ascii: "T") || separator == UInt8(ascii: "t"), !isDigit(bytes[start + 11]) {
                return bytes[..<start].reduce(1) { $1 == UInt8(ascii: "\n") ? $0 + 1 : $0 }
            }
        }
        return nil
    }
}
