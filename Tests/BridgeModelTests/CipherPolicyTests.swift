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
