import ArgumentParser
import BridgeEngine
import BridgeModel
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// Loads the config or prints every problem (one per line, `KEY: message`) and exits 1.
func loadConfigOrExit(_ path: String) throws -> Config {
    do {
        return try ConfigLoader.load(path: path)
    } catch {
        printErrors(error, configPath: path)
        throw ExitCode(1)
    }
}

/// Builds every TLS context of `config`, or prints every problem and exits 1.
func buildContextsOrExit(_ config: Config, configPath: String) throws -> TLSContexts {
    do {
        return try BridgeRuntime.buildContexts(config)
    } catch {
        printErrors(error, configPath: configPath)
        throw ExitCode(1)
    }
}

/// Operator-facing errors on stderr, each naming the key to fix.
func printErrors(_ errors: ConfigErrors, configPath: String) {
    var text = "tls-bridge: \(configPath) cannot be used:\n"
    for error in errors.errors {
        text += "  \(error)\n"
    }
    _ = text.withCString { write(STDERR_FILENO, $0, strlen($0)) }
}

/// Diagnostics go to stderr through swift-log at the configured level.
func bootstrapLogging(level: LogLevel) {
    let swiftLogLevel = Logger.Level(rawValue: level.rawValue) ?? .info
    LoggingSystem.bootstrap { label in
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = swiftLogLevel
        return handler
    }
}
