import Foundation
import Testing
@testable import BridgeModel

@Suite("Defaults")
struct DefaultsTests {
    @Test("a config with one upstream and one listener gets every documented default")
    func minimalConfigGetsDefaults() throws {
        let config = try ConfigLoader.parse(minimalConfig, baseDirectory: nil)
        #expect(config.log == LogConfig(sessions: .stdout, level: .info))
        #expect(config.limits == LimitsConfig(connectTimeout: .seconds(10), handshakeTimeout: .seconds(10),
                                              idleTimeout: .seconds(300), maxSessions: 4096, bufferSize: 256 * 1024))
        #expect(config.dns == DNSConfig(nameservers: [], timeout: .seconds(5)))
        #expect(config.workers == ProcessInfo.processInfo.activeProcessorCount)
        #expect(config.upstreams == [UpstreamConfig(name: "sandbox", address: HostPort(host: "sandbox.paygent.co.jp", port: 443))])
        #expect(config.listeners == [ListenerConfig(name: "plain", listen: HostPort(host: "127.0.0.1", port: 8080),
                                                    accept: .plain, upstream: "sandbox", unsafeListenPublic: false)])
    }

    @Test("an upstream without options verifies the host of its address at TLS 1.2 or later")
    func upstreamDefaultsAreStrict() throws {
        let upstream = try #require(try ConfigLoader.parse(minimalConfig, baseDirectory: nil).upstreams.first)
        #expect(upstream.minVersion == .tls12)
        #expect(upstream.verifiedName == "sandbox.paygent.co.jp")
        #expect(upstream.caFile == nil && upstream.ciphers == nil && upstream.ciphersuites == nil)
        #expect(upstream.clientCert == nil && upstream.clientKey == nil && upstream.clientKeyPasswordFile == nil)
    }

    @Test("every key set explicitly is carried into the model")
    func explicitValuesAreCarried() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try directory.write("ca.pem")
        try directory.write("client.pem")
        try directory.write("client.key")
        try directory.write("client.pass")
        let toml = """
            workers = 3
            [log]
            sessions = "stderr"
            level = "debug"
            [limits]
            connect_timeout = "2s"
            handshake_timeout = "1500ms"
            idle_timeout = "5m"
            max_sessions = 10
            buffer_size = "1MiB"
            [dns]
            nameservers = ["127.0.0.1:5353", "[::1]:53", "192.0.2.53"]
            timeout = "1s"
            [[upstream]]
            name = "gw"
            address = "[2001:db8::1]:8443"
            server_name = "gw.example"
            ca_file = "ca.pem"
            client_cert = "client.pem"
            client_key = "client.key"
            client_key_password_file = "client.pass"
            min_version = "TLS1.3"
            ciphers = "ECDHE+AESGCM"
            ciphersuites = "TLS_AES_256_GCM_SHA384"
            [[listener]]
            name = "public"
            listen = "0.0.0.0:9000"
            accept = "plain"
            upstream = "gw"
            unsafe_listen_public = true
            """
        let config = try ConfigLoader.parse(toml, baseDirectory: directory.path)
        #expect(config.workers == 3)
        #expect(config.log == LogConfig(sessions: .stderr, level: .debug))
        #expect(config.limits == LimitsConfig(connectTimeout: .seconds(2), handshakeTimeout: .milliseconds(1500),
                                              idleTimeout: .seconds(300), maxSessions: 10, bufferSize: 1024 * 1024))
        #expect(config.dns == DNSConfig(nameservers: ["127.0.0.1:5353", "[::1]:53", "192.0.2.53"], timeout: .seconds(1)))
        let base = ConfigFiles.absoluteBase(directory.path)
        #expect(config.upstreams == [UpstreamConfig(
            name: "gw", address: HostPort(host: "2001:db8::1", port: 8443), serverName: "gw.example",
            caFile: base + "/ca.pem", clientCert: base + "/client.pem", clientKey: base + "/client.key",
            clientKeyPasswordFile: base + "/client.pass", minVersion: .tls13, ciphers: "ECDHE+AESGCM",
            ciphersuites: "TLS_AES_256_GCM_SHA384")])
        #expect(config.listeners == [ListenerConfig(name: "public", listen: HostPort(host: "0.0.0.0", port: 9000),
                                                    upstream: "gw", unsafeListenPublic: true)])
    }
}
