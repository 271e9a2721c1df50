/// Collects every problem found while one configuration is read, so that validation can carry on
/// past the first and report them all at once.
///
/// Local to one `ConfigLoader.parse` call; never shared between threads.
final class ConfigDiagnostics {
    private(set) var errors: [ConfigError] = []
    /// `unsafe_key_permissions = true`: private keys and secrets may be readable by group/others.
    var allowLooseKeyPermissions = false

    func add(_ key: String, _ message: String) {
        errors.append(ConfigError(key: key, message: message))
    }
}
