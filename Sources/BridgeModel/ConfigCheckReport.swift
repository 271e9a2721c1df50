import Foundation

/// What a config-checking child process reports to the bridge that started it (JSON on its stdout):
/// the validated `Config`, or every problem found. See `tls-bridge run`'s reload.
///
/// The running bridge never parses TOML itself after start-up: toml++ can abort on some inputs and
/// TOMLKit leaks on every parse, so both stay in the child, and the bridge takes the result in this
/// form, decoded by Foundation's JSON decoder.
public struct ConfigCheckReport: Codable, Sendable, Equatable {
    /// The validated configuration; nil when `errors` is not empty.
    public var config: Config?
    /// Every problem found; empty when `config` is set.
    public var errors: [ConfigError]

    public init(config: Config) {
        self.config = config
        errors = []
    }

    public init(errors: [ConfigError]) {
        config = nil
        self.errors = errors
    }

    /// The report as one JSON document.
    public func encoded() -> Data {
        // Encoding plain value types cannot fail.
        (try? JSONEncoder().encode(self)) ?? Data()
    }

    /// A report read back from `data`, or nil when it is not one (a truncated or foreign output).
    public static func decoded(from data: Data) -> ConfigCheckReport? {
        guard let report = try? JSONDecoder().decode(ConfigCheckReport.self, from: data),
              (report.config == nil) != report.errors.isEmpty else { return nil }
        return report
    }
}
