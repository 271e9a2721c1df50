internal import COpenSSL
internal import CBridgeShims
internal import BridgeModel

/// Reads a finished `SSL_CTX` back from OpenSSL — the suites it really holds, its security level,
/// its protocol floor — and refuses what its side of the bridge may never have, however the
/// cipher string that produced it was written.
///
/// The config loader's text check (`CipherPolicy`) reads strings the way OpenSSL 3.0 does; this is
/// the guarantee behind it, for what a text check cannot see: aliases that expand to anonymous
/// suites (`ALL`, `HIGH`), separators or syntax another OpenSSL version reads differently, and
/// strings that never went through the loader. Every context runs it once, at the end of its
/// `init` (start-up or reload, never on a loop thread).
enum TLSContextAudit {
    /// Why a suite may never be negotiated on any side of the bridge.
    enum Flaw: String, Equatable {
        case noEncryption = "no encryption"
        case noAuthentication = "no authentication"
        case brokenCipher = "DES, 3DES, RC2 or RC4"
        case md5MAC = "an MD5 MAC"
        case shortKey = "keys under 128 bits"
    }

    /// One forbidden suite in a context's list.
    struct Suite {
        let name: String
        let flaw: Flaw
        /// A TLS 1.3 suite (set by `ciphersuites`, not by `ciphers`).
        let isTLS13: Bool
    }

    /// What is wrong with `cipher`, or nil when any side may use it.
    static func flaw(of cipher: OpaquePointer) -> Flaw? {
        switch SSL_CIPHER_get_cipher_nid(cipher) {
        case NID_undef: return .noEncryption
        case NID_des_cbc, NID_des_ede3_cbc, NID_rc2_cbc, NID_rc2_40_cbc, NID_rc4, NID_rc4_40: return .brokenCipher
        default: break
        }
        if SSL_CIPHER_get_auth_nid(cipher) == NID_auth_null { return .noAuthentication }
        if SSL_CIPHER_get_digest_nid(cipher) == NID_md5 { return .md5MAC }
        // Export grades and single DES, under whatever name a library gives them.
        if SSL_CIPHER_get_bits(cipher, nil) < 128 { return .shortKey }
        return nil
    }

    /// Every suite in the context's list (TLS 1.2 and TLS 1.3) that no side may negotiate, in order.
    static func forbiddenSuites(in context: OpaquePointer) -> [Suite] {
        (0..<tb_ssl_ctx_cipher_count(context)).compactMap { index in
            guard let cipher = tb_ssl_ctx_cipher_at(context, index), let flaw = flaw(of: cipher) else { return nil }
            return Suite(name: string(fromC: SSL_CIPHER_get_name(cipher)) ?? "?", flaw: flaw,
                         isTLS13: SSL_CIPHER_get_kx_nid(cipher) == NID_kx_any)
        }
    }

    /// The upstream (gateway) side: no forbidden suite, security level at least
    /// `UpstreamConfig.minimumSecurityLevel`, nothing below TLS 1.2. `key` makes a config key from a
    /// field name (`ciphers` → `upstream[NAME].ciphers`).
    static func checkUpstream(_ context: OpaquePointer, key: (String) -> String) throws(ConfigError) {
        try refuseForbiddenSuites(in: context, side: "upstream", key: key)
        let level = Int(SSL_CTX_get_security_level(context))
        if level < UpstreamConfig.minimumSecurityLevel {
            throw ConfigError(key: key("ciphers"), message: "the upstream TLS context built from it runs at OpenSSL security level \(level);"
                + " the gateway side needs at least \(UpstreamConfig.minimumSecurityLevel) (no RSA keys under 2048 bits,"
                + " no SHA-1 signatures): remove the @SECLEVEL directive")
        }
        let floor = tb_ssl_ctx_get_min_proto_version(context)
        if floor < TLS1_2_VERSION {
            throw ConfigError(key: key("min_version"), message: "the upstream context would accept versions below TLS 1.2"
                + " (OpenSSL floor \(floor == 0 ? "none" : "0x" + String(floor, radix: 16))); the gateway side never goes below TLS 1.2")
        }
    }

    /// The merchant's side (a `tls` or `http-proxy` listener, a legacy backend): security level 0 is
    /// allowed there for TLS 1.0/1.1, forbidden suites never.
    static func checkMerchantSide(_ context: OpaquePointer, key: (String) -> String) throws(ConfigError) {
        try refuseForbiddenSuites(in: context, side: "merchant-side", key: key)
    }

    private static func refuseForbiddenSuites(in context: OpaquePointer, side: String,
                                              key: (String) -> String) throws(ConfigError) {
        let found = forbiddenSuites(in: context)
        guard let first = found.first else { return }
        // Grouped by flaw, in list order, a few names each: `ALL` alone brings a dozen anonymous suites.
        var flaws: [Flaw] = []
        for suite in found where !flaws.contains(suite.flaw) { flaws.append(suite.flaw) }
        let groups = flaws.map { flaw in
            let names = found.filter { $0.flaw == flaw }.map(\.name)
            let shown = names.prefix(3).joined(separator: ", ") + (names.count > 3 ? ", …" : "")
            return "\(names.count) with \(flaw.rawValue) (\(shown))"
        }
        throw ConfigError(key: key(first.isTLS13 ? "ciphersuites" : "ciphers"),
                          message: "the \(side) TLS context built from it holds suites no side of the bridge may use: "
                            + groups.joined(separator: "; ")
                            + "; exclude them (e.g. add :!aNULL:!eNULL) or remove the key to use the default")
    }
}
