import Foundation
import TOMLKit

/// Reads a tls-bridge TOML file into a `Config`, checking every key and policy on the way.
///
/// Call it at start-up and for every reload: it either returns a `Config` that is complete and
/// valid, or throws every problem it found, each naming the key to fix. It reads the referenced
/// certificate files' metadata (existence, readability, mode) and looks into them only for a PEM
/// private key (which then needs a key file's permissions); it never parses them.
public enum ConfigLoader {
    /// Keys allowed at the top of the file, before any table.
    static let rootKeys = ["workers", "user", "group", "unsafe_key_permissions", "admin", "log", "limits", "dns", "upstream",
                           "backend", "listener"]

    /// Reads and validates the file at `path`.
    ///
    /// Relative file paths inside the config resolve against the config file's directory, so a
    /// config and its certificates can move together. Blocks on file I/O: call it at start-up or
    /// reload, never on an event loop.
    public static func load(path: String) throws(ConfigErrors) -> Config {
        let file = try read(path: path)
        return try parse(file.text, baseDirectory: file.baseDirectory)
    }

    /// Reads the file at `path` once, without parsing it: its text, and the directory its relative
    /// paths resolve against. A reload hands exactly this text to the checking child process.
    public static func read(path: String) throws(ConfigErrors) -> (text: String, baseDirectory: String) {
        let resolved = ConfigFiles.resolve(path, against: FileManager.default.currentDirectoryPath)
        if let problem = ConfigFiles.problemReading(resolved) {
            throw ConfigErrors([ConfigError(key: "config", message: "cannot read the config file: \(problem)")])
        }
        guard let data = FileManager.default.contents(atPath: resolved) else {
            throw ConfigErrors([ConfigError(key: "config", message: "cannot read the config file \(resolved)")])
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigErrors([ConfigError(key: "config", message: "\(resolved) is not UTF-8 text")])
        }
        return (text, (resolved as NSString).deletingLastPathComponent)
    }

    /// Parses and validates TOML text.
    ///
    /// `baseDirectory` resolves relative paths in the config (`nil` means the current directory).
    /// Checks that referenced files exist and are readable, so this touches the file system.
    public static func parse(_ text: String, baseDirectory: String?) throws(ConfigErrors) -> Config {
        let diagnostics = ConfigDiagnostics()
        let base = ConfigFiles.absoluteBase(baseDirectory)
        guard let root = parseTOML(text, diagnostics: diagnostics) else { throw ConfigErrors(diagnostics.errors) }
        let reader = TableReader(table: root, path: "", diagnostics: diagnostics)
        reader.rejectUnknownKeys(known: rootKeys)

        var config = Config()
        diagnostics.allowLooseKeyPermissions = reader.bool("unsafe_key_permissions") ?? false
        config.workers = readWorkers(reader)
        config.user = reader.nonEmptyString("user", ifEmpty: "omit it to keep the starting user")
        config.group = reader.nonEmptyString("group", ifEmpty: "omit it to use the user's primary group")
        if config.group != nil && config.user == nil {
            diagnostics.add("group", "is set without user; set user too (the group alone does not drop root)")
        }
        config.admin = reader.section("admin").map(readAdmin) ?? AdminConfig()
        config.log = reader.section("log").map { readLog($0, base: base) } ?? LogConfig()
        config.limits = reader.section("limits").map(readLimits) ?? LimitsConfig()
        config.dns = reader.section("dns").map(readDNS) ?? DNSConfig()
        let upstreams = readUpstreams(reader.arrayOfTables("upstream"), base: base)
        config.upstreams = upstreams.configs
        let backends = readBackends(reader.arrayOfTables("backend"), base: base)
        config.backends = backends.configs
        config.listeners = readListeners(reader.arrayOfTables("listener"), upstreamNames: upstreams.names,
                                         backendNames: backends.names,
                                         declaresNone: root["listener"]?.array?.isEmpty ?? true,
                                         base: base, diagnostics: diagnostics)

        guard diagnostics.errors.isEmpty else { throw ConfigErrors(diagnostics.errors) }
        return config
    }

    /// The document's root table, or `nil` with a `config` error giving TOMLKit's line and column.
    private static func parseTOML(_ text: String, diagnostics: ConfigDiagnostics) -> TOMLTable? {
        // TOMLKit hands the text to C++ as a C string: a NUL byte would silently end the file early.
        if let nul = text.firstIndex(of: "\0") {
            let line = text[..<nul].reduce(1) { $1 == "\n" ? $0 + 1 : $0 }
            diagnostics.add("config", "line \(line) contains a NUL byte; the file must be plain UTF-8 text")
            return nil
        }
        if !skipPreflightForTests, let problem = TOMLPreflight.problem(in: text) {
            diagnostics.add("config", "not valid TOML at \(problem)")
            return nil
        }
        do {
            return try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            let position = error.source.begin
            // toml++ says "Error while parsing value: ..."; the key already says it is an error.
            var reason = Substring(error.description)
            if reason.hasPrefix("Error while ") { reason = reason.dropFirst("Error while ".count) }
            diagnostics.add("config", "not valid TOML at line \(position.line), column \(position.column): "
                + "\(reason); check quoting (strings need double quotes) and brackets"
                + " ([table], [[upstream]]), and that no key is written twice")
            return nil
        } catch {
            diagnostics.add("config", "not valid TOML")
            return nil
        }
    }

    /// Debug builds only: `TLS_BRIDGE_TEST_SKIP_TOML_PREFLIGHT=1` lets text the preflight would
    /// refuse reach toml++, so tests can prove that a parser crash during a reload stays in the
    /// checking child process. Release builds ignore it.
    private static var skipPreflightForTests: Bool {
        #if DEBUG
        ProcessInfo.processInfo.environment["TLS_BRIDGE_TEST_SKIP_TOML_PREFLIGHT"] == "1"
        #else
        false
        #endif
    }

    /// `workers`: a count of at least 1, or `"auto"` for one per available processor (the default).
    private static func readWorkers(_ reader: TableReader) -> Int {
        let auto = ProcessInfo.processInfo.activeProcessorCount
        guard let value = reader.table["workers"] else { return auto }
        if let count = value.int {
            if count >= 1 { return count }
            reader.diagnostics.add("workers", "\(count) is less than 1; use a positive number of threads or \"auto\"")
        } else if let text = value.string {
            if text == "auto" { return auto }
            reader.diagnostics.add("workers", "\"\(text)\" is not a number of threads; use an integer of at least 1 or \"auto\"")
        } else {
            reader.diagnostics.add("workers", "expected an integer of at least 1 or \"auto\", found \(TableReader.describe(value.type))")
        }
        return auto
    }
}
