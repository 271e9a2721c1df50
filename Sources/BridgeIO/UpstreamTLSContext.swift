internal import COpenSSL
internal import CBridgeShims
public import BridgeModel
#if canImport(Glibc)
import Glibc
#endif

/// The TLS policy toward one upstream (the gateway), fixed at start-up: an `SSL_CTX` that verifies
/// the peer's chain and name, offers TLS 1.2 or newer with strong ciphers only, and presents the
/// merchant's client certificate when one is configured.
///
/// Built once per upstream on the main thread (loading files and keys blocks; never build one in
/// an event callback) and then shared read-only by every worker thread: OpenSSL allows `SSL_new`
/// on one context from many threads. It owns its `SSL_CTX` and frees it in `deinit`.
public final class UpstreamTLSContext: @unchecked Sendable {
    /// The validated configuration this context was built from.
    public let config: UpstreamConfig
    /// Subject of the client certificate, RFC 2253, when one is configured.
    public let clientCertificateSubject: String?
    /// Seconds until the client certificate expires (negative: expired), when one is configured.
    public let clientCertificateSecondsLeft: Int64?
    /// Seconds until the client certificate becomes valid (positive: not yet valid, e.g. a renewal
    /// installed early or a wrong system clock), when one is configured.
    public let clientCertificateSecondsUntilValid: Int64?
    /// The TLS 1.2 ciphers and TLS 1.3 suites this context offers, in preference order.
    public let offeredCiphers: [String]
    /// Is `verifiedName` an IP literal: then no SNI is sent and the certificate must carry the IP.
    public let nameIsIPLiteral: Bool

    let context: OpaquePointer

    /// The built-in TLS 1.2 cipher preference: forward-secret AEAD first, then the CBC suites some
    /// gateways still need. The exclusions are belt and braces: `TLSContextAudit` rejects a
    /// context that would offer anything weak regardless of where the string came from.
    public static let defaultCiphers =
        "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:ECDHE+AES:RSA+AESGCM:RSA+AES" +
        ":!aNULL:!eNULL:!MD5:!3DES:!DES:!RC4:!EXPORT:!PSK:!SRP:!DSS:!CAMELLIA:!ARIA:!SEED:!IDEA"

    /// Builds the context. Throws naming the key at fault: unreadable CA file, a client key that
    /// does not decrypt or does not match the certificate, a cipher string that matches nothing,
    /// would offer a weak cipher or lowers the security level below
    /// `UpstreamConfig.minimumSecurityLevel`.
    public init(_ config: UpstreamConfig) throws(ConfigError) {
        self.config = config
        let key = { (name: String) in "upstream[\(config.name)].\(name)" }
        _ = drainOpenSSLErrors()

        guard let context = SSL_CTX_new(TLS_client_method()) else {
            throw ConfigError(key: key("name"), message: "OpenSSL could not create a TLS context: \(drainOpenSSLErrors())")
        }
        self.context = context
        nameIsIPLiteral = isIPLiteral(config.verifiedName)

        // Protocol floor: never below TLS 1.2 toward the gateway, whatever openssl.cnf says.
        let floor = config.minVersion == .tls13 ? TLS1_3_VERSION : TLS1_2_VERSION
        guard tb_ssl_ctx_set_min_proto_version(context, floor) == 1,
              tb_ssl_ctx_set_max_proto_version(context, 0) == 1 else {
            SSL_CTX_free(context)
            throw ConfigError(key: key("min_version"), message: "OpenSSL refused the protocol floor: \(drainOpenSSLErrors())")
        }
        if SSL_CTX_get_security_level(context) < 2 {
            SSL_CTX_set_security_level(context, 2)
        }
        SSL_CTX_set_options(context, tb_ssl_op_no_compression() | tb_ssl_op_no_renegotiation())
        _ = tb_ssl_ctx_set1_groups_list(context, "X25519:P-256:P-384")
        SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nil)
        _ = tb_ssl_ctx_track_client_certificate(context)
        // Resumption makes most new sessions to the gateway skip the full handshake.
        _ = tb_ssl_ctx_enable_session_resumption(context)
        tb_ssl_ctx_release_buffers(context)

        do {
            try Self.applyCiphers(config, to: context, key: key)
            try Self.loadTrust(config, into: context, key: key)
            let identity = try Self.loadClientIdentity(config, into: context, key: key)
            clientCertificateSubject = identity.subject
            clientCertificateSecondsLeft = identity.secondsLeft
            clientCertificateSecondsUntilValid = identity.secondsUntilValid
            // Defence in depth: whatever the strings said, refuse a finished context that holds a
            // weak suite, runs below the upstream security level or accepts less than TLS 1.2.
            try TLSContextAudit.checkUpstream(context, key: key)
        } catch {
            SSL_CTX_free(context)
            throw error
        }
        offeredCiphers = (0..<tb_ssl_ctx_cipher_count(context)).compactMap { index in
            string(fromC: SSL_CIPHER_get_name(tb_ssl_ctx_cipher_at(context, index)))
        }
    }

    deinit {
        SSL_CTX_free(context)
    }

    /// A new `SSL` for one upstream connection, with SNI and the expected name set. The caller
    /// hands it to a bufferevent, which then owns it.
    func makeConnection() -> OpaquePointer? {
        guard let ssl = SSL_new(context) else { return nil }
        let name = config.verifiedName
        if nameIsIPLiteral {
            // No SNI for an IP literal (RFC 6066); the certificate must name the IP instead.
            X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name)
        } else {
            _ = tb_ssl_set_tlsext_host_name(ssl, name)
            SSL_set_hostflags(ssl, UInt32(X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS))
            guard SSL_set1_host(ssl, name) == 1 else {
                SSL_free(ssl)
                return nil
            }
        }
        _ = tb_ssl_offer_cached_session(ssl)
        return ssl
    }

    private static func applyCiphers(_ config: UpstreamConfig, to context: OpaquePointer,
                                     key: (String) -> String) throws(ConfigError) {
        let ciphers = config.ciphers ?? defaultCiphers
        guard SSL_CTX_set_cipher_list(context, ciphers) == 1 else {
            throw ConfigError(key: key("ciphers"),
                                message: "\"\(ciphers)\" matches no cipher this OpenSSL offers (\(drainOpenSSLErrors())); remove the key to use the default")
        }
        if let suites = config.ciphersuites, SSL_CTX_set_ciphersuites(context, suites) != 1 {
            throw ConfigError(key: key("ciphersuites"),
                                message: "\"\(suites)\" is not a valid TLS 1.3 suite list (\(drainOpenSSLErrors()))")
        }
    }

    private static func loadTrust(_ config: UpstreamConfig, into context: OpaquePointer,
                                  key: (String) -> String) throws(ConfigError) {
        guard let caFile = config.caFile else {
            guard SSL_CTX_set_default_verify_paths(context) == 1 else {
                throw ConfigError(key: key("ca_file"),
                                    message: "the system CA store could not be loaded (\(drainOpenSSLErrors())); install ca-certificates or set ca_file")
            }
            return
        }
        guard SSL_CTX_load_verify_file(context, caFile) == 1, tb_ssl_ctx_trusted_cert_count(context) > 0 else {
            let reason = drainOpenSSLErrors()
            throw ConfigError(key: key("ca_file"),
                                message: "\(caFile) holds no usable PEM certificate\(reason.isEmpty ? "" : " (\(reason))"); point it at the CA bundle that signed the gateway's certificate")
        }
    }

    private static func loadClientIdentity(_ config: UpstreamConfig, into context: OpaquePointer,
                                           key: (String) -> String) throws(ConfigError)
        -> (subject: String?, secondsLeft: Int64?, secondsUntilValid: Int64?) {
        guard let certFile = config.clientCert else { return (nil, nil, nil) }
        guard SSL_CTX_use_certificate_chain_file(context, certFile) == 1 else {
            throw ConfigError(key: key("client_cert"),
                                message: "\(certFile) holds no usable PEM certificate (\(drainOpenSSLErrors()))")
        }
        var password: [CChar]? = nil
        if let passwordFile = config.clientKeyPasswordFile {
            password = try readFirstLine(passwordFile, key: key("client_key_password_file"))
        }
        defer {
            if password != nil { password!.withUnsafeMutableBytes { tb_cleanse($0.baseAddress, $0.count) } }
        }
        let keyFile = config.clientKey ?? certFile
        let keyKey = key(config.clientKey == nil ? "client_cert" : "client_key")
        let privateKey: OpaquePointer? = password.map { tb_load_private_key(keyFile, $0) } ?? tb_load_private_key(keyFile, nil)
        guard let privateKey else {
            let reason = drainOpenSSLErrors()
            let hint = config.clientKeyPasswordFile == nil
                ? "if the key is encrypted, set client_key_password_file"
                : "check that client_key_password_file holds this key's passphrase"
            throw ConfigError(key: keyKey, message: "no private key could be read from \(keyFile) (\(reason)); \(hint)")
        }
        defer { EVP_PKEY_free(privateKey) }
        guard SSL_CTX_use_PrivateKey(context, privateKey) == 1, SSL_CTX_check_private_key(context) == 1 else {
            _ = drainOpenSSLErrors()
            throw ConfigError(key: keyKey, message: "the private key in \(keyFile) does not match the certificate in \(certFile)")
        }
        let leaf = SSL_CTX_get0_certificate(context)
        var subject = [CChar](repeating: 0, count: 512)
        let length = tb_x509_name_rfc2253(X509_get_subject_name(leaf), &subject, subject.count)
        var notBefore: Int64 = 0
        var notAfter: Int64 = 0
        let hasValidity = tb_certificate_validity(leaf, &notBefore, &notAfter) == 1
        return (length >= 0 ? string(fromBuffer: subject) : nil, hasValidity ? notAfter : nil,
                hasValidity ? notBefore : nil)
    }

    private static func readFirstLine(_ path: String, key: String) throws(ConfigError) -> [CChar] {
        guard let file = fopen(path, "r") else {
            throw ConfigError(key: key, message: "\(path) cannot be read (\(String(cString: strerror(errno))))")
        }
        defer { fclose(file) }
        var buffer = [CChar](repeating: 0, count: 1024)
        guard fgets(&buffer, Int32(buffer.count), file) != nil else {
            throw ConfigError(key: key, message: "\(path) is empty; it must hold the key's passphrase on its first line")
        }
        // Cut at the first line end so a trailing newline is not part of the passphrase.
        if let end = buffer.firstIndex(where: { $0 == 10 || $0 == 13 || $0 == 0 }) {
            for index in end..<buffer.count { buffer[index] = 0 }
        }
        return buffer
    }
}

/// Is this text an IPv4 or IPv6 literal?
func isIPLiteral(_ host: String) -> Bool {
    var v4 = in_addr()
    var v6 = in6_addr()
    return inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1
}
