import Foundation
import Testing
@testable import BridgeModel

/// `accept = "tls"` listeners: the one place legacy TLS can be configured, and what they need.
@Suite("TLS listener validation")
struct TLSListenerValidationTests {
    /// Two upstreams and a tls listener made of `lines`, with certificate files in `directory`.
    private func config(_ lines: String, routes: String = "", _ directory: TemporaryDirectory) throws -> String {
        try directory.write("leaf.pem")
        try directory.write("leaf.key")
        try directory.write("ca.pem")
        try directory.write("ca.key")
        return """
            [[upstream]]
            name = "sandbox"
            address = "sandbox.paygent.co.jp:443"

            [[upstream]]
            name = "production"
            address = "module.paygent.co.jp:443"

            [[listener]]
            name = "legacy"
            listen = "127.0.0.1:8443"
            accept = "tls"
            \(lines)
            \(routes.isEmpty ? "" : "[listener.routes]\n" + routes)
            """
    }

    private func withDirectory<T>(_ body: (TemporaryDirectory) throws -> T) throws -> T {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        return try body(directory)
    }

    @Test func legacyVersionsAreAllowedOnATLSListener() throws {
        let loaded = try withDirectory { directory in
            try ConfigLoader.parse(config("upstream = \"sandbox\"\ncert = \"leaf.pem\"\nkey = \"leaf.key\"\nmin_version = \"TLS1.0\"",
                                          directory), baseDirectory: directory.path)
        }
        let policy = try #require(loaded.listeners.first?.tls)
        #expect(policy.minVersion == .tls10)
        #expect(policy.isLegacy)
        #expect(policy.effectiveCiphers == DownstreamTLSConfig.legacyListenerCiphers)
        #expect(!policy.effectiveCiphers.hasPrefix("DEFAULT"), "the legacy default lists DHE with CBC, which Java 6 cannot complete")
    }

    @Test func theDefaultTLSListenerIsNotLegacy() throws {
        let loaded = try withDirectory { directory in
            try ConfigLoader.parse(config("upstream = \"sandbox\"\ncert = \"leaf.pem\"", directory), baseDirectory: directory.path)
        }
        let policy = try #require(loaded.listeners.first?.tls)
        #expect(policy.minVersion == .tls12)
        #expect(!policy.isLegacy)
        #expect(policy.effectiveCiphers == DownstreamTLSConfig.modernCiphers)
    }

    @Test func routesCompareCaseInsensitivelyAndFallBackToTheDefault() throws {
        let loaded = try withDirectory { directory in
            try ConfigLoader.parse(config("upstream = \"sandbox\"\ncert = \"leaf.pem\"",
                                          routes: "\"Module.Paygent.co.jp\" = \"production\"", directory),
                                   baseDirectory: directory.path)
        }
        let listener = try #require(loaded.listeners.first)
        #expect(listener.upstreamName(forServerName: "module.paygent.co.jp") == "production")
        #expect(listener.upstreamName(forServerName: "MODULE.PAYGENT.CO.JP") == "production")
        #expect(listener.upstreamName(forServerName: "other.example") == "sandbox")
        #expect(listener.upstreamName(forServerName: nil) == "sandbox")
    }

    @Test func withoutADefaultUnroutedNamesHaveNoUpstream() throws {
        let loaded = try withDirectory { directory in
            try ConfigLoader.parse(config("cert = \"leaf.pem\"", routes: "\"module.paygent.co.jp\" = \"production\"", directory),
                                   baseDirectory: directory.path)
        }
        let listener = try #require(loaded.listeners.first)
        #expect(listener.upstreamName(forServerName: "other.example") == nil)
        #expect(listener.upstreamName(forServerName: nil) == nil)
    }

    @Test func aRouteToAnUnknownUpstreamNamesTheRouteKey() throws {
        let keys = try withDirectory { directory in
            errorKeys(try config("cert = \"leaf.pem\"", routes: "\"sandbox.paygent.co.jp\" = \"sandbx\"", directory),
                      baseDirectory: directory.path)
        }
        #expect(keys == ["listener[legacy].routes.sandbox.paygent.co.jp"])
    }

    @Test func aTLSListenerNeedsACertificateOrALocalCA() throws {
        let text = try withDirectory { directory in
            message(for: "listener[legacy].cert", in: try config("upstream = \"sandbox\"", directory), baseDirectory: directory.path)
        }
        #expect(text?.contains("ca_cert") == true)
    }

    @Test func aLocalCANeedsItsKey() throws {
        let keys = try withDirectory { directory in
            errorKeys(try config("upstream = \"sandbox\"\nca_cert = \"ca.pem\"", routes: "\"a.example\" = \"sandbox\"", directory),
                      baseDirectory: directory.path)
        }
        #expect(keys == ["listener[legacy].ca_key"])
    }

    @Test func aTLSListenerNeedsADefaultUpstreamOrRoutes() throws {
        let keys = try withDirectory { directory in
            errorKeys(try config("cert = \"leaf.pem\"", directory), baseDirectory: directory.path)
        }
        #expect(keys.contains("listener[legacy].upstream"))
    }

    @Test func maxVersionBelowMinVersionIsRefused() throws {
        let keys = try withDirectory { directory in
            errorKeys(try config("upstream = \"sandbox\"\ncert = \"leaf.pem\"\nmin_version = \"TLS1.2\"\nmax_version = \"TLS1.1\"",
                                 directory), baseDirectory: directory.path)
        }
        #expect(keys == ["listener[legacy].max_version"])
    }

    @Test("null, anonymous and export ciphers are refused even for legacy clients",
          arguments: ["eNULL", "aNULL", "ADH-AES128-SHA", "EXP-RC4-MD5", "DEFAULT:NULL-SHA"])
    func refusedDownstreamCiphers(ciphers: String) throws {
        let keys = try withDirectory { directory in
            errorKeys(try config("upstream = \"sandbox\"\ncert = \"leaf.pem\"\nmin_version = \"TLS1.0\"\nciphers = \"\(ciphers)\"",
                                 directory), baseDirectory: directory.path)
        }
        #expect(keys == ["listener[legacy].ciphers"])
    }

    @Test func exclusionsAndLegacySuitesAreAllowedDownstream() throws {
        let keys = try withDirectory { directory in
            errorKeys(try config("upstream = \"sandbox\"\ncert = \"leaf.pem\"\nmin_version = \"TLS1.0\"\nciphers = \"AES128-SHA:DES-CBC3-SHA:!aNULL:@SECLEVEL=0\"",
                                 directory), baseDirectory: directory.path)
        }
        #expect(keys.isEmpty)
    }

    @Test func requireClientCertNeedsATrustSource() throws {
        let keys = try withDirectory { directory in
            errorKeys(try config("upstream = \"sandbox\"\ncert = \"leaf.pem\"\nrequire_client_cert = true", directory),
                      baseDirectory: directory.path)
        }
        #expect(keys == ["listener[legacy].require_client_cert"])
    }

    @Test func aClientCAWithoutRequireClientCertIsRefused() throws {
        let keys = try withDirectory { directory in
            errorKeys(try config("upstream = \"sandbox\"\ncert = \"leaf.pem\"\nclient_ca = \"ca.pem\"", directory),
                      baseDirectory: directory.path)
        }
        #expect(keys == ["listener[legacy].client_ca"])
    }

    @Test func fingerprintsAreNormalised() throws {
        let colons = (0..<32).map { _ in "ab" }.joined(separator: ":")
        let loaded = try withDirectory { directory in
            try ConfigLoader.parse(config("upstream = \"sandbox\"\ncert = \"leaf.pem\"\nrequire_client_cert = true\n"
                                          + "client_cert_fingerprints = [\"\(colons)\", \"sha256:\(String(repeating: "C", count: 64))\"]",
                                          directory), baseDirectory: directory.path)
        }
        #expect(loaded.listeners.first?.tls?.clientCertFingerprints == [String(repeating: "AB", count: 32), String(repeating: "C", count: 64)])
    }

    @Test func aMalformedFingerprintIsRefused() throws {
        let keys = try withDirectory { directory in
            errorKeys(try config("upstream = \"sandbox\"\ncert = \"leaf.pem\"\nrequire_client_cert = true\nclient_cert_fingerprints = [\"abc\"]",
                                 directory), baseDirectory: directory.path)
        }
        #expect(keys == ["listener[legacy].client_cert_fingerprints"])
    }

    @Test("TLS keys on a plain listener are refused", arguments: ["min_version = \"TLS1.0\"", "cert = \"leaf.pem\""])
    func tlsKeysOnAPlainListener(line: String) throws {
        let keys = try withDirectory { directory in
            try directory.write("leaf.pem")
            return errorKeys(listenerConfig("name = \"p\"\nlisten = \"127.0.0.1:1\"\nupstream = \"sandbox\"\n\(line)"),
                             baseDirectory: directory.path)
        }
        #expect(keys == ["listener[p].\(line.split(separator: " ")[0])"])
    }

    @Test func legacyVersionsStayRefusedUpstream() {
        #expect(errorKeys(upstreamConfig("min_version = \"TLS1.0\"")) == ["upstream[sandbox].min_version"])
    }

    @Test func aPerNameCertificateMustBeForARoutedName() throws {
        let keys = try withDirectory { directory in
            errorKeys(try config("upstream = \"sandbox\"\ncert = \"leaf.pem\"\n[listener.certificates.\"other.example\"]\ncert = \"leaf.pem\"",
                                 directory), baseDirectory: directory.path)
        }
        #expect(keys == ["listener[legacy].certificates.other.example"])
    }
}
