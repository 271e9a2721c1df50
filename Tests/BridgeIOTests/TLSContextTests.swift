import BridgeModel
import CBridgeShims
import COpenSSL
import Testing
@testable import BridgeIO

/// The upstream TLS context enforces the floor itself, whatever reached it.
@Suite struct UpstreamTLSContextTests {
    private func upstream(ciphers: String? = nil, minVersion: UpstreamTLSVersion = .tls12) -> UpstreamConfig {
        UpstreamConfig(name: "gw", address: HostPort(host: "gateway.example", port: 443),
                       minVersion: minVersion, ciphers: ciphers)
    }

    @Test func defaultContextOffersNoWeakCipher() throws {
        let context = try UpstreamTLSContext(upstream())
        #expect(!context.offeredCiphers.isEmpty)
        for name in context.offeredCiphers {
            #expect(!name.contains("DES") && !name.contains("RC4") && !name.contains("NULL") && !name.contains("MD5"), "\(name)")
        }
    }

    @Test func cipherStringThatWouldOfferNullEncryptionIsRefusedNamingTheKey() {
        #expect {
            _ = try UpstreamTLSContext(upstream(ciphers: "eNULL:@SECLEVEL=0"))
        } throws: { error in
            (error as? ConfigError)?.key == "upstream[gw].ciphers"
        }
    }

    @Test func cipherStringMatchingNothingIsRefusedNamingTheKey() {
        #expect {
            _ = try UpstreamTLSContext(upstream(ciphers: "DES-CBC3-SHA"))
        } throws: { error in
            (error as? ConfigError)?.key == "upstream[gw].ciphers"
        }
    }

    @Test func missingCAFileIsRefusedNamingTheKey() {
        var config = upstream()
        config.caFile = "/nonexistent/ca.pem"
        #expect {
            _ = try UpstreamTLSContext(config)
        } throws: { error in
            (error as? ConfigError)?.key == "upstream[gw].ca_file"
        }
    }

    /// /dev/null: a file that exists and reads fine but holds no certificate (an unfilled bundle).
    @Test func caFileWithoutCertificatesIsRefusedNamingTheKey() {
        var config = upstream()
        config.caFile = "/dev/null"
        #expect {
            _ = try UpstreamTLSContext(config)
        } throws: { error in
            (error as? ConfigError)?.key == "upstream[gw].ca_file"
        }
    }

    @Test func ipLiteralUpstreamSendsNoSNI() throws {
        var config = upstream()
        config.address = HostPort(host: "127.0.0.1", port: 443)
        #expect(try UpstreamTLSContext(config).nameIsIPLiteral)
        #expect(try !UpstreamTLSContext(upstream()).nameIsIPLiteral)
    }
}

/// A legacy backend's CA file is checked like the gateway's.
@Suite struct BackendTLSContextTests {
    /// Also a regression test: this refusal used to free the context twice (once here, once in
    /// `deinit`) and abort the process instead of reporting the key.
    @Test func caFileWithoutCertificatesIsRefusedNamingTheKey() {
        let config = BackendConfig(name: "web", address: HostPort(host: "127.0.0.1", port: 8443), tls: .legacy,
                                   caFile: "/dev/null", serverName: "merchant.local")
        #expect {
            _ = try BackendTLSContext(config)
        } throws: { error in
            (error as? ConfigError)?.key == "backend[web].ca_file"
        }
    }
}

/// Defence in depth: each TLS context reads back the cipher list and security level OpenSSL really
/// built and refuses what its side may never have, whatever string produced it. The configs here
/// are made directly, so the config loader's string check never sees them.
@Suite struct BuiltContextPolicyTests {
    private func upstream(ciphers: String) -> UpstreamConfig {
        UpstreamConfig(name: "gw", address: HostPort(host: "gateway.example", port: 443), ciphers: ciphers)
    }

    private func legacyListener(ciphers: String?) -> ListenerConfig {
        ListenerConfig(name: "legacy", listen: HostPort(host: "127.0.0.1", port: 8443), accept: .tls, upstream: nil,
                       tls: DownstreamTLSConfig(minVersion: .tls10, ciphers: ciphers))
    }

    /// The key of the `ConfigError` `body` throws, or nil when it throws nothing (or something else).
    private func thrownKey(_ body: () throws -> Void) -> String? {
        do {
            try body()
            return nil
        } catch {
            return (error as? ConfigError)?.key
        }
    }

    /// A bare client context with `ciphers` applied and nothing else: what a context would hold if
    /// every string check were bypassed.
    private func rawContext(ciphers: String) throws -> OpaquePointer {
        let context = try #require(SSL_CTX_new(TLS_client_method()))
        #expect(SSL_CTX_set_cipher_list(context, ciphers) == 1)
        return context
    }

    @Test("upstream: a semicolon-separated @SECLEVEL=0 is refused at the ciphers key", arguments: [
        "ECDHE+AESGCM;@SECLEVEL=0", "ECDHE+AESGCM@SECLEVEL=0", "ECDHE+AESGCM:@SECLEVEL=1",
    ])
    func upstreamLowSecurityLevelRefused(ciphers: String) {
        #expect(thrownKey { _ = try UpstreamTLSContext(upstream(ciphers: ciphers)) } == "upstream[gw].ciphers")
    }

    @Test("upstream: NULL and anonymous suites are refused at the ciphers key", arguments: [
        "ECDHE+AESGCM;eNULL", "ECDHE+AESGCM;aNULL", "AECDH-NULL-SHA;ECDHE+AESGCM",
    ])
    func upstreamNullAndAnonymousRefused(ciphers: String) {
        #expect(thrownKey { _ = try UpstreamTLSContext(upstream(ciphers: ciphers)) } == "upstream[gw].ciphers")
    }

    @Test("upstream: the default and a strong semicolon-separated string build")
    func upstreamStrongStringsBuild() throws {
        _ = try UpstreamTLSContext(UpstreamConfig(name: "gw", address: HostPort(host: "gateway.example", port: 443)))
        _ = try UpstreamTLSContext(upstream(ciphers: "ECDHE+AESGCM;ECDHE+CHACHA20;@SECLEVEL=2"))
    }

    @Test("a legacy listener: NULL and anonymous suites are refused at the ciphers key", arguments: [
        "eNULL;aNULL;DEFAULT:@SECLEVEL=0", "AES128-SHA:@SECLEVEL=0;NULL-SHA256", "AECDH-NULL-SHA;DEFAULT",
        "ALL:@SECLEVEL=0", "AES128-SHA:MD5:@SECLEVEL=0",
    ])
    func listenerNullAndAnonymousRefused(ciphers: String) {
        #expect(thrownKey { _ = try DownstreamTLSContext(listener: legacyListener(ciphers: ciphers)) } == "listener[legacy].ciphers")
    }

    @Test("a legacy listener still builds at security level 0 with its default and legacy strings", arguments: [
        nil, "DEFAULT:@SECLEVEL=0", "DEFAULT;@SECLEVEL=0", "AES128-SHA:@SECLEVEL=0",
    ] as [String?])
    func legacyListenerBuilds(ciphers: String?) throws {
        let context = try DownstreamTLSContext(listener: legacyListener(ciphers: ciphers))
        #expect(SSL_CTX_get_security_level(context.context) == 0)
        #expect(!context.acceptedCiphers.contains { $0.contains("NULL") || $0.hasPrefix("ADH") || $0.hasPrefix("AECDH") })
    }

    @Test("a legacy backend's context passes its own check")
    func legacyBackendBuilds() throws {
        let config = BackendConfig(name: "web", address: HostPort(host: "127.0.0.1", port: 8443), tls: .legacy,
                                   pinSHA256: String(repeating: "A", count: 64))
        _ = try BackendTLSContext(config)
    }

    @Test("every side's check refuses a context holding NULL or anonymous suites, naming the key", arguments: [
        "eNULL;aNULL;DEFAULT:@SECLEVEL=0", "NULL-SHA256", "AECDH-NULL-SHA", "ADH-AES128-SHA:@SECLEVEL=0",
    ])
    func everySideRefusesNullAndAnonymous(ciphers: String) throws {
        let context = try rawContext(ciphers: ciphers)
        defer { SSL_CTX_free(context) }
        #expect(thrownKey { try TLSContextAudit.checkUpstream(context, key: { "upstream[gw].\($0)" }) } == "upstream[gw].ciphers")
        #expect(thrownKey { try TLSContextAudit.checkMerchantSide(context, key: { "listener[legacy].\($0)" }) }
            == "listener[legacy].ciphers")
        #expect(thrownKey { try TLSContextAudit.checkMerchantSide(context, key: { "backend[web].\($0)" }) }
            == "backend[web].ciphers")
    }

    @Test("only the upstream check refuses a security level below 2; strong suites alone do not hide it")
    func upstreamSecurityLevelFloor() throws {
        let context = try rawContext(ciphers: "ECDHE+AESGCM")
        defer { SSL_CTX_free(context) }
        _ = tb_ssl_ctx_set_min_proto_version(context, TLS1_2_VERSION)
        SSL_CTX_set_security_level(context, 2)
        #expect(thrownKey { try TLSContextAudit.checkUpstream(context, key: { "upstream[gw].\($0)" }) } == nil)
        SSL_CTX_set_security_level(context, 1)
        #expect(thrownKey { try TLSContextAudit.checkUpstream(context, key: { "upstream[gw].\($0)" }) } == "upstream[gw].ciphers")
        SSL_CTX_set_security_level(context, 0)
        #expect(thrownKey { try TLSContextAudit.checkUpstream(context, key: { "upstream[gw].\($0)" }) } == "upstream[gw].ciphers")
        #expect(thrownKey { try TLSContextAudit.checkMerchantSide(context, key: { "listener[legacy].\($0)" }) } == nil)
    }

    @Test("the upstream check refuses a context whose protocol floor is below TLS 1.2")
    func upstreamProtocolFloor() throws {
        let context = try rawContext(ciphers: "ECDHE+AESGCM")
        defer { SSL_CTX_free(context) }
        SSL_CTX_set_security_level(context, 2)
        _ = tb_ssl_ctx_set_min_proto_version(context, TLS1_VERSION)
        #expect(thrownKey { try TLSContextAudit.checkUpstream(context, key: { "upstream[gw].\($0)" }) } == "upstream[gw].min_version")
    }

    @Test("each forbidden suite is named with its flaw")
    func flawsNamed() throws {
        let context = try rawContext(ciphers: "NULL-SHA256:AECDH-AES128-SHA:NULL-MD5:ECDHE-RSA-AES128-GCM-SHA256")
        defer { SSL_CTX_free(context) }
        let found = TLSContextAudit.forbiddenSuites(in: context)
        #expect(found.map(\.name) == ["NULL-SHA256", "AECDH-AES128-SHA", "NULL-MD5"])
        #expect(found.map(\.flaw) == [.noEncryption, .noAuthentication, .noEncryption])
    }
}

@Suite struct SocketAddressTests {
    @Test func formatsIPv4AndBracketsIPv6() {
        #expect(SocketAddress(ip: "127.0.0.1", port: 8080)?.description == "127.0.0.1:8080")
        #expect(SocketAddress(ip: "::1", port: 443)?.description == "[::1]:443")
        #expect(SocketAddress(ip: "gateway.example", port: 443) == nil)
    }
}
