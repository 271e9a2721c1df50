internal import COpenSSL
internal import CBridgeShims
public import BridgeModel

/// The TLS client policy toward one legacy backend: the merchant's own old server, reached over
/// TLS 1.0 or newer because it may know nothing better. Verified either by a CA bundle (and the
/// name in `server_name`) or by the pinned SHA-256 of its certificate, which the session checks
/// right after the handshake (`pinMatches`), before any byte of a notification is sent.
///
/// Never used toward the gateway: `UpstreamTLSContext` is that, and it has no legacy settings.
public final class BackendTLSContext: @unchecked Sendable {
    public let config: BackendConfig
    let context: OpaquePointer

    public init(_ config: BackendConfig) throws(ConfigError) {
        self.config = config
        let key = { (name: String) in "backend[\(config.name)].\(name)" }
        _ = drainOpenSSLErrors()
        guard let context = SSL_CTX_new(TLS_client_method()) else {
            throw ConfigError(key: key("tls"), message: "OpenSSL could not create a TLS context: \(drainOpenSSLErrors())")
        }
        self.context = context
        _ = tb_ssl_ctx_set_min_proto_version(context, DownstreamTLSContext.protocolNumber(config.minVersion))
        if config.minVersion < .tls12 {
            // An old server signs with SHA-1 and offers old suites: security level 0, on this
            // merchant-side context only.
            SSL_CTX_set_security_level(context, 0)
            _ = SSL_CTX_set_cipher_list(context, DownstreamTLSConfig.legacyCiphers)
        }
        SSL_CTX_set_options(context, tb_ssl_op_no_compression() | tb_ssl_op_no_renegotiation())
        if let caFile = config.caFile {
            guard SSL_CTX_load_verify_file(context, caFile) == 1, tb_ssl_ctx_trusted_cert_count(context) > 0 else {
                // Every stored property is set by now, so throwing runs `deinit`, which frees the
                // context: freeing it here as well was a double free (a crash instead of this error).
                throw ConfigError(key: key("ca_file"), message: "\(caFile) holds no usable PEM certificate (\(drainOpenSSLErrors()))")
            }
            SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nil)
        } else {
            // Pinned: any chain is accepted here; `pinMatches` decides on the exact certificate.
            tb_ssl_ctx_verify_server_by_pin(context)
        }
        // Defence in depth, as on every context: the built list must hold no forbidden suite.
        try TLSContextAudit.checkMerchantSide(context, key: key)
    }

    deinit {
        SSL_CTX_free(context)
    }

    func makeConnection() -> OpaquePointer? {
        guard let ssl = SSL_new(context) else { return nil }
        if let name = config.serverName {
            _ = tb_ssl_set_tlsext_host_name(ssl, name)
            if config.caFile != nil, SSL_set1_host(ssl, name) != 1 {
                SSL_free(ssl)
                return nil
            }
        }
        return ssl
    }

    /// With a pin configured: does the certificate the backend presented match it?
    public func pinMatches(_ details: TLSDetails?) -> Bool {
        guard let pin = config.pinSHA256 else { return true }
        return details?.peerFingerprint == pin
    }
}
