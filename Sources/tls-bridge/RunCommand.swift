import ArgumentParser
import BridgeEngine
import BridgeModel
import Logging

/// `tls-bridge run`: loads and validates the config, then bridges in the foreground until
/// SIGINT or SIGTERM.
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the bridge in the foreground (SIGINT/SIGTERM stop it)."
    )

    @OptionGroup var options: ConfigOptions

    func run() throws {
        let config = try loadConfigOrExit(options.config)
        bootstrapLogging(level: config.log.level)
        let logger = Logger(label: "tls-bridge")
        do {
            let contexts = try BridgeRuntime.buildContexts(config)
            let runtime = try BridgeRuntime(config: config, contexts: contexts, logger: logger)
            try Bridge.run(runtime: runtime)
        } catch {
            printErrors(error, configPath: options.config)
            throw ExitCode(1)
        }
    }
}
