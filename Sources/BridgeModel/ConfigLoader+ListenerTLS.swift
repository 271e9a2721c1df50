/// The TLS policy of an `accept = "tls"` listener: versions, ciphers, identities, client auth.
///
/// This is the only place legacy protocol versions can be configured, and only for the merchant's
/// side of the bridge. Still refused here: ciphers with no encryption or no authentication.
extension ConfigLoader {
    static let tlsListenerKeys = [
        "min_version", "max_version", "ciphers", "ciphersuites", "cert", "key", "ca_cert", "ca_key", "certificates",
        "require_client_cert", "client_ca", "client_cert_fingerprints",
    ]

    static func readDownstreamTLS(_ entry: TableReader, routes: [String: String], hasDefaultRoute: Bool,
                                  base: String) -> DownstreamTLSConfig {
        var config = DownstreamTLSConfig()
        if let text = entry.string("min_version"), let version = tlsVersion(text, key: "min_version", entry: entry) {
            config.minVersion = version
        }
        if let text = entry.string("max_version"), let version = tlsVersion(text, key: "max_version", entry: entry) {
            config.maxVersion = version
            if version < config.minVersion {
                entry.diagnostics.add(entry.key("max_version"), "\"\(version.rawValue)\" is below min_version"
                    + " \"\(config.minVersion.rawValue)\"; raise it or lower min_version")
            }
        }
        config.ciphers = entry.nonEmptyString("ciphers", ifEmpty: "omit it to use the default")
        for token in config.ciphers.map(CipherPolicy.refusedTokens(inDownstreamCipherString:)) ?? [] {
            entry.diagnostics.add(entry.key("ciphers"), "\"\(token)\" is not allowed even for legacy clients: it means no"
                + " encryption or no authentication of the bridge; remove it (excluding with \"!\" is fine)")
        }
        config.ciphersuites = entry.nonEmptyString("ciphersuites", ifEmpty: "omit it to use OpenSSL's TLS 1.3 default")
        for token in config.ciphersuites.map(CipherPolicy.weakTokens(inCipherSuites:)) ?? [] {
            entry.diagnostics.add(entry.key("ciphersuites"), "\"\(token)\" is not allowed: it provides no encryption; remove it")
        }
        config.identity = readCertificatePair(entry, certKey: "cert", keyKey: "key", keyOptional: true, base: base)
        config.localCA = readCertificatePair(entry, certKey: "ca_cert", keyKey: "ca_key", keyOptional: false, base: base)
        let hosts = ListenerConfig.hosts(ofRouteKeys: routes.keys)
        config.certificates = readPerNameCertificates(entry, hosts: Set(hosts), base: base)
        let unnamed = hosts.filter { config.certificates[$0] == nil }
        let hasIdentitySource = entry.contains("cert") || entry.contains("ca_cert")
        if !hasIdentitySource && (hasDefaultRoute || !unnamed.isEmpty) {
            entry.diagnostics.add(entry.key("cert"), "a tls listener needs a certificate to present: cert (and key), or"
                + " ca_cert and ca_key to mint one per routed name (see `tls-bridge ca init`)")
        }
        readClientAuthentication(entry, into: &config, base: base)
        return config
    }

    private static func tlsVersion(_ text: String, key: String, entry: TableReader) -> TLSVersion? {
        if let version = TLSVersion(rawValue: text) { return version }
        let loose = String(text.uppercased().filter { $0 != " " && $0 != "_" && $0 != "V" })
        let known = TLSVersion.allCases.first { loose == $0.rawValue.uppercased().replacingOccurrences(of: "V", with: "")
            || loose == $0.rawValue.uppercased().replacingOccurrences(of: ".", with: "") }
        let message = known.map { "write it as \"\($0.rawValue)\"" }
            ?? (loose.hasPrefix("SSL") ? "SSL 2.0 and 3.0 cannot be offered by this OpenSSL; the oldest is \"TLS1.0\""
                : "\"\(text)\" is not a TLS version; use \"TLS1.0\", \"TLS1.1\", \"TLS1.2\" or \"TLS1.3\"")
        entry.diagnostics.add(entry.key(key), message)
        return nil
    }

    /// A certificate and its key. With `keyOptional`, the key may be inside the certificate file.
    private static func readCertificatePair(_ entry: TableReader, certKey: String, keyKey: String, keyOptional: Bool,
                                            base: String) -> CertificateFiles? {
        let cert = entry.readableFile(certKey, base: base)
        let key = entry.readableFile(keyKey, base: base, secret: true)
        if entry.contains(keyKey) && !entry.contains(certKey) {
            entry.diagnostics.add(entry.key(keyKey), "is set without \(certKey); set \(certKey) to the certificate this key belongs to")
        }
        if !keyOptional && entry.contains(certKey) && !entry.contains(keyKey) {
            entry.diagnostics.add(entry.key(keyKey), "missing; \(certKey) needs its private key in \(keyKey)")
        }
        return cert.map { CertificateFiles(cert: $0, key: key) }
    }

    /// `[listener.certificates."name"]`: a static identity for one routed name.
    private static func readPerNameCertificates(_ entry: TableReader, hosts: Set<String>,
                                                base: String) -> [String: CertificateFiles] {
        guard let table = entry.section("certificates") else { return [:] }
        var result: [String: CertificateFiles] = [:]
        for name in table.table.keys.sorted() {
            guard let perName = table.section(name) else { continue }
            perName.rejectUnknownKeys(known: ["cert", "key"])
            guard hosts.contains(name.lowercased()) else {
                entry.diagnostics.add(table.key(name), "\"\(name)\" is not a name in [listener.routes]; certificates are"
                    + " only presented for routed names")
                continue
            }
            if !perName.contains("cert") {
                entry.diagnostics.add(perName.key("cert"), "missing; give the certificate for \(name)")
            }
            if let files = readCertificatePair(perName, certKey: "cert", keyKey: "key", keyOptional: true, base: base) {
                result[name.lowercased()] = files
            }
        }
        return result
    }

    private static func readClientAuthentication(_ entry: TableReader, into config: inout DownstreamTLSConfig, base: String) {
        config.requireClientCert = entry.bool("require_client_cert") ?? false
        config.clientCA = entry.readableFile("client_ca", base: base)
        for text in entry.stringArray("client_cert_fingerprints") ?? [] {
            if let fingerprint = normalizedFingerprint(text) {
                config.clientCertFingerprints.append(fingerprint)
            } else {
                entry.diagnostics.add(entry.key("client_cert_fingerprints"), "\"\(text)\" is not a SHA-256 fingerprint;"
                    + " write 64 hex digits, colons optional (openssl x509 -noout -fingerprint -sha256 -in cert.pem)")
            }
        }
        let hasTrust = entry.contains("client_ca") || entry.contains("client_cert_fingerprints")
        if config.requireClientCert && !hasTrust {
            entry.diagnostics.add(entry.key("require_client_cert"), "needs client_ca or client_cert_fingerprints to say"
                + " which merchant certificates are accepted")
        }
        if !config.requireClientCert && hasTrust {
            let key = entry.contains("client_ca") ? "client_ca" : "client_cert_fingerprints"
            entry.diagnostics.add(entry.key(key), "has no effect without require_client_cert = true; add it")
        }
    }

    /// 64 upper-case hex digits, from "AB:CD:…", "abcd…" or "sha256:…" / "SHA256 Fingerprint=…".
    static func normalizedFingerprint(_ text: String) -> String? {
        var body = Substring(text.trimmingCharacters(in: .whitespaces))
        if let equals = body.firstIndex(of: "=") { body = body[body.index(after: equals)...] }
        if body.lowercased().hasPrefix("sha256:") { body = body.dropFirst("sha256:".count) }
        let hex = body.filter { $0 != ":" && $0 != " " }.uppercased()
        guard hex.count == 64, hex.allSatisfy({ $0.isHexDigit }) else { return nil }
        return hex
    }
}
