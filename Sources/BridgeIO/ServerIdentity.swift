internal import COpenSSL
internal import CBridgeShims
public import BridgeModel

/// A certificate, its chain and its private key, presented by a TLS listener for one or more names.
///
/// Owns one reference to each OpenSSL object and frees them in `deinit`; `SSL_use_cert_and_key`
/// takes its own references, so one identity can serve any number of connections on any thread.
public final class ServerIdentity: @unchecked Sendable {
    let certificate: OpaquePointer
    let privateKey: OpaquePointer
    let chain: OpaquePointer?
    /// RFC 2253 subject, for `check` output.
    public let subject: String
    /// Seconds until notAfter (negative: expired).
    public let secondsLeft: Int64

    /// Loads `files` (the key may sit in the certificate file). `key` prefixes error keys, e.g.
    /// `listener[legacy]` → `listener[legacy].cert`.
    public convenience init(files: CertificateFiles, certKey: String, keyKey: String) throws(ConfigError) {
        _ = drainOpenSSLErrors()
        var leaf: OpaquePointer?
        guard let chain = tb_load_certificate_chain(files.cert, &leaf), let leaf else {
            throw ConfigError(key: certKey, message: "\(files.cert) holds no PEM certificate")
        }
        let keyFile = files.key ?? files.cert
        guard let privateKey = tb_load_private_key(keyFile, nil) else {
            X509_free(leaf)
            tb_free_certificate_chain(chain)
            let reason = drainOpenSSLErrors()
            throw ConfigError(key: files.key == nil ? certKey : keyKey,
                              message: "no unencrypted private key could be read from \(keyFile) (\(reason))")
        }
        guard X509_check_private_key(leaf, privateKey) == 1 else {
            _ = drainOpenSSLErrors()
            X509_free(leaf)
            EVP_PKEY_free(privateKey)
            tb_free_certificate_chain(chain)
            throw ConfigError(key: files.key == nil ? certKey : keyKey,
                              message: "the private key in \(keyFile) does not match the certificate in \(files.cert)")
        }
        self.init(owningCertificate: leaf, privateKey: privateKey, chain: chain)
    }

    /// Takes a minted certificate (adds references; the `IssuedCertificate` keeps its own).
    convenience init(issued: IssuedCertificate) {
        X509_up_ref(issued.certificate)
        EVP_PKEY_up_ref(issued.privateKey)
        self.init(owningCertificate: issued.certificate, privateKey: issued.privateKey,
                  chain: issued.chain.map { X509_chain_up_ref($0) } ?? nil)
    }

    /// Takes ownership of one reference to each object.
    init(owningCertificate certificate: OpaquePointer, privateKey: OpaquePointer, chain: OpaquePointer?) {
        self.certificate = certificate
        self.privateKey = privateKey
        self.chain = chain
        subject = rfc2253(X509_get_subject_name(certificate)) ?? "?"
        var notBefore: Int64 = 0
        var notAfter: Int64 = 0
        _ = tb_certificate_validity(certificate, &notBefore, &notAfter)
        secondsLeft = notAfter
    }

    deinit {
        X509_free(certificate)
        EVP_PKEY_free(privateKey)
        tb_free_certificate_chain(chain)
    }

    /// Makes `ssl` present this identity.
    func install(on ssl: OpaquePointer) -> Bool {
        SSL_use_cert_and_key(ssl, certificate, privateKey, chain, 1) == 1
    }

    /// Makes every connection of `context` present this identity unless told otherwise.
    func install(onContext context: OpaquePointer) -> Bool {
        SSL_CTX_use_cert_and_key(context, certificate, privateKey, chain, 1) == 1
    }
}
