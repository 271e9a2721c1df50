import Testing
@testable import BridgeModel

@Suite("Cipher policy")
struct CipherPolicyTests {
    @Test("refuses tokens that enable weak or unauthenticated ciphers", arguments: [
        "RC4", "rc4-sha", "DES-CBC3-SHA", "3DES", "DES", "EDH-RSA-DES-CBC3-SHA", "DES-CBC-SHA", "NULL", "eNULL", "aNULL",
        "NULL-SHA256", "EXPORT", "EXP", "EXP-RC4-MD5", "EXPORT40", "ADH", "ADH-AES256-GCM-SHA384", "AECDH-AES128-SHA", "MD5",
        "+RC4", "EECDH+3DES", "ECDHE+RC4", "@SECLEVEL=0", "@seclevel=1", "COMPLEMENTOFALL",
    ])
    func refusesWeakToken(token: String) {
        #expect(CipherPolicy.weakTokens(inCipherString: "ECDHE+AESGCM:\(token)") == [token])
    }

    @Test("allows exclusions of weak ciphers and strong suites", arguments: [
        "ECDHE+AESGCM:ECDHE+CHACHA20",
        "HIGH:!aNULL:!eNULL:!MD5:!RC4:!3DES:!DES",
        "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384",
        "DEFAULT:-RC4:-NULL",
        "ECDHE-RSA-AES128-SHA @STRENGTH",
        "ECDHE+AESGCM:@SECLEVEL=2",
        "DHE-RSA-AES128-GCM-SHA256,ECDHE-ECDSA-CHACHA20-POLY1305",
    ])
    func allowsStrongString(text: String) {
        #expect(CipherPolicy.weakTokens(inCipherString: text).isEmpty)
    }

    @Test("splits tokens on colons, commas and spaces")
    func splitsOnAllSeparators() {
        #expect(CipherPolicy.weakTokens(inCipherString: "RC4,MD5 NULL:DES") == ["RC4", "MD5", "NULL", "DES"])
    }

    @Test("refuses TLS 1.3 integrity-only suites and allows the standard ones")
    func tls13Suites() {
        #expect(CipherPolicy.weakTokens(inCipherSuites: "TLS_AES_128_GCM_SHA256:TLS_SHA256_SHA256") == ["TLS_SHA256_SHA256"])
        #expect(CipherPolicy.weakTokens(
            inCipherSuites: "TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256").isEmpty)
    }
}

/// OpenSSL splits a cipher string on `;` as well as `:`, `,` and space, and starts a new rule at a
/// `!` or `@` even inside a token (`HIGH!aNULL`, `ECDHE+AESGCM@SECLEVEL=0`). Each spelling below
/// enables something the side refuses; the config loader must refuse it naming the key, however the
/// parts are separated.
@Suite("Cipher string separators")
struct CipherSeparatorTests {
    /// Upstream strings: each lowers the security level or adds NULL / anonymous suites.
    static let dangerousUpstream = [
        "ECDHE+AESGCM;@SECLEVEL=0",
        "ECDHE+AESGCM;@SECLEVEL=1",
        "ECDHE+AESGCM;eNULL",
        "eNULL;ECDHE+AESGCM",
        "ECDHE+AESGCM:eNULL",
        "ECDHE+AESGCM,aNULL",
        "ECDHE+AESGCM aNULL",
        "ECDHE+AESGCM;!aNULL, eNULL:HIGH",
        "ECDHE+AESGCM;:,ADH",
        ";eNULL",
        "ECDHE+AESGCM;aNULL;",
        ";;AECDH-NULL-SHA;;",
        " ;NULL-SHA256",
        "!aNULL;eNULL",
        "-eNULL;aNULL",
        "+AES;ADH",
        "ECDHE+AESGCM;+aNULL",
        "ECDHE+AESGCM;kECDHE+aNULL",
        "!eNULL;@SECLEVEL=0",
        "ECDHE+AESGCM@SECLEVEL=0",
        "HIGH!aNULL;eNULL",
        "ECDHE+AESGCM;!aNULL@SECLEVEL=0",
        "ECDHE+AESGCM;ECDHE-RSA-AES128-SHA@SECLEVEL=0",
    ]

    /// Listener (merchant-side) strings: security level 0 is fine there, NULL and anonymous suites never.
    static let dangerousListener = [
        "eNULL;aNULL;DEFAULT:@SECLEVEL=0",
        "DEFAULT;eNULL:@SECLEVEL=0",
        "DEFAULT:@SECLEVEL=0;aNULL",
        "AECDH-NULL-SHA;DEFAULT",
        "DEFAULT!aNULL;NULL-SHA256",
        ";ADH-AES128-SHA;",
        "DEFAULT, AECDH",
        "!eNULL;aNULL",
        "-aNULL;eNULL:@SECLEVEL=0",
        "DEFAULT;+aNULL",
    ]

    @Test("upstream: every separator spelling of a weak string is refused naming the key", arguments: dangerousUpstream)
    func upstreamRefused(ciphers: String) {
        let keys = errorKeys(upstreamConfig("ciphers = \"\(ciphers)\""))
        #expect(!keys.isEmpty && keys.allSatisfy { $0 == "upstream[sandbox].ciphers" }, "\(keys)")
    }

    @Test("upstream: strong strings pass whichever separators they use", arguments: [
        "ECDHE+AESGCM;ECDHE+CHACHA20",
        ";ECDHE+AESGCM;",
        "ECDHE+AESGCM;!aNULL;!eNULL;-MD5",
        "ECDHE+AESGCM;@SECLEVEL=2",
        "ECDHE+AESGCM, ECDHE+CHACHA20;DHE+AESGCM:@STRENGTH",
        "HIGH!aNULL!eNULL",
    ])
    func upstreamAllowed(ciphers: String) {
        #expect(errorKeys(upstreamConfig("ciphers = \"\(ciphers)\"")).isEmpty)
    }

    @Test("a legacy tls listener: every separator spelling of NULL or anonymous suites is refused naming the key",
          arguments: dangerousListener)
    func listenerRefused(ciphers: String) throws {
        let keys = try listenerKeys(ciphers: ciphers)
        #expect(!keys.isEmpty && keys.allSatisfy { $0 == "listener[legacy].ciphers" }, "\(keys)")
    }

    @Test("a legacy tls listener keeps security level 0 whichever separator sets it", arguments: [
        "DEFAULT;@SECLEVEL=0",
        "DEFAULT;!aNULL;!eNULL;@SECLEVEL=0",
        "AES128-SHA, ECDHE-RSA-AES256-SHA;@SECLEVEL=0",
    ])
    func listenerAllowed(ciphers: String) throws {
        #expect(try listenerKeys(ciphers: ciphers).isEmpty)
    }

    @Test("the tokens reported are the ones written, split on all four separators")
    func tokensAsWritten() {
        #expect(CipherPolicy.weakTokens(inCipherString: "RC4;MD5,NULL DES:AES") == ["RC4", "MD5", "NULL", "DES"])
        #expect(CipherPolicy.weakTokens(inCipherString: "ECDHE+AESGCM@SECLEVEL=0") == ["ECDHE+AESGCM@SECLEVEL=0"])
        #expect(CipherPolicy.refusedTokens(inDownstreamCipherString: "eNULL;aNULL;DEFAULT:@SECLEVEL=0") == ["eNULL", "aNULL"])
    }

    @Test("a directive inside a token is read as OpenSSL reads it, with the reason to match")
    func directiveInsideToken() {
        #expect(CipherPolicy.reason(forWeakToken: "ECDHE+AESGCM@SECLEVEL=0").contains("security levels below 2"))
        #expect(CipherPolicy.weakTokens(inCipherString: "ECDHE+AESGCM@STRENGTH").isEmpty)
    }

    @Test("characters OpenSSL does not read as names cannot hide a weak name", arguments: [
        "ECDHE+AESGCM\teNULL", "HIGH/eNULL", "ECDHE+AESGCM|aNULL", "ECDHE+AESGCM\n@SECLEVEL=0",
    ])
    func oddCharacters(text: String) {
        #expect(!CipherPolicy.weakTokens(inCipherString: text).isEmpty)
    }

    /// The keys of the errors for a legacy `tls` listener whose `ciphers` is `ciphers`.
    private func listenerKeys(ciphers: String) throws -> [String] {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try directory.write("leaf.pem")
        let toml = listenerConfig("""
            name = "legacy"
            listen = "127.0.0.1:8443"
            accept = "tls"
            upstream = "sandbox"
            cert = "leaf.pem"
            min_version = "TLS1.0"
            ciphers = "\(ciphers)"
            """)
        return errorKeys(toml, baseDirectory: directory.path)
    }
}
