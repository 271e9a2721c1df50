/// `[[backend]]` entries: the merchant's own servers, where the gateway's notifications go.
///
/// A backend may speak legacy TLS, because the merchant's old server may know nothing newer; that
/// is allowed only where it stays on the merchant's side (loopback or private addresses), and only
/// verified: by a CA bundle or by the pinned certificate of a self-signed server.
extension ConfigLoader {
    static let backendKeys = [
        "name", "address", "tls", "ca_file", "pin_sha256", "server_name", "min_version", "unsafe_public_backend",
    ]

    /// The valid backends, and every usable name (so listeners referring to a broken one are not
    /// reported twice).
    static func readBackends(_ entries: [TableReader], base: String) -> (configs: [BackendConfig], names: Set<String>) {
        readNamedEntries(entries, section: "backend", keys: backendKeys) { entry, name in
            readBackend(entry, name: name, base: base)
        }
    }

    private static func readBackend(_ entry: TableReader, name: String?, base: String) -> BackendConfig? {
        let address = entry.requiredString("address", example: "127.0.0.1:8080").flatMap { text in
            let parsed = parseHostPort(text)
            if parsed == nil {
                entry.diagnostics.add(entry.key("address"), "\"\(text)\" is not host:port; write e.g. \"127.0.0.1:8080\"")
            }
            return parsed
        }
        let mode = entry.string("tls").flatMap { text -> BackendTLSMode? in
            guard let mode = BackendTLSMode(rawValue: text) else {
                entry.diagnostics.add(entry.key("tls"), "\"\(text)\" is not a backend TLS mode; use \"off\" (plain) or"
                    + " \"legacy\" (TLS 1.0 or newer toward an old server)")
                return nil
            }
            return mode
        } ?? .off
        let caFile = entry.readableFile("ca_file", base: base)
        let pin = entry.nonEmptyString("pin_sha256", ifEmpty: "omit it or give the certificate's SHA-256").flatMap { text in
            let normalized = normalizedFingerprint(text)
            if normalized == nil {
                entry.diagnostics.add(entry.key("pin_sha256"), "\"\(text)\" is not a SHA-256 fingerprint; write 64 hex digits,"
                    + " colons optional (openssl x509 -noout -fingerprint -sha256 -in server.pem)")
            }
            return normalized
        }
        let serverName = entry.nonEmptyString("server_name", ifEmpty: "omit it to send no SNI")
        var minVersion = TLSVersion.tls10
        if let text = entry.string("min_version") {
            if let version = TLSVersion(rawValue: text) {
                minVersion = version
            } else {
                entry.diagnostics.add(entry.key("min_version"), "\"\(text)\" is not a TLS version; use \"TLS1.0\", \"TLS1.1\", \"TLS1.2\" or \"TLS1.3\"")
            }
        }
        let unsafePublic = entry.bool("unsafe_public_backend") ?? false
        switch mode {
        case .off:
            for key in ["ca_file", "pin_sha256", "server_name", "min_version"] where entry.contains(key) {
                entry.diagnostics.add(entry.key(key), "only applies with tls = \"legacy\"; remove it or set tls = \"legacy\"")
            }
        case .legacy:
            if !entry.contains("ca_file") && !entry.contains("pin_sha256") {
                entry.diagnostics.add(entry.key("pin_sha256"), "a legacy TLS backend must be verified: set ca_file (the CA"
                    + " that signed its certificate) or pin_sha256 (its certificate's SHA-256, for a self-signed server)")
            }
            if let address, let bytes = ipAddressBytes(address.host), !isLoopbackOrPrivate(bytes), !unsafePublic {
                entry.diagnostics.add(entry.key("address"), "\(address) is a public address; legacy TLS stays on the"
                    + " merchant's side of the bridge (loopback or private networks). Set unsafe_public_backend = true"
                    + " only if this path never leaves a network you control")
            }
        }
        guard let name, let address else { return nil }
        return BackendConfig(name: name, address: address, tls: mode, caFile: caFile, pinSHA256: pin,
                             serverName: serverName, minVersion: minVersion, unsafePublicBackend: unsafePublic)
    }
}
