import ArgumentParser

/// `tls-bridge`: carries a legacy merchant server's connections to the payment gateway over
/// verified TLS 1.2+, and logs one JSON record per session.
@main
struct TLSBridgeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tls-bridge",
        abstract: "Carry legacy (plain or old-TLS) connections to a TLS 1.2+ gateway, verified and logged.",
        version: BuildInfo.version,
        subcommands: [RunCommand.self, CheckCommand.self, ProbeCommand.self, VersionCommand.self, CACommand.self, ReportCommand.self, DemoCommand.self, HealthCommand.self,
                      ReloadCheckCommand.self]
    )
}

/// Options every command that reads the config shares.
struct ConfigOptions: ParsableArguments {
    @Option(name: .shortAndLong, help: "Path of the TOML configuration.")
    var config: String = "/etc/tls-bridge/tls-bridge.toml"
}

enum BuildInfo {
    static let version = "0.1.0"
}
