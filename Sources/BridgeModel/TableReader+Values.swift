/// Readers for values with a syntax of their own (durations, sizes, TLS versions), on top of the
/// plain TOML types, each reporting what to write instead.
extension TableReader {
    /// A positive duration such as `"10s"`; see `parseDuration`.
    func duration(_ name: String) -> Duration? {
        guard let value = table[name] else { return nil }
        guard let text = value.string else {
            return typeMismatch(name, expected: "a duration string such as \"10s\" (a bare number has no unit)", found: value)
        }
        guard let duration = parseNonNegativeDuration(text) else {
            diagnostics.add(key(name), "\"\(text)\" is not a duration; write a number and a unit: \"500ms\", \"10s\", \"1.5s\", \"5m\", \"1h\"")
            return nil
        }
        guard duration > .zero else {
            diagnostics.add(key(name), "must be greater than zero")
            return nil
        }
        return duration
    }

    /// A byte count: an integer, or a string with `KiB`/`MiB`, within `range`.
    func byteSize(_ name: String, in range: ClosedRange<Int>) -> Int? {
        guard let value = table[name] else { return nil }
        let bytes: Int
        if let integer = value.int {
            bytes = integer
        } else if let text = value.string {
            guard let parsed = parseByteSize(text) else {
                diagnostics.add(key(name), "\"\(text)\" is not a size; write bytes as an integer or use KiB/MiB, e.g. \"256KiB\", \"1MiB\"")
                return nil
            }
            bytes = parsed
        } else {
            return typeMismatch(name, expected: "a size such as \"256KiB\" or an integer number of bytes", found: value)
        }
        guard range.contains(bytes) else {
            diagnostics.add(key(name), "\(bytes) bytes is outside \(Self.describeSize(range.lowerBound))...\(Self.describeSize(range.upperBound))")
            return nil
        }
        return bytes
    }

    /// An integer of at least `minimum`.
    func integer(_ name: String, atLeast minimum: Int) -> Int? {
        guard let value = integer(name) else { return nil }
        guard value >= minimum else {
            diagnostics.add(key(name), "\(value) is less than \(minimum)")
            return nil
        }
        return value
    }

    /// A non-empty string; an empty one is reported with what to do instead.
    func nonEmptyString(_ name: String, ifEmpty advice: String) -> String? {
        guard let value = string(name) else { return nil }
        guard !value.isBlank else {
            diagnostics.add(key(name), "is empty; \(advice)")
            return nil
        }
        return value
    }

    static func describeSize(_ bytes: Int) -> String {
        if bytes % (1024 * 1024) == 0 { return "\(bytes / (1024 * 1024)) MiB" }
        if bytes % 1024 == 0 { return "\(bytes / 1024) KiB" }
        return "\(bytes) bytes"
    }

    /// A file the bridge will read, resolved against the config's directory and checked now.
    /// A `secret` (private key, passphrase, proxy passwords) must not be readable by group or others;
    /// neither may any other file that holds a PEM private key (a certificate file with its key
    /// appended, used without a separate key file).
    func readableFile(_ name: String, base: String, secret: Bool = false) -> String? {
        guard let path = nonEmptyString(name, ifEmpty: "omit the key or give a file path") else { return nil }
        let resolved = ConfigFiles.resolve(path, against: base)
        if let problem = ConfigFiles.problemReading(resolved) {
            diagnostics.add(key(name), problem)
            return nil
        }
        if !diagnostics.allowLooseKeyPermissions {
            let problem = secret ? ConfigFiles.problemWithSecretMode(resolved)
                : ConfigFiles.holdsPrivateKey(resolved) ? ConfigFiles.problemWithSecretMode(resolved, holdsKey: true) : nil
            if let problem {
                diagnostics.add(key(name), problem)
                return nil
            }
        }
        return resolved
    }
}

extension String {
    /// Empty or only whitespace.
    var isBlank: Bool { allSatisfy(\.isWhitespace) }
}
