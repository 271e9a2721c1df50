internal import COpenSSL
internal import CBridgeShims
public import BridgeModel

/// The TLS policy toward the merchant on one `tls` listener: an `SSL_CTX` in server mode that
/// accepts the versions and ciphers the listener allows (down to TLS 1.0 with security level 0,
/// when and only when the listener asks for legacy), picks a certificate by SNI, refuses names the
/// listener does not route, and optionally requires the merchant's client certificate.
///
/// Built once at start-up (it loads files and may mint certificates: blocking work) and shared
/// read-only by all workers. Owns its `SSL_CTX` and identities.
public final class DownstreamTLSContext: @unchecked Sendable {
    /// The listener this context terminates TLS for.
    public let listener: ListenerConfig
    public let policy: DownstreamTLSConfig
    /// Identity per routed name (lowercased).
    public let identities: [String: ServerIdentity]
    /// Identity for clients without SNI or with an unrouted name (only used with a default route).
    public let defaultIdentity: ServerIdentity?
    /// The TLS ≤ 1.2 ciphers this listener can accept, as this OpenSSL build lists them.
    public let acceptedCiphers: [String]

    let context: OpaquePointer

    /// Builds the context. Throws naming the listener key at fault, including a cipher string that
    /// leaves a NULL, anonymous or otherwise forbidden suite in the built context.
    public init(listener: ListenerConfig) throws(ConfigError) {
        guard let policy = listener.tls else {
            throw ConfigError(key: "listener[\(listener.name)].accept", message: "is not \"tls\"")
        }
        self.listener = listener
        self.policy = policy
        let key = { (name: String) in "listener[\(listener.name)].\(name)" }
        _ = drainOpenSSLErrors()
        guard let context = SSL_CTX_new(TLS_server_method()) else {
            throw ConfigError(key: key("accept"), message: "OpenSSL could not create a TLS context: \(drainOpenSSLErrors())")
        }
        self.context = context
        do throws(ConfigError) {
            try Self.applyProtocolPolicy(policy, to: context, key: key)
            (identities, defaultIdentity) = try Self.loadIdentities(listener, policy: policy, key: key)
            if let defaultIdentity, !defaultIdentity.install(onContext: context) {
                throw ConfigError(key: key("cert"), message: "OpenSSL refused the certificate: \(drainOpenSSLErrors())")
            }
            try Self.applyClientAuthentication(policy, listenerName: listener.name, to: context, key: key)
            // Defence in depth: whatever the strings said, a merchant may never get a NULL,
            // anonymous, export, RC4, 3DES or MD5 suite (security level 0 stays allowed for legacy).
            try TLSContextAudit.checkMerchantSide(context, key: key)
        } catch {
            SSL_CTX_free(context)
            throw error
        }
        acceptedCiphers = (0..<tb_ssl_ctx_cipher_count(context)).compactMap { index in
            string(fromC: SSL_CIPHER_get_name(tb_ssl_ctx_cipher_at(context, index)))
        }
        _ = tb_ssl_ctx_observe_client_hello(context)
        // Behind CONNECT the certificate follows the CONNECT target, set per connection
        // (`makeConnection(forHost:)`), not the SNI.
        guard listener.accept == .tls else { return }
        _ = tb_ssl_ctx_set_servername_callback(context, { ssl, alert, argument in
            guard let ssl, let argument else { return SSL_TLSEXT_ERR_ALERT_FATAL }
            let owner = Unmanaged<DownstreamTLSContext>.fromOpaque(argument).takeUnretainedValue()
            return owner.selectIdentity(for: ssl, alert: alert)
        }, Unmanaged.passUnretained(self).toOpaque())
    }

    deinit {
        SSL_CTX_free(context)
    }

    /// A new `SSL` for one accepted connection; the bufferevent that gets it owns it.
    func makeConnection() -> OpaquePointer? {
        SSL_new(context)
    }

    /// A new `SSL` presenting the identity for `host` (a CONNECT target), or nil when the listener
    /// has none for it (it is not routed).
    func makeConnection(forHost host: String) -> OpaquePointer? {
        guard let identity = identities[host.lowercased()], let ssl = SSL_new(context) else { return nil }
        guard identity.install(on: ssl) else {
            SSL_free(ssl)
            return nil
        }
        return ssl
    }

    /// Runs inside the handshake, on the worker's thread: present the routed name's certificate,
    /// or the default one, or refuse with `unrecognized_name` when the listener has no route.
    private func selectIdentity(for ssl: OpaquePointer, alert: UnsafeMutablePointer<Int32>?) -> Int32 {
        let name = string(fromC: SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name))?.lowercased()
        if let name, let identity = identities[name] {
            return identity.install(on: ssl) ? SSL_TLSEXT_ERR_OK : SSL_TLSEXT_ERR_ALERT_FATAL
        }
        guard listener.hasDefaultRoute, let defaultIdentity else {
            alert?.pointee = Int32(SSL_AD_UNRECOGNIZED_NAME)
            return SSL_TLSEXT_ERR_ALERT_FATAL
        }
        return defaultIdentity.install(on: ssl) ? SSL_TLSEXT_ERR_OK : SSL_TLSEXT_ERR_ALERT_FATAL
    }

    private static func applyProtocolPolicy(_ policy: DownstreamTLSConfig, to context: OpaquePointer,
                                            key: (String) -> String) throws(ConfigError) {
        guard tb_ssl_ctx_set_min_proto_version(context, protocolNumber(policy.minVersion)) == 1,
              tb_ssl_ctx_set_max_proto_version(context, policy.maxVersion.map(protocolNumber) ?? 0) == 1 else {
            throw ConfigError(key: key("min_version"), message: "OpenSSL refused the version range: \(drainOpenSSLErrors())")
        }
        // TLS 1.0/1.1 sign handshakes with SHA-1, which OpenSSL 3 forbids above security level 0.
        // This is the only context in the bridge that may go there, and only for a legacy listener.
        if policy.isLegacy {
            SSL_CTX_set_security_level(context, 0)
        }
        SSL_CTX_set_options(context, tb_ssl_op_no_compression() | tb_ssl_op_no_renegotiation()
            | tb_ssl_op_cipher_server_preference())
        _ = tb_ssl_ctx_set_dh_auto(context)
        tb_ssl_ctx_release_buffers(context)
        let ciphers = policy.effectiveCiphers
        if SSL_CTX_set_cipher_list(context, ciphers) != 1 {
            throw ConfigError(key: key("ciphers"),
                              message: "\"\(ciphers)\" matches no cipher this OpenSSL offers (\(drainOpenSSLErrors()))")
        }
        if let suites = policy.ciphersuites, SSL_CTX_set_ciphersuites(context, suites) != 1 {
            throw ConfigError(key: key("ciphersuites"), message: "\"\(suites)\" is not a valid TLS 1.3 suite list (\(drainOpenSSLErrors()))")
        }
    }

    private static func loadIdentities(_ listener: ListenerConfig, policy: DownstreamTLSConfig,
                                       key: (String) -> String) throws(ConfigError) -> ([String: ServerIdentity], ServerIdentity?) {
        var staticIdentity: ServerIdentity?
        if let files = policy.identity {
            staticIdentity = try ServerIdentity(files: files, certKey: key("cert"), keyKey: key("key"))
        }
        var authority: LocalCA?
        if let ca = policy.localCA {
            authority = try LocalCA(certFile: ca.cert, keyFile: ca.key ?? ca.cert, certKey: key("ca_cert"), keyKey: key("ca_key"))
        }
        var identities: [String: ServerIdentity] = [:]
        // Minted before the first connection, for exactly the routed names: a handshake never
        // waits for RSA key generation, and no other name can ever get a certificate.
        for name in listener.routedHosts {
            if let files = policy.certificates[name] {
                identities[name] = try ServerIdentity(files: files, certKey: key("certificates.\(name).cert"),
                                                      keyKey: key("certificates.\(name).key"))
            } else if let authority {
                identities[name] = ServerIdentity(issued: try mint([name], with: authority, key: key("routes.\(name)")))
            } else {
                identities[name] = staticIdentity
            }
        }
        var defaultIdentity = staticIdentity
        if defaultIdentity == nil, listener.accept == .tls, let authority, !listener.routes.isEmpty {
            defaultIdentity = ServerIdentity(issued: try mint(listener.routedHosts, with: authority, key: key("routes")))
        }
        return (identities, defaultIdentity)
    }

    /// Mints a leaf; a name the CA cannot put in a certificate is reported at the route's key.
    private static func mint(_ names: [String], with authority: LocalCA, key: String) throws(ConfigError) -> IssuedCertificate {
        do {
            return try authority.issue(names: names)
        } catch where error.key == "names" {
            throw ConfigError(key: key, message: error.message)
        }
    }

    private static func applyClientAuthentication(_ policy: DownstreamTLSConfig, listenerName: String,
                                                  to context: OpaquePointer, key: (String) -> String) throws(ConfigError) {
        // Server-side session caching needs an id context once peers are verified.
        let sessionContext = Array("tls-bridge/\(listenerName)".utf8.prefix(32))
        _ = SSL_CTX_set_session_id_context(context, sessionContext, UInt32(sessionContext.count))
        guard policy.requireClientCert else { return }
        if let clientCA = policy.clientCA {
            guard SSL_CTX_load_verify_file(context, clientCA) == 1, tb_ssl_ctx_trusted_cert_count(context) > 0,
                  let names = SSL_load_client_CA_file(clientCA) else {
                throw ConfigError(key: key("client_ca"), message: "\(clientCA) holds no usable PEM certificate (\(drainOpenSSLErrors()))")
            }
            SSL_CTX_set_client_CA_list(context, names)
        }
        // With fingerprints only, any chain is accepted here and the fingerprint decides after the
        // handshake, before any upstream connection.
        tb_ssl_ctx_verify_client(context, policy.clientCA == nil ? 1 : 0)
    }

    /// OpenSSL's number for a configured version.
    public static func protocolNumber(_ version: TLSVersion) -> Int32 {
        switch version {
        case .tls10: TLS1_VERSION
        case .tls11: TLS1_1_VERSION
        case .tls12: TLS1_2_VERSION
        case .tls13: TLS1_3_VERSION
        }
    }
}
