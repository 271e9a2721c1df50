import Foundation
import Testing
@testable import BridgeModel

@Suite("Upstream TLS policy")
struct UpstreamTLSPolicyTests {
    @Test("versions below TLS 1.2 are refused and the message names the floor", arguments: [
        "TLS1.0", "TLS1.1", "TLSv1", "TLSv1.1", "SSLv3", "sslv2", "1.0",
    ])
    func belowFloor(version: String) throws {
        let text = try #require(message(for: "upstream[sandbox].min_version", in: upstreamConfig("min_version = \"\(version)\"")))
        #expect(text == "\"\(version)\" is below the upstream floor (TLS 1.2); use \"TLS1.2\" or \"TLS1.3\"")
    }

    @Test("OpenSSL's spelling of a valid version is refused with the spelling to use")
    func openSSLSpelling() {
        #expect(message(for: "upstream[sandbox].min_version", in: upstreamConfig("min_version = \"TLSv1.3\"")) ==
            "write it as \"TLS1.3\"")
    }

    @Test("text that is no TLS version is refused")
    func notAVersion() {
        #expect(message(for: "upstream[sandbox].min_version", in: upstreamConfig("min_version = \"modern\""))?
            .contains("is not a TLS version") == true)
    }

    @Test("TLS1.2 and TLS1.3 are accepted", arguments: [("TLS1.2", UpstreamTLSVersion.tls12), ("TLS1.3", .tls13)])
    func acceptedVersions(text: String, version: UpstreamTLSVersion) throws {
        let config = try ConfigLoader.parse(upstreamConfig("min_version = \"\(text)\""), baseDirectory: nil)
        #expect(config.upstreams.first?.minVersion == version)
    }

    @Test("each weak token in ciphers is its own error naming the token")
    func weakCiphersNamed() {
        let errors = configErrors(upstreamConfig("ciphers = \"ECDHE+AESGCM:RC4-SHA:!aNULL:DES-CBC3-SHA\""))
        #expect(errors.map(\.key) == ["upstream[sandbox].ciphers", "upstream[sandbox].ciphers"])
        #expect(errors[0].message.hasPrefix("\"RC4-SHA\" is not allowed"))
        #expect(errors[1].message.hasPrefix("\"DES-CBC3-SHA\" is not allowed"))
    }

    @Test("a security level below 2 is refused with the reason")
    func lowSecurityLevel() {
        #expect(message(for: "upstream[sandbox].ciphers", in: upstreamConfig("ciphers = \"DEFAULT:@SECLEVEL=1\""))?
            .contains("security levels below 2 are not allowed upstream") == true)
    }

    @Test("integrity-only TLS 1.3 suites are refused")
    func nullTLS13Suites() {
        #expect(message(for: "upstream[sandbox].ciphersuites", in: upstreamConfig("ciphersuites = \"TLS_SHA384_SHA384\""))?
            .contains("no encryption") == true)
    }

    @Test("an empty cipher string is refused rather than handed to OpenSSL", arguments: ["ciphers", "ciphersuites"])
    func emptyCipherString(key: String) {
        #expect(message(for: "upstream[sandbox].\(key)", in: upstreamConfig("\(key) = \"\""))?.hasPrefix("is empty") == true)
    }

    @Test("server_name must be a host name")
    func serverNameSyntax() {
        #expect(message(for: "upstream[sandbox].server_name", in: upstreamConfig("server_name = \"bad name\"")) != nil)
        #expect(configErrors(upstreamConfig("server_name = \"gateway.example\"")).isEmpty)
    }

    @Test("an address needs host and port", arguments: ["sandbox.paygent.co.jp", "sandbox.paygent.co.jp:0", "::1:443", ""])
    func addressNeedsPort(address: String) {
        let toml = upstreamConfig("").replacingOccurrences(
            of: "address = \"sandbox.paygent.co.jp:443\"", with: "address = \"\(address)\"")
        #expect(message(for: "upstream[sandbox].address", in: toml)?.contains("is not host:port") == true)
    }
}
