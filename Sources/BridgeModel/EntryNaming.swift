/// Names of `[[upstream]]` and `[[listener]]` entries, and the label each entry gets in error keys.
///
/// An entry with a valid, unique name is labelled by it (`upstream[paygent-sandbox]`); any other
/// is labelled by its 1-based position (`upstream[#2]`), so every error still points somewhere.
enum EntryNaming {
    /// Letters, digits, `.`, `_` and `-`: safe in logs, metrics labels and error keys.
    static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "_" || $0 == "-") }
    }

    /// Reads `name` from `entry`, relabels `entry` when the name is usable, and records it in `seen`
    /// (name → position). Returns the usable name, or `nil` after reporting why there is none.
    static func claimName(_ entry: inout TableReader, section: String, position: Int, seen: inout [String: Int]) -> String? {
        guard let name = entry.requiredString("name", example: "\(section == "upstream" ? "paygent-sandbox" : "plain")") else {
            return nil
        }
        guard isValidName(name) else {
            entry.diagnostics.add(entry.key("name"), "\"\(name)\" is not a valid name; use only letters, digits, '.', '_' and '-'")
            return nil
        }
        if let first = seen[name] {
            entry.diagnostics.add(entry.key("name"), "\"\(name)\" is already the name of \(section) #\(first); names must be unique")
            return nil
        }
        seen[name] = position
        entry.path = "\(section)[\(name)]"
        return name
    }
}
