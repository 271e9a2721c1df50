internal import COpenSSL
internal import CBridgeShims
#if canImport(Glibc)
import Glibc
#endif

/// What one TLS connection negotiated and verified, read from its `SSL` for the session record.
/// Holds no key material.
public struct TLSDetails: Sendable {
    /// e.g. "TLSv1.2"; nil before the handshake completes.
    public var protocolVersion: String?
    /// OpenSSL's cipher name; nil before the handshake completes.
    public var cipher: String?
    /// Whether an earlier session was resumed.
    public var resumed: Bool
    /// Subject and issuer of the peer's certificate (RFC 2253), also when its verification failed.
    public var peerSubject: String?
    public var peerIssuer: String?
    /// "ok", OpenSSL's reason for a failed verification, or nil when no certificate was checked.
    public var verification: String?
    /// Whether this side sent a (non-empty) certificate.
    public var sentCertificate: Bool
    /// Whether the peer (a server) asked this side for a certificate.
    public var certificateRequested: Bool
    /// Seconds until the peer certificate's notAfter (negative: expired).
    public var peerSecondsLeft: Int64?
    /// The peer certificate's notAfter as Unix time (seconds), read with `peerSecondsLeft`.
    public var peerExpiresAt: Int64?
    /// The SNI name: what the client sent (server side) or asked for (client side).
    public var serverName: String?
    /// SHA-256 of the peer's certificate, 64 upper-case hex digits.
    public var peerFingerprint: String?

    init(ssl: OpaquePointer) {
        let finished = SSL_is_init_finished(ssl) == 1
        protocolVersion = finished ? string(fromC: SSL_get_version(ssl)) : nil
        cipher = finished ? string(fromC: SSL_CIPHER_get_name(SSL_get_current_cipher(ssl))) : nil
        resumed = finished && SSL_session_reused(ssl) == 1
        let leaf = tb_ssl_peer_leaf_unverified(ssl)
        peerSubject = leaf.flatMap { rfc2253(X509_get_subject_name($0)) }
        peerIssuer = leaf.flatMap { rfc2253(X509_get_issuer_name($0)) }
        let result = SSL_get_verify_result(ssl)
        if result != X509_V_OK {
            verification = string(fromC: X509_verify_cert_error_string(result))
        } else {
            verification = finished ? "ok" : nil
        }
        sentCertificate = tb_ssl_sent_client_certificate(ssl) == 1
        certificateRequested = tb_ssl_received_certificate_request(ssl) == 1
        var notBefore: Int64 = 0
        var notAfter: Int64 = 0
        peerSecondsLeft = leaf.flatMap { tb_certificate_validity($0, &notBefore, &notAfter) == 1 ? notAfter : nil }
        peerExpiresAt = peerSecondsLeft.map { Int64(time(nil)) + $0 }
        serverName = string(fromC: SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name))
        var hex = [CChar](repeating: 0, count: 65)
        peerFingerprint = leaf.flatMap { tb_x509_sha256_hex($0, &hex) == 1 ? string(fromBuffer: hex) : nil }
    }
}

/// An X.509 name as an RFC 2253 string.
func rfc2253(_ name: OpaquePointer?) -> String? {
    guard let name else { return nil }
    var buffer = [CChar](repeating: 0, count: 1024)
    guard tb_x509_name_rfc2253(name, &buffer, buffer.count) >= 0 else { return nil }
    return string(fromBuffer: buffer)
}
