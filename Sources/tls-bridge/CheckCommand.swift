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
        let contexts = try buildContextsOrExit(config, configPath: options.config)
        let capabilities = LibraryVersions.openSSLCapabilities()
        print("config \(options.config): OK")
        print("workers: \(config.workers)")
        let descriptors = FileDescriptorLimit.current()
        print("open files: soft limit \(descriptors.soft), hard \(descriptors.hard) (run raises the soft limit to the hard one;"
            + " each session needs 2, max_sessions is \(config.limits.maxSessions))")
        print("session log: \(describe(config.log.sessions)), level \(config.log.level.rawValue)")
        for listener in config.listeners {
            describe(listener, context: contexts.downstreams[listener.name], capabilities: capabilities)
        }
        for upstream in config.upstreams {
            guard let context = contexts.upstreams[upstream.name] else { continue }
            describe(upstream, context: context)
        }
        for backend in config.backends {
            var line = "backend \(backend.name): \(backend.address), "
            switch backend.tls {
            case .off: line += "plain TCP"
            case .legacy:
                line += "legacy TLS (\(backend.minVersion.rawValue) or newer), verified by "
                    + (backend.pinSHA256.map { "pinned SHA-256 \($0.prefix(16))…" } ?? "\(backend.caFile ?? "?")"
                        + (backend.serverName.map { " as \($0)" } ?? ""))
            }
            print(line)
        }
        let summary = capabilities.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value ? "yes" : "no")" }
        print("linked \(LibraryVersions.openSSL): \(summary.joined(separator: ", "))")
    }

    private func describe(_ listener: ListenerConfig, context: DownstreamTLSContext?, capabilities: [String: Bool]) {
        let routes = listener.routes.sorted { $0.key < $1.key }.map { "\($0.key) → \($0.value)" }
        var line = "listener \(listener.name): \(listener.listen) accepts \(listener.accept.rawValue)"
        if let upstream = listener.upstream { line += ", default upstream \(upstream)" }
        if let backend = listener.backend {
            line += ", delivers to backend \(backend)" + (listener.proxyProtocol.map { " with PROXY protocol \($0.rawValue)" } ?? "")
                + (listener.clientAddressHeader.map { ", the peer's address in \($0.rawValue) on every request" } ?? "")
        }
        if !listener.allowSources.isEmpty { line += ", only from \(listener.allowSources.map(\.description).joined(separator: ", "))" }
        if !routes.isEmpty { line += ", routes \(routes.joined(separator: ", "))" }
        print(line)
        guard let context, let policy = listener.tls else { return }
        let versions = TLSVersion.allCases.filter { $0 >= policy.minVersion && $0 <= (policy.maxVersion ?? .tls13) }
        print("  accepts \(versions.map(\.rawValue).joined(separator: ", ")) from \(listener.backend == nil ? "merchants" : "the gateway")"
            + (policy.isLegacy ? " (legacy: security level 0 on this listener only)" : ""))
        print("  \(context.acceptedCiphers.count) suites, first \(context.acceptedCiphers.prefix(4).joined(separator: ", "))")
        let support = LegacyClientNote.CipherSupport(acceptedCiphers: context.acceptedCiphers,
                                                     libraryHas3DES: capabilities["3DES"] == true,
                                                     libraryHasRC4: capabilities["RC4"] == true)
        if policy.isLegacy {
            let families = ["AES-CBC": context.acceptedCiphers.contains { $0.contains("AES") && !$0.contains("GCM") },
                            "AES-GCM": context.acceptedCiphers.contains { $0.contains("GCM") },
                            "3DES": support.listenerAccepts3DES, "RC4": support.listenerAcceptsRC4]
            print("  cipher families: " + families.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value ? "yes" : "no")" }.joined(separator: ", "))
        }
        if let note = LegacyClientNote.note(for: listener, support: support) {
            print("  note: \(note)")
        }
        for (name, identity) in context.identities.sorted(by: { $0.key < $1.key }) {
            print("  \(name): presents \(identity.subject), expires in \(identity.secondsLeft / 86_400) days")
        }
        if listener.accept == .httpProxy {
            print("  CONNECT and http:// requests only for the routed names; anything else is answered 403"
                + (listener.proxyAuthFile == nil ? "" : "; Basic proxy authentication required"))
        } else if listener.hasDefaultRoute, let identity = context.defaultIdentity {
            print("  without SNI or for unrouted names: presents \(identity.subject)")
        } else {
            // The handshake refuses them (unrecognized_name) before any certificate is sent.
            print("  without SNI or for unrouted names: refused (unrecognized_name)"
                + (listener.hasDefaultRoute ? "" : "; set upstream to serve them"))
        }
        if policy.requireClientCert {
            let trust = [policy.clientCA.map { "issued by \($0)" },
                         policy.clientCertFingerprints.isEmpty ? nil : "\(policy.clientCertFingerprints.count) allowed fingerprints"]
            print("  requires a merchant client certificate: \(trust.compactMap { $0 }.joined(separator: ", "))")
        }
    }

    private func describe(_ upstream: UpstreamConfig, context: UpstreamTLSContext) {
        print("upstream \(upstream.name): \(upstream.address)")
        if let via = upstream.via {
            // The gateway allow-lists source addresses: through a proxy it sees the proxy's.
            print("  via: the outbound proxy http://\(via) (CONNECT tunnel, "
                + (upstream.viaCredentialsFile.map { "Basic credentials from \($0)" } ?? "no credentials") + ");"
                + " the gateway sees the proxy's address")
        }
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

    private func describe(_ destination: LogDestination) -> String {
        switch destination {
        case .stdout: "stdout"
        case .stderr: "stderr"
        case .file(let path): path
        }
    }
}
