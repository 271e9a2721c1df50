/// One problem in a configuration, written for the operator who has to fix it.
///
/// `key` names the setting to change, in the same spelling as the TOML file (`limits.idle_timeout`,
/// `upstream[paygent-sandbox].ciphers`, `listener[#2].listen`), or `config` when the file itself
/// cannot be read or is not valid TOML. `message` says what is wrong and what to write instead.
/// Messages may quote a setting's value but never the contents of a referenced file.
public struct ConfigError: Error, Sendable, Equatable, Codable, CustomStringConvertible {
    /// The setting to fix, or `config` for the file as a whole.
    public var key: String
    /// What is wrong and what to do about it.
    public var message: String

    public init(key: String, message: String) {
        self.key = key
        self.message = message
    }

    /// `key: message`, one line.
    public var description: String { "\(key): \(message)" }
}

/// Every problem found in one configuration.
///
/// Validation does not stop at the first problem, so an operator can fix a file in one pass.
/// Never thrown empty.
public struct ConfigErrors: Error, Sendable, CustomStringConvertible {
    /// The problems, in the order the file was checked (top-level keys, tables, then entries).
    public var errors: [ConfigError]

    public init(_ errors: [ConfigError]) {
        self.errors = errors
    }

    /// One line per problem.
    public var description: String {
        errors.map(\.description).joined(separator: "\n")
    }
}
