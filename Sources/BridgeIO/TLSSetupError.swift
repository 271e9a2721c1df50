/// A TLS context could not be built from the configuration. Names the config key to fix, like
/// `ConfigError`, so `check` and `run` can print both kinds the same way.
public struct TLSSetupError: Error, Sendable, CustomStringConvertible {
    /// The config key, e.g. `upstream[paygent-sandbox].client_key`.
    public var key: String
    /// What is wrong and what to do, with OpenSSL's reason where there is one.
    public var message: String

    public init(key: String, message: String) {
        self.key = key
        self.message = message
    }

    public var description: String { "\(key): \(message)" }
}
