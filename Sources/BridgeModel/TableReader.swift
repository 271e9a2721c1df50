import TOMLKit

/// Typed, checked access to one TOML table of the configuration.
///
/// Every accessor reports a wrong type under the key's full path (`limits.max_sessions`,
/// `upstream[paygent-sandbox].ciphers`) and returns `nil`, so callers only handle the values they
/// can use. A missing optional key is simply `nil`; values are never quoted in type errors.
struct TableReader {
    let table: TOMLTable
    /// Path of this table in error keys: `""` for the root, `"limits"`, `"upstream[#2]"`.
    var path: String
    let diagnostics: ConfigDiagnostics

    /// The error key for `name` inside this table.
    func key(_ name: String) -> String {
        path.isEmpty ? name : "\(path).\(name)"
    }

    /// A key name from the file as TOML writes it: quoted unless it is a bare key, so an empty or
    /// odd unknown key still shows in its error (`""`, `"a b"`).
    static func written(_ name: String) -> String {
        let isBare = !name.isEmpty && name.unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == "_" || $0 == "-"
        }
        let escaped = name.unicodeScalars.map { $0 == "\"" || $0 == "\\" ? "\\\($0)" : String($0) }.joined()
        return isBare ? name : "\"\(escaped)\""
    }

    func contains(_ name: String) -> Bool {
        table[name] != nil
    }

    /// Reports each key not in `known`, with a suggestion, and why `*verify*` keys do not exist.
    func rejectUnknownKeys(known: [String]) {
        for name in table.keys where !known.contains(name) {
            diagnostics.add(key(Self.written(name)), Self.unknownKeyMessage(name, known: known, inRoot: path.isEmpty))
        }
    }

    static func unknownKeyMessage(_ name: String, known: [String], inRoot: Bool) -> String {
        var message = "unknown key"
        let lowered = name.lowercased()
        if lowered.contains("verify") || lowered.contains("insecure") {
            message += "; upstream certificate verification cannot be turned off (the gateway's certificate is"
                + " always checked against ca_file, or the system store, and server_name)"
        }
        if let suggestion = KeySuggestion.suggestion(for: name, among: known) {
            message += "; did you mean \"\(suggestion)\"?"
        } else if !inRoot, name == "workers" {
            message += "; \"workers\" is a top-level key: move it above the first [table]"
        } else if !message.contains("verification") {
            message += "; known keys here: \(known.joined(separator: ", "))"
        }
        return message
    }

    func string(_ name: String) -> String? {
        guard let value = table[name] else { return nil }
        guard let string = value.string else { return typeMismatch(name, expected: "a string", found: value) }
        return string
    }

    /// Like `string`, but a missing key is an error that says what to write.
    func requiredString(_ name: String, example: String) -> String? {
        guard contains(name) else {
            diagnostics.add(key(name), "missing; this key is required, e.g. \(name) = \"\(example)\"")
            return nil
        }
        return string(name)
    }

    func integer(_ name: String) -> Int? {
        guard let value = table[name] else { return nil }
        guard let integer = value.int else { return typeMismatch(name, expected: "an integer", found: value) }
        return integer
    }

    func bool(_ name: String) -> Bool? {
        guard let value = table[name] else { return nil }
        guard let bool = value.bool else { return typeMismatch(name, expected: "true or false", found: value) }
        return bool
    }

    func stringArray(_ name: String) -> [String]? {
        guard let value = table[name] else { return nil }
        guard let array = value.array else { return typeMismatch(name, expected: "an array of strings", found: value) }
        var strings: [String] = []
        for element in array {
            guard let string = element.string else {
                return typeMismatch(name, expected: "an array of strings", found: element)
            }
            strings.append(string)
        }
        return strings
    }

    /// The sub-table `[name]`, or `nil` when absent (defaults apply) or not a table (reported).
    func section(_ name: String) -> TableReader? {
        guard let value = table[name] else { return nil }
        guard let table = value.table else { return typeMismatch(name, expected: "a table ([\(name)])", found: value) }
        return TableReader(table: table, path: key(name), diagnostics: diagnostics)
    }

    /// The entries of `[[name]]`, each with the path `name[#n]` until the caller names it.
    func arrayOfTables(_ name: String) -> [TableReader] {
        guard let value = table[name] else { return [] }
        guard let array = value.array else {
            if value.type == .table {
                diagnostics.add(key(name), "write [[\(name)]] with double brackets: it is a list of entries")
            } else {
                _ = typeMismatch(name, expected: "a list of tables ([[\(name)]])", found: value) as Int?
            }
            return []
        }
        var readers: [TableReader] = []
        for (index, element) in array.enumerated() {
            let path = key("\(name)[#\(index + 1)]")
            guard let table = element.table else {
                diagnostics.add(path, "expected a table, found \(Self.describe(element.type)); write each entry as [[\(name)]]")
                continue
            }
            readers.append(TableReader(table: table, path: path, diagnostics: diagnostics))
        }
        return readers
    }

    /// Reports a value of the wrong type and returns `nil` for the caller to pass on.
    func typeMismatch<T>(_ name: String, expected: String, found value: TOMLValueConvertible) -> T? {
        diagnostics.add(key(name), "expected \(expected), found \(Self.describe(value.type))")
        return nil
    }

    /// A TOML type as an operator reads it.
    static func describe(_ type: TOMLType) -> String {
        switch type {
        case .string: "a string"
        case .int: "an integer"
        case .double: "a decimal number"
        case .bool: "a boolean"
        case .array: "an array"
        case .table: "a table"
        case .date: "a date"
        case .time: "a time"
        case .dateTime: "a date-time"
        }
    }
}
