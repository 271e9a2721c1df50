import ArgumentParser
import BridgeEngine
import BridgeModel
import Logging

/// `tls-bridge run`: loads and validates the config, then bridges in the foreground until
/// SIGINT or SIGTERM. SIGHUP reloads the config file (and reopens the session log); the new file
/// is parsed in a child process (see `IsolatedConfigCheck`), never in the running one.
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the bridge in the foreground (SIGHUP reloads, SIGINT/SIGTERM drain and stop)."
    )

    @OptionGroup var options: ConfigOptions

    func run() throws {
        let config = try loadConfigOrExit(options.config)
        bootstrapLogging(level: config.log.level)
        let logger = Logger(label: "tls-bridge")
        let path = options.config
        var current: BridgeRuntime?
        do {
            let runtime = try BridgeRuntime(config: config, contexts: try BridgeRuntime.buildContexts(config), logger: logger)
            current = runtime
            try Bridge.run(runtime: runtime) { () throws(ConfigErrors) -> BridgeRuntime in
                // Read once; a child process parses exactly these bytes (toml++ may abort, TOMLKit
                // leaks), and this process uses the config the child built from them.
                let file = try ConfigLoader.read(path: path)
                let next = try IsolatedConfigCheck.check(text: file.text, baseDirectory: file.baseDirectory,
                                                           configPath: path)
                let runtime = try BridgeRuntime(config: next, contexts: try BridgeRuntime.buildContexts(next), logger: logger,
                                                replacing: current)
                current = runtime
                return runtime
            }
        } catch {
            printErrors(error, configPath: options.config)
            throw ExitCode(1)
        }
    }
}
