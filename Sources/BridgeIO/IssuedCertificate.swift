internal import COpenSSL
internal import CBridgeShims
public import BridgeModel
#if canImport(Glibc)
import Glibc
#endif

/// A certificate the local CA issued, with its private key, held in memory.
///
/// It owns its `X509`, its `EVP_PKEY` and the chain stack (which holds its own reference to the CA
/// certificate), and frees them in `deinit`; the TLS listener hands them to `SSL_use_cert_and_key`,
/// which takes references of its own. Immutable after init, so it may be shared between threads.
public final class IssuedCertificate: @unchecked Sendable {
    /// `X509*`: the leaf.
    let certificate: OpaquePointer
    /// `EVP_PKEY*`: the leaf's private key.
    let privateKey: OpaquePointer
    /// `STACK_OF(X509)*` holding the CA certificate, sent after the leaf so that clients which
    /// trust the CA find the issuer in the handshake; `nil` when there is none.
    let chain: OpaquePointer?
    /// The CA certificate the chain holds (not separately owned: the chain keeps it alive).
    private let issuer: OpaquePointer?

    /// The names the certificate is valid for, in order; the first is also its CN.
    public let names: [String]
    /// The leaf certificate alone, as PEM.
    public let certificatePEM: String
    /// When the certificate stops being valid, e.g. `2027-12-29 12:00:00 UTC`.
    public let notAfterDescription: String
    /// Is the signature SHA-1 (for legacy clients that cannot verify SHA-256)?
    public let isLegacySHA1: Bool

    /// Takes ownership of `certificate`, `privateKey` and `chain`, also when it throws.
    init(certificate: OpaquePointer, privateKey: OpaquePointer, chain: OpaquePointer?, issuer: OpaquePointer?,
         names: [String], legacySHA1: Bool) throws(ConfigError) {
        guard let text = tb_mint_certificate_pem(certificate) else {
            X509_free(certificate)
            EVP_PKEY_free(privateKey)
            if let chain { tb_mint_chain_free(chain) }
            throw ConfigError(key: "names", message: "the issued certificate could not be encoded: \(drainOpenSSLErrors())")
        }
        certificatePEM = String(cString: text)
        tb_mint_free_text(text)
        var notBefore: Int64 = 0
        var notAfter: Int64 = 0
        _ = tb_mint_certificate_times(certificate, &notBefore, &notAfter)
        notAfterDescription = LocalCAFiles.utcDescription(notAfter)
        self.certificate = certificate
        self.privateKey = privateKey
        self.chain = chain
        self.issuer = issuer
        self.names = names
        isLegacySHA1 = legacySHA1
    }

    deinit {
        X509_free(certificate)
        EVP_PKEY_free(privateKey)
        if let chain { tb_mint_chain_free(chain) }
    }

    /// The private key as unencrypted PEM (PKCS#8). Key material: write it only to a 0600 file,
    /// never to a log. Each call makes a new copy.
    public var privateKeyPEM: String {
        guard let text = tb_mint_private_key_pem(privateKey) else { return "" }
        defer { tb_mint_free_text(text) }
        return String(cString: text)
    }

    /// Writes the certificate followed by the CA certificate to `certificatePath` (0644) and the
    /// private key to `keyPath` (0600), replacing files already there (a renewal). Both are written
    /// in full beside their targets before either is renamed into place, so a failure leaves the old
    /// pair intact and a reader never sees a torn file. The key goes to disk straight from OpenSSL,
    /// without a Swift copy. Blocks on file I/O.
    public func write(certificatePath: String, keyPath: String) throws(ConfigError) {
        defer { _ = drainOpenSSLErrors() }
        let stagedKey = try LocalCAFiles.stage(keyPath, mode: 0o600, key: "key") { fd in
            tb_mint_write_pem(fd, nil, nil, privateKey) == 1
        }
        let stagedCertificate: String
        do {
            stagedCertificate = try LocalCAFiles.stage(certificatePath, mode: 0o644, key: "cert") { fd in
                tb_mint_write_pem(fd, certificate, issuer, nil) == 1
            }
        } catch {
            unlink(stagedKey)
            throw error
        }
        do {
            try LocalCAFiles.commit(stagedKey, to: keyPath, key: "key")
        } catch {
            unlink(stagedCertificate)
            throw error
        }
        try LocalCAFiles.commit(stagedCertificate, to: certificatePath, key: "cert")
    }
}
