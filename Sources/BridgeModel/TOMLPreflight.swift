/// Inputs that crash the TOML parser underneath TOMLKit (toml++ asserts instead of reporting an
/// error), found by the config fuzzer or by reading its asserts. They are refused here, before the parser sees them, so a
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
        return valueProblem(text)
    }

    /// One pass over the text outside strings and comments, for what toml++ asserts on inside
    /// values: a `}` where an array value is expected (`a = [}]`, `a = [1, }]`), and a date, one
    /// blank and a lone digit (`a = 1979-05-27 0`). A `,` right before an inline table's `}`
    /// (`a = {b = 1,}`) does not crash the parser but is named here too, as what it is. None of
    /// these is valid TOML, so this refuses nothing that would parse.
    private static func valueProblem(_ text: String) -> String? {
        let bytes = Array(text.utf8)
        let quote = UInt8(ascii: "\""), apostrophe = UInt8(ascii: "'"), newline = UInt8(ascii: "\n")
        var line = 1
        var index = 0
        /// The `[` and `{` open around `index`, innermost last.
        var openers: [UInt8] = []
        /// The last byte outside blanks, strings and comments (a quote for a string).
        var previous: UInt8 = 0
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
                previous = quote
            case UInt8(ascii: "}") where previous == UInt8(ascii: "[") || previous == UInt8(ascii: ","):
                if previous == UInt8(ascii: ","), openers.last == UInt8(ascii: "{") {
                    return "line \(line): a \",\" right before an inline table's closing \"}\"; an inline table takes"
                        + " no trailing comma, e.g. a = { b = 1, c = 2 }"
                }
                return "line \(line): a \"}\" where an array value or \"]\" was expected, e.g. ciphers = [\"A\", \"B\"]"
            default:
                let startsValue = previous == UInt8(ascii: "=") || previous == UInt8(ascii: "[") || previous == UInt8(ascii: ",")
                if startsValue, isDigit(byte), dateThenBlankThenLoneDigit(bytes, at: index) {
                    return "line \(line): a date, a blank and a single digit; write a whole date-time, e.g."
                        + " 1979-05-27 07:32:00 or 1979-05-27T07:32:00Z"
                }
                if byte == UInt8(ascii: "[") || byte == UInt8(ascii: "{") {
                    openers.append(byte)
                } else if byte == UInt8(ascii: "]") || byte == UInt8(ascii: "}") {
                    _ = openers.popLast()
                }
                previous = byte
                index += 1
            }
        }
        return nil
    }

    private static func isDigit(_ byte: UInt8) -> Bool { (0x30...0x39).contains(byte) }

    /// Ends a value for toml++: a blank, a line break, `]`, `}`, `,`, `#`. Any non-ASCII byte
    /// counts too, since toml++ also ends values at Unicode blanks (U+00A0, U+3000, ...).
    private static func endsValue(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"), 0x0B, 0x0C,
             UInt8(ascii: "]"), UInt8(ascii: "}"), UInt8(ascii: ","), UInt8(ascii: "#"): true
        default: byte >= 0x80
        }
    }

    /// `1979-05-27 0` followed by the end of the value: toml++ takes ten characters shaped like a
    /// date (underscores not counted), a space and a digit as the start of a date-time, then
    /// asserts that a time follows. The ten are counted as toml++ counts them (code points, a
    /// non-ASCII one included), so anything it could take for a date is caught.
    private static func dateThenBlankThenLoneDigit(_ bytes: [UInt8], at start: Int) -> Bool {
        var index = start
        var characters: [UInt8] = []
        while index < bytes.count && characters.count < 10 {
            let byte = bytes[index]
            index += 1
            if byte == UInt8(ascii: "_") || (0x80...0xBF).contains(byte) { continue }  // continuation bytes: one code point
            if byte < 0x80 && endsValue(byte) { return false }
            characters.append(byte)
        }
        while index < bytes.count && (bytes[index] == UInt8(ascii: "_") || (0x80...0xBF).contains(bytes[index])) { index += 1 }
        guard characters.count == 10, characters[4] == UInt8(ascii: "-"), characters[7] == UInt8(ascii: "-"),
              index + 2 < bytes.count, bytes[index] == UInt8(ascii: " "), isDigit(bytes[index + 1]) else { return false }
        return endsValue(bytes[index + 2])
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
