import ArgumentParser
import BridgeEngine
import BridgeIO
import BridgeModel

/// `tls-bridge check`: everything `run` would verify before bridging — the file, every policy,
/// every certificate and key — without binding any port. Prints what would run.
struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Validate the config, certificates and keys; print what would run."
    )

    @OptionGroup var options: ConfigOptions

    func run() throws {
        let config = try loadConfigOrExit(options.config)
        let upstreams: [String: UpstreamTLSContext]
        do {
            upstreams = try BridgeRuntime.buildUpstreams(config)
        } catch {
            printErrors(error, configPath: options.config)
            throw ExitCode(1)
        }
        print("config \(options.config): OK")
        print("workers: \(config.workers)")
        print("session log: \(describe(config.log.sessions)), level \(config.log.level.rawValue)")
        for listener in config.listeners {
            print("listener \(listener.name): \(listener.listen) accepts \(listener.accept.rawValue) → upstream \(listener.upstream)")
        }
        for upstream in config.upstreams {
            guard let context = upstreams[upstream.name] else { continue }
            print("upstream \(upstream.name): \(upstream.address)")
            print("  verifies: \(upstream.verifiedName) against \(upstream.caFile ?? "the system CA store")"
                + (context.nameIsIPLiteral ? " (IP literal: no SNI)" : ", sends SNI"))
            print("  TLS: \(upstream.minVersion.rawValue) or newer; \(context.offeredCiphers.count) ciphers offered, first \(context.offeredCiphers.prefix(3).joined(separator: ", "))")
            if let subject = context.clientCertificateSubject {
                let days = (context.clientCertificateSecondsLeft ?? 0) / 86_400
                print("  client certificate: \(subject), expires in \(days) days")
                if days < 30 {
                    print("  warning: the client certificate expires in less than 30 days; renew it with the gateway")
                }
            } else {
                print("  client certificate: none (the gateway may require one)")
            }
        }
        let capabilities = LibraryVersions.openSSLCapabilities().sorted { $0.key < $1.key }
            .map { "\($0.key) \($0.value ? "yes" : "no")" }
        print("linked \(LibraryVersions.openSSL): \(capabilities.joined(separator: ", "))")
    }

    private func describe(_ destination: LogDestination) -> String {
        switch destination {
        case .stdout: "stdout"
        case .stderr: "stderr"
        case .file(let path): path
        }
    }
}
