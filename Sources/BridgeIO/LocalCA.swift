internal import COpenSSL
internal import CBridgeShims
public import BridgeModel
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A local certificate authority on disk: `DIR/ca.pem` (certificate, 0644) and `DIR/ca.key` (RSA
/// key, 0600, unencrypted PEM).
///
/// It exists for the legacy TLS listener: the merchant dials the gateway's name, a hosts-file entry
/// sends it to the bridge, and the merchant's TLS client accepts the bridge's certificate because the
/// operator added this CA to its trust bundle. The CA therefore signs leaves for gateway names only
/// the merchant resolves to the bridge; its key must stay on the bridge host.
///
/// Owns its `X509` and `EVP_PKEY` and frees them in `deinit`. Immutable after init and safe to share
/// between threads; issuing generates an RSA key (tens of milliseconds to a second), so do it at
/// start-up or reload, or off the event loop, never inside a libevent callback.
public final class LocalCA: @unchecked Sendable {
    /// The CA certificate as PEM: what a merchant adds to its trust bundle.
    public let certificatePEM: String
    /// The CA's subject, RFC 2253 (`CN=tls-bridge local CA`).
    public let subject: String
    /// When the CA certificate stops being valid, e.g. `2035-12-29 12:00:00 UTC`. Every leaf ends
    /// by then at the latest.
    public let notAfterDescription: String

    /// `X509*`: the CA certificate.
    let certificate: OpaquePointer
    /// `EVP_PKEY*`: the CA key.
    let privateKey: OpaquePointer
    /// The CA's validity, seconds since the epoch; leaves are kept inside it.
    let notBefore: Int64
    let notAfter: Int64
    /// The config key errors about the CA certificate name.
    private let certKey: String
    /// Serializes signing with the shared CA key. OpenSSL 3 allows concurrent signing with one
    /// `EVP_PKEY` that no thread modifies, so this is belt and braces; it costs nothing next to the
    /// leaf's RSA key generation, which stays outside it so that issuing still runs in parallel.
    private let signing = Mutex(())

    /// Key sizes: the CA key outlives many leaves, so it gets more than the leaves' 2048 bits,
    /// which every legacy client (Java 6, OpenSSL 0.9.8, Windows 2008) still handles.
    static let caKeyBits: UInt32 = 3072
    static let leafKeyBits: UInt32 = 2048
    /// 10 years: merchants install the CA by hand, so it should outlive the bridge's deployment.
    static let caValiditySeconds: Int64 = 3653 * 86_400
    /// 397 days: the longest leaf lifetime browsers and recent platforms accept, and legacy
    /// clients do not care.
    static let leafValiditySeconds: Int64 = 397 * 86_400
    /// Backdating by an hour absorbs clock skew between the bridge and the merchant's server.
    static let backdateSeconds: Int64 = 3600

    /// Creates a new CA in `directory` (created 0700 if missing). Refuses if `ca.pem` or `ca.key`
    /// already exists: merchants trust the existing CA, and replacing it would break them.
    ///
    /// RSA 3072 key, SHA-256, CN = `commonName`, basicConstraints critical CA:TRUE pathlen:0,
    /// keyUsage critical keyCertSign+cRLSign, subjectKeyIdentifier, valid 10 years from an hour ago.
    /// Blocks for a second or two while the key is generated.
    public static func create(directory: String, commonName: String = "tls-bridge local CA") throws(ConfigError) -> LocalCA {
        let key = "directory"
        guard !commonName.isEmpty, commonName.utf8.count <= 64, !commonName.contains("\n") else {
            throw ConfigError(key: "common_name", message: "\"\(commonName)\" cannot be a certificate CN: give 1 to 64 characters on one line")
        }
        let certPath = LocalCAFiles.join(directory, "ca.pem")
        let keyPath = LocalCAFiles.join(directory, "ca.key")
        for path in [certPath, keyPath] where LocalCAFiles.exists(path) {
            throw ConfigError(key: key, message: "\(path) already exists: refusing to overwrite a CA that merchants may trust."
                + " Issue certificates from it with `tls-bridge ca issue --ca \(directory) NAME`, or choose another directory for a new CA")
        }
        try LocalCAFiles.ensureDirectory(directory, key: key)
        _ = drainOpenSSLErrors()

        guard let caKey = tb_mint_rsa_key(caKeyBits) else {
            throw ConfigError(key: key, message: "OpenSSL could not generate an RSA key: \(drainOpenSSLErrors())")
        }
        let now = Int64(time(nil))
        guard let caCertificate = tb_mint_begin_certificate(caKey, commonName, nil, now - backdateSeconds,
                                                            now + caValiditySeconds) else {
            EVP_PKEY_free(caKey)
            throw ConfigError(key: "common_name", message: "OpenSSL could not start a certificate for \"\(commonName)\": \(drainOpenSSLErrors())")
        }
        let built = tb_mint_add_extension(caCertificate, nil, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") == 1
            && tb_mint_add_extension(caCertificate, nil, NID_key_usage, "critical,keyCertSign,cRLSign") == 1
            && tb_mint_add_extension(caCertificate, nil, NID_subject_key_identifier, "hash") == 1
            && tb_mint_sign(caCertificate, caKey, 0) == 1
        guard built else {
            X509_free(caCertificate)
            EVP_PKEY_free(caKey)
            throw ConfigError(key: key, message: "OpenSSL could not build the CA certificate: \(drainOpenSSLErrors())")
        }

        do throws(ConfigError) {
            // The key first and exclusively: if another `ca init` raced us, one of them fails here.
            try LocalCAFiles.createNew(keyPath, mode: 0o600, key: key) { fd in
                tb_mint_write_pem(fd, nil, nil, caKey) == 1
            }
            do {
                try LocalCAFiles.createNew(certPath, mode: 0o644, key: key) { fd in
                    tb_mint_write_pem(fd, caCertificate, nil, nil) == 1
                }
            } catch {
                unlink(keyPath)
                throw error
            }
        } catch {
            X509_free(caCertificate)
            EVP_PKEY_free(caKey)
            _ = drainOpenSSLErrors()
            throw error
        }
        return try LocalCA(certificate: caCertificate, privateKey: caKey, certKey: "ca_cert", keyKey: "ca_key",
                           certPath: certPath, keyPath: keyPath)
    }

    /// Loads an existing CA. `certKey`/`keyKey` are the config key names to put in errors (e.g.
    /// `listener[legacy].ca_cert`).
    ///
    /// Refuses: unreadable files, a certificate that is not a CA (no basicConstraints CA:TRUE, or a
    /// keyUsage without keyCertSign), an encrypted key or one that does not match the certificate,
    /// and an expired CA.
    public convenience init(certFile: String, keyFile: String, certKey: String = "ca_cert",
                            keyKey: String = "ca_key") throws(ConfigError) {
        _ = drainOpenSSLErrors()
        guard access(certFile, R_OK) == 0 else {
            throw ConfigError(key: certKey, message: "\(certFile) cannot be read (\(LocalCAFiles.errorText(errno)));"
                + " point it at the ca.pem that `tls-bridge ca init` made")
        }
        guard let certificate = tb_read_certificate(certFile) else {
            _ = drainOpenSSLErrors()
            throw ConfigError(key: certKey, message: "\(certFile) holds no PEM certificate; point it at the ca.pem that `tls-bridge ca init` made")
        }
        guard access(keyFile, R_OK) == 0 else {
            let reason = LocalCAFiles.errorText(errno)
            X509_free(certificate)
            throw ConfigError(key: keyKey, message: "\(keyFile) cannot be read (\(reason)); it must be readable by the bridge's user (and nobody else: mode 0600)")
        }
        guard let privateKey = tb_load_private_key(keyFile, nil) else {
            _ = drainOpenSSLErrors()
            X509_free(certificate)
            throw ConfigError(key: keyKey, message: "no unencrypted private key could be read from \(keyFile);"
                + " the CA key must be an unencrypted PEM key (as `tls-bridge ca init` writes it)")
        }
        try self.init(certificate: certificate, privateKey: privateKey, certKey: certKey, keyKey: keyKey,
                      certPath: certFile, keyPath: keyFile)
    }

    /// Takes ownership of `certificate` and `privateKey` (also when it throws) after checking that
    /// they make a usable CA.
    init(certificate: OpaquePointer, privateKey: OpaquePointer, certKey: String, keyKey: String,
         certPath: String, keyPath: String) throws(ConfigError) {
        var failure: ConfigError?
        var notBefore: Int64 = 0
        var notAfter: Int64 = 0
        var pem: String?
        if tb_mint_is_ca(certificate) != 1 {
            failure = ConfigError(key: certKey, message: "\(certPath) is not a CA certificate (it lacks basicConstraints CA:TRUE"
                + " or keyCertSign); point it at the ca.pem that `tls-bridge ca init` made")
        } else if X509_check_private_key(certificate, privateKey) != 1 {
            failure = ConfigError(key: keyKey, message: "the private key in \(keyPath) does not match the certificate in \(certPath);"
                + " use the ca.key from the same `tls-bridge ca init` directory")
        } else if tb_mint_certificate_times(certificate, &notBefore, &notAfter) != 1 {
            failure = ConfigError(key: certKey, message: "\(certPath) has an unreadable validity period")
        } else if notAfter <= Int64(time(nil)) {
            failure = ConfigError(key: certKey, message: "the CA in \(certPath) expired on \(LocalCAFiles.utcDescription(notAfter));"
                + " create a new one with `tls-bridge ca init` and have the merchant trust it")
        } else if let text = tb_mint_certificate_pem(certificate) {
            pem = String(cString: text)
            tb_mint_free_text(text)
        } else {
            failure = ConfigError(key: certKey, message: "\(certPath) could not be encoded as PEM: \(drainOpenSSLErrors())")
        }
        if let failure {
            _ = drainOpenSSLErrors()
            X509_free(certificate)
            EVP_PKEY_free(privateKey)
            throw failure
        }
        var name = [CChar](repeating: 0, count: 512)
        _ = tb_x509_name_rfc2253(X509_get_subject_name(certificate), &name, name.count)
        subject = string(fromBuffer: name)
        certificatePEM = pem ?? ""
        notAfterDescription = LocalCAFiles.utcDescription(notAfter)
        self.certificate = certificate
        self.privateKey = privateKey
        self.notBefore = notBefore
        self.notAfter = notAfter
        self.certKey = certKey
    }

    deinit {
        X509_free(certificate)
        EVP_PKEY_free(privateKey)
    }

    /// Issues a leaf for `names` (the first is also the CN; each is a DNS SAN, or an IP SAN for an IP
    /// literal): fresh RSA 2048 key, SHA-256 signature (SHA-1 with `legacySHA1: true`, only for
    /// clients that cannot verify SHA-256), serial of 16 random bytes, basicConstraints CA:FALSE,
    /// keyUsage digitalSignature+keyEncipherment, extendedKeyUsage serverAuth, SKI and AKI,
    /// valid from an hour ago (not before the CA) for 397 days (not after the CA).
    ///
    /// With `usage: .tlsClient` the leaf is a TLS client certificate instead: keyUsage
    /// digitalSignature and extendedKeyUsage clientAuth (what a TLS server checks in the certificate a
    /// client presents); everything else is the same. The bridge never needs one itself; it is for
    /// test set-ups such as `tls-bridge demo`, where a local gateway verifies a merchant certificate.
    ///
    /// Blocks while the key is generated; see the type's note on where to call it.
    public func issue(names: [String], legacySHA1: Bool = false,
                      usage: LeafUsage = .tlsServer) throws(ConfigError) -> IssuedCertificate {
        let names = try Self.validatedNames(names)
        let now = Int64(time(nil))
        let validFrom = max(now - Self.backdateSeconds, notBefore)
        let validUntil = min(now + Self.leafValiditySeconds, notAfter)
        guard validUntil > now else {
            throw ConfigError(key: certKey, message: "the CA expired on \(notAfterDescription); create a new one with `tls-bridge ca init`"
                + " and have the merchant trust it")
        }
        _ = drainOpenSSLErrors()
        guard let leafKey = tb_mint_rsa_key(Self.leafKeyBits) else {
            throw ConfigError(key: "names", message: "OpenSSL could not generate an RSA key: \(drainOpenSSLErrors())")
        }
        guard let leaf = tb_mint_begin_certificate(leafKey, names[0], X509_get_subject_name(certificate),
                                                   validFrom, validUntil) else {
            EVP_PKEY_free(leafKey)
            throw ConfigError(key: "names", message: "OpenSSL could not start a certificate for \(names[0]): \(drainOpenSSLErrors())")
        }
        // "keyid,issuer": the CA's key identifier, or its name and serial for a CA made elsewhere without one.
        var built = tb_mint_add_extension(leaf, certificate, NID_basic_constraints, "critical,CA:FALSE") == 1
            && tb_mint_add_extension(leaf, certificate, NID_key_usage, usage.keyUsage) == 1
            && tb_mint_add_extension(leaf, certificate, NID_ext_key_usage, usage.extendedKeyUsage) == 1
            && tb_mint_add_extension(leaf, certificate, NID_subject_key_identifier, "hash") == 1
            && tb_mint_add_extension(leaf, certificate, NID_authority_key_identifier, "keyid,issuer") == 1
            && tb_mint_add_subject_alt_names(leaf, names.joined(separator: "\n")) == 1
        if built {
            built = signing.withLock { _ in tb_mint_sign(leaf, privateKey, legacySHA1 ? 1 : 0) == 1 }
        }
        guard built, let chain = tb_mint_chain_of(certificate) else {
            let reason = drainOpenSSLErrors()
            X509_free(leaf)
            EVP_PKEY_free(leafKey)
            throw ConfigError(key: "names", message: "OpenSSL could not issue a certificate for \(names.joined(separator: ", ")): \(reason)")
        }
        return try IssuedCertificate(certificate: leaf, privateKey: leafKey, chain: chain, issuer: certificate,
                                     names: names, legacySHA1: legacySHA1)
    }

    /// What an issued leaf may be used for.
    public enum LeafUsage: Sendable {
        /// A TLS server certificate (extendedKeyUsage serverAuth): what the bridge presents.
        case tlsServer
        /// A TLS client certificate (extendedKeyUsage clientAuth), e.g. a stand-in merchant certificate.
        case tlsClient

        /// keyUsage in openssl.cnf notation.
        var keyUsage: String {
            switch self {
            case .tlsServer: "critical,digitalSignature,keyEncipherment"
            case .tlsClient: "critical,digitalSignature"
            }
        }

        /// extendedKeyUsage in openssl.cnf notation.
        var extendedKeyUsage: String {
            switch self {
            case .tlsServer: "serverAuth"
            case .tlsClient: "clientAuth"
            }
        }
    }

    /// Checks and de-duplicates the names for a leaf: each an IPv4/IPv6 literal or a DNS name
    /// (letters, digits, hyphens; a `*` label only first). The first name becomes the CN, which
    /// X.509 limits to 64 characters. Errors quote the name and say what is allowed.
    static func validatedNames(_ names: [String]) throws(ConfigError) -> [String] {
        var result: [String] = []
        for name in names where !result.contains(name) {
            if let problem = problem(withName: name) {
                throw ConfigError(key: "names", message: "\"\(name)\" \(problem)")
            }
            result.append(name)
        }
        guard let first = result.first else {
            throw ConfigError(key: "names", message: "no name given; name the host the merchant dials, e.g. sandbox.paygent.co.jp")
        }
        if first.utf8.count > 64 {
            throw ConfigError(key: "names", message: "\"\(first)\" is longer than 64 characters, so it cannot be the certificate's CN;"
                + " put a shorter name first (every name is in the subjectAltName)")
        }
        return result
    }

    /// Why `name` cannot go into a certificate, or `nil` when it can.
    private static func problem(withName name: String) -> String? {
        if isIPLiteral(name) { return nil }
        let invalid = "is not a DNS name or IP address: use letters, digits, hyphens and dots (and * as the whole first label)"
        guard !name.isEmpty, name.utf8.count <= 253 else { return invalid }
        let labels = name.split(separator: ".", omittingEmptySubsequences: false)
        for (index, label) in labels.enumerated() {
            if label == "*" {
                guard index == 0, labels.count >= 3 else {
                    return "has a wildcard that is not the first label of a name with at least three labels"
                }
                continue
            }
            guard (1...63).contains(label.utf8.count), label.first != "-", label.last != "-",
                  label.utf8.allSatisfy({ $0 == UInt8(ascii: "-") || (0x30...0x39).contains($0)
                      || (0x41...0x5a).contains($0) || (0x61...0x7a).contains($0) }) else {
                return invalid
            }
        }
        return nil
    }
}
