import ArgumentParser
import BridgeEngine
import BridgeIO
import BridgeModel

/// `tls-bridge probe`: one real handshake to each upstream with the configured policy and client
/// certificate, before the merchant's traffic depends on it.
struct ProbeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "probe",
        abstract: "Handshake with each upstream now and show what it negotiates, verifies and asks for."
    )

    @OptionGroup var options: ConfigOptions

    @Argument(help: "Upstream names to probe (default: all).")
    var upstreams: [String] = []

    func run() throws {
        let config = try loadConfigOrExit(options.config)
        let contexts = try buildContextsOrExit(config, configPath: options.config)
        let unknown = upstreams.filter { contexts.upstreams[$0] == nil }
        guard unknown.isEmpty else {
            throw ValidationError("no [[upstream]] named \(unknown.joined(separator: ", ")) in \(options.config)")
        }
        var failed = 0
        for upstream in config.upstreams where upstreams.isEmpty || upstreams.contains(upstream.name) {
            guard let context = contexts.upstreams[upstream.name] else { continue }
            let result = UpstreamProbe.run(context, via: contexts.outboundProxies[upstream.name], config: config)
            let via = upstream.via.map { " through the outbound proxy \($0)" } ?? ""
            print("upstream \(upstream.name) (\(upstream.address)\(via), verifying \(upstream.verifiedName)):")
            if let address = result.address { print("  connected to \(address) in \(result.milliseconds) ms") }
            if let details = result.details, result.error == nil {
                print("  \(details.protocolVersion ?? "?") \(details.cipher ?? "?")\(details.resumed ? " (resumed)" : "")")
                print("  certificate: \(details.peerSubject ?? "?"), issued by \(details.peerIssuer ?? "?")")
                if let left = details.peerSecondsLeft {
                    print("  expires in \(left / 86_400) days" + (left < 30 * 86_400 ? "  WARNING: less than 30 days" : ""))
                }
                print("  verification: \(details.verification ?? "?")")
                print("  client certificate: \(details.certificateRequested ? "requested" : "not requested"),"
                    + " \(details.sentCertificate ? "sent \(context.clientCertificateSubject ?? "")" : "none sent")")
                if details.certificateRequested && !details.sentCertificate {
                    print("  WARNING: the gateway asked for a client certificate and none is configured (client_cert)")
                }
            } else {
                failed += 1
                print("  FAILED: \(result.error ?? "unknown error")")
                if let details = result.details, details.certificateRequested, !details.sentCertificate {
                    print("  the gateway asked for a client certificate and none was sent: set client_cert (and client_key)")
                }
            }
        }
        for listener in contexts.downstreams.values {
            for (name, identity) in listener.identities where identity.secondsLeft < 30 * 86_400 {
                print("WARNING: listener \(listener.listener.name) certificate for \(name) expires in \(identity.secondsLeft / 86_400) days")
            }
        }
        for context in contexts.upstreams.values {
            if let left = context.clientCertificateSecondsLeft, left < 30 * 86_400 {
                print("WARNING: upstream \(context.config.name) client certificate expires in \(left / 86_400) days")
            }
        }
        if failed > 0 { throw ExitCode(2) }
    }
}
