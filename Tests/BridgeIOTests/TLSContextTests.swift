import BridgeModel
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

@Suite struct SocketAddressTests {
    @Test func formatsIPv4AndBracketsIPv6() {
        #expect(SocketAddress(ip: "127.0.0.1", port: 8080)?.description == "127.0.0.1:8080")
        #expect(SocketAddress(ip: "::1", port: 443)?.description == "[::1]:443")
        #expect(SocketAddress(ip: "gateway.example", port: 443) == nil)
    }
}
