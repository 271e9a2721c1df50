import ArgumentParser
import BridgeEngine
import BridgeModel
import Foundation

/// `tls-bridge reload-check` (hidden): the child side of a reload. Reads the config text on stdin,
/// parses and validates it as `check` does (relative paths against `--base-directory`), and writes
/// a `ConfigCheckReport` as JSON on stdout: exit 0 with the config, 1 with its errors. If the TOML
/// parser aborts, only this process dies; the running bridge keeps its configuration.
struct ReloadCheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: IsolatedConfigCheck.subcommand,
        abstract: "Check config text from stdin for a running bridge's reload (internal).",
        shouldDisplay: false
    )

    @Option(help: "The directory relative paths in the config resolve against.")
    var baseDirectory: String

    func run() throws {
        let data = FileHandle.standardInput.readDataToEndOfFile()
        let report: ConfigCheckReport
        if let text = String(data: data, encoding: .utf8) {
            do {
                report = ConfigCheckReport(config: try ConfigLoader.parse(text, baseDirectory: baseDirectory))
            } catch {
                report = ConfigCheckReport(errors: error.errors)
            }
        } else {
            report = ConfigCheckReport(errors: [ConfigError(key: "config", message: "the file is not UTF-8 text")])
        }
        FileHandle.standardOutput.write(report.encoded())
        if report.config == nil { throw ExitCode(1) }
    }
}
