import Testing
@testable import BridgeModel

/// `via`: the merchant's outbound HTTP proxy. Only `http://host:port`, credentials only in an
/// owner-only file, never in the URL; each mistake named by its key with what to write instead.
@Suite("Upstream via an outbound proxy")
struct UpstreamViaTests {
    @Test func anHTTPProxyURLIsReadAsHostAndPort() throws {
        let config = try ConfigLoader.parse(upstreamConfig("via = \"http://proxy.example:3128\""), baseDirectory: nil)
        #expect(config.upstreams.first?.via == HostPort(host: "proxy.example", port: 3128))
        let bracketed = try ConfigLoader.parse(upstreamConfig("via = \"http://[::1]:8080/\""), baseDirectory: nil)
        #expect(bracketed.upstreams.first?.via == HostPort(host: "::1", port: 8080))
    }

    @Test("what via refuses, and why", arguments: [
        ("https://proxy.example:3128", "\"https://\" proxies are not supported"),
        ("socks5://proxy.example:1080", "\"socks5://\" proxies are not supported"),
        ("proxy.example:3128", "is not a proxy URL"),
        ("http://proxy.example", "is not http://host:port"),
        ("http://proxy.example:3128/path", "is not http://host:port"),
        ("http://user:secret@proxy.example:3128", "has credentials in the URL"),
    ])
    func refused(via: String, expected: String) throws {
        let text = try #require(message(for: "upstream[sandbox].via", in: upstreamConfig("via = \"\(via)\"")))
        #expect(text.contains(expected), "\(text)")
        #expect(!text.contains("secret"), "the refusal quoted the password")
    }

    @Test func credentialsNeedAViaAndAnOwnerOnlyFile() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let open = try directory.write("proxy-open", "merchant:s3cret\n", permissions: 0o644)
        let tight = try directory.write("proxy-tight", "merchant:s3cret\n", permissions: 0o600)
        #expect(message(for: "upstream[sandbox].via_credentials", in: upstreamConfig("via_credentials = \"\(tight)\""),
                        baseDirectory: directory.path)?.contains("without via") == true)
        let loose = message(for: "upstream[sandbox].via_credentials",
                            in: upstreamConfig("via = \"http://127.0.0.1:3128\"\nvia_credentials = \"\(open)\""),
                            baseDirectory: directory.path)
        #expect(loose != nil && loose?.contains("s3cret") == false)
        let config = try ConfigLoader.parse(upstreamConfig("via = \"http://127.0.0.1:3128\"\nvia_credentials = \"\(tight)\""),
                                            baseDirectory: directory.path)
        #expect(config.upstreams.first?.viaCredentialsFile == tight)
    }
}
