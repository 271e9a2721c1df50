/// `[[upstream]]` entries: the allowlisted destinations and the TLS policy toward each.
///
/// Nothing here can weaken verification: there is no key for it, versions below TLS 1.2 and weak
/// ciphers are refused, and every certificate file must exist before the config is accepted.
extension ConfigLoader {
    static let upstreamKeys = [
        "name", "address", "server_name", "ca_file", "client_cert", "client_key", "client_key_password_file",
        "min_version", "ciphers", "ciphersuites", "via", "via_credentials",
        "preconnect", "preconnect_max_age",
    ]

    /// The valid upstreams, and every usable name (including entries with other errors, so that
    /// listeners referring to them do not get a second, misleading error).
    static func readUpstreams(_ entries: [TableReader], base: String) -> (configs: [UpstreamConfig], names: Set<String>) {
        readNamedEntries(entries, section: "upstream", keys: upstreamKeys) { entry, name in
            readUpstream(entry, name: name, base: base)
        }
    }

    /// Reads each `[[section]]` entry: claims its name, rejects unknown keys, and keeps the entries
    /// that read without errors. Every usable name is returned, also of entries with errors.
    static func readNamedEntries<Entry>(_ entries: [TableReader], section: String, keys: [String],
                                        read: (TableReader, String?) -> Entry?) -> (configs: [Entry], names: Set<String>) {
        var seen: [String: Int] = [:]
        var configs: [Entry] = []
        for (index, original) in entries.enumerated() {
            var entry = original
            let errorsBefore = entry.diagnostics.errors.count
            let name = EntryNaming.claimName(&entry, section: section, position: index + 1, seen: &seen)
            entry.rejectUnknownKeys(known: keys)
            if let config = read(entry, name), entry.diagnostics.errors.count == errorsBefore { configs.append(config) }
        }
        return (configs, Set(seen.keys))
    }

    private static func readUpstream(_ entry: TableReader, name: String?, base: String) -> UpstreamConfig? {
        let address = entry.requiredString("address", example: "sandbox.paygent.co.jp:443").flatMap { text in
            let parsed = parseHostPort(text)
            if parsed == nil {
                entry.diagnostics.add(entry.key("address"), "\"\(text)\" is not host:port; write e.g."
                    + " \"sandbox.paygent.co.jp:443\" (an IPv6 address as \"[2001:db8::1]:443\")")
            }
            return parsed
        }
        let serverName = entry.nonEmptyString("server_name", ifEmpty: "omit it to verify the host of address")
            .flatMap { text -> String? in
                guard isValidHostName(Substring(text)) || isIPLiteral(text) else {
                    entry.diagnostics.add(entry.key("server_name"), "\"\(text)\" is not a host name")
                    return nil
                }
                return text
            }
        let caFile = entry.readableFile("ca_file", base: base)
        let clientCert = entry.readableFile("client_cert", base: base)
        let clientKey = entry.readableFile("client_key", base: base, secret: true)
        let passwordFile = entry.readableFile("client_key_password_file", base: base, secret: true)
        for dependent in ["client_key", "client_key_password_file"] where entry.contains(dependent) && !entry.contains("client_cert") {
            entry.diagnostics.add(entry.key(dependent), "is set without client_cert; set client_cert to the certificate this key belongs to")
        }
        let minVersion = entry.string("min_version").flatMap { minimumVersion($0, entry: entry) }
        let ciphers = entry.nonEmptyString("ciphers", ifEmpty: "omit it to use the built-in strong default")
        for token in ciphers.map(CipherPolicy.weakTokens(inCipherString:)) ?? [] {
            entry.diagnostics.add(entry.key("ciphers"), "\"\(token)\" is not allowed: \(CipherPolicy.reason(forWeakToken: token));"
                + " remove it (excluding with \"!\" is fine)")
        }
        let suites = entry.nonEmptyString("ciphersuites", ifEmpty: "omit it to use OpenSSL's TLS 1.3 default")
        for token in suites.map(CipherPolicy.weakTokens(inCipherSuites:)) ?? [] {
            entry.diagnostics.add(entry.key("ciphersuites"), "\"\(token)\" is not allowed: it provides no encryption; remove it")
        }
        let via = entry.nonEmptyString("via", ifEmpty: "omit it to dial the gateway directly").flatMap { proxyURL($0, entry: entry) }
        let viaCredentials = entry.readableFile("via_credentials", base: base, secret: true)
        if entry.contains("via_credentials") && !entry.contains("via") {
            entry.diagnostics.add(entry.key("via_credentials"), "is set without via; set via to the proxy these credentials are for")
        }
        let preconnect = entry.integer("preconnect", atLeast: 0).flatMap { count -> Int? in
            guard count <= UpstreamConfig.maximumPreconnect else {
                entry.diagnostics.add(entry.key("preconnect"), "\(count) is more than \(UpstreamConfig.maximumPreconnect) spare connections per"
                    + " worker; one serves sporadic payment calls, a few serve bursts")
                return nil
            }
            return count
        }
        let maxAge = entry.duration("preconnect_max_age").flatMap { age -> Duration? in
            guard age >= .seconds(1), age <= .seconds(300) else {
                entry.diagnostics.add(entry.key("preconnect_max_age"), "must be between 1s and 300s; keep it below the time the"
                    + " gateway lets an idle connection live before its first request (default 15s)")
                return nil
            }
            return age
        }

        guard let name, let address else { return nil }
        return UpstreamConfig(name: name, address: address, serverName: serverName, caFile: caFile,
                              clientCert: clientCert, clientKey: clientKey, clientKeyPasswordFile: passwordFile,
                              minVersion: minVersion ?? .tls12, ciphers: ciphers, ciphersuites: suites,
                              via: via, viaCredentialsFile: viaCredentials,
                              preconnect: preconnect ?? UpstreamConfig.defaultPreconnect,
                              preconnectMaxAge: maxAge ?? UpstreamConfig.defaultPreconnectMaxAge)
    }

    /// `via`: `"http://host:port"`, the proxy's own address (the tunnel inside it is TLS to the gateway).
    private static func proxyURL(_ text: String, entry: TableReader) -> HostPort? {
        let example = "write it as \"http://proxy.example:3128\""
        guard text.lowercased().hasPrefix("http://") else {
            let scheme = text.firstRange(of: "://").map { String(text[..<$0.lowerBound]) }
            entry.diagnostics.add(entry.key("via"), scheme.map { "\"\($0)://\" proxies are not supported: the bridge speaks"
                + " plain HTTP to the proxy and TLS to the gateway inside its tunnel; \(example)" } ?? "\"\(text)\" is not"
                + " a proxy URL; \(example)")
            return nil
        }
        var authority = Substring(text.dropFirst("http://".count))
        if authority.hasSuffix("/") { authority = authority.dropLast() }
        if authority.contains("@") {
            entry.diagnostics.add(entry.key("via"), "has credentials in the URL; put the one user:password line in a file"
                + " readable only by tls-bridge and name it in via_credentials")
            return nil
        }
        guard !authority.contains("/"), !authority.contains("?"), let hostPort = parseHostPort(String(authority)) else {
            entry.diagnostics.add(entry.key("via"), "\"\(text)\" is not http://host:port (with the proxy's port, and no path);"
                + " \(example)")
            return nil
        }
        return hostPort
    }

    /// `"TLS1.2"` or `"TLS1.3"`; anything older is refused with the floor spelled out.
    private static func minimumVersion(_ text: String, entry: TableReader) -> UpstreamTLSVersion? {
        if let version = UpstreamTLSVersion(rawValue: text) { return version }
        // Compare loosely ("tlsv1.1", "TLS 1.0", "SSLv3") only to pick the right explanation.
        let loose = String(text.uppercased().filter { $0 != " " && $0 != "_" && $0 != "V" })
        let message: String
        if ["SSL2", "SSL3", "SSL2.0", "SSL3.0", "TLS1", "TLS1.0", "TLS1.1", "TLS10", "TLS11", "1.0", "1.1"].contains(loose) {
            message = "\"\(text)\" is below the upstream floor (TLS 1.2); use \"TLS1.2\" or \"TLS1.3\""
        } else if let version = ["TLS1.2", "TLS12", "1.2"].contains(loose) ? UpstreamTLSVersion.tls12
                    : ["TLS1.3", "TLS13", "1.3"].contains(loose) ? UpstreamTLSVersion.tls13 : nil {
            message = "write it as \"\(version.rawValue)\""
        } else {
            message = "\"\(text)\" is not a TLS version; use \"TLS1.2\" or \"TLS1.3\""
        }
        entry.diagnostics.add(entry.key("min_version"), message)
        return nil
    }
}
