import Testing
@testable import BridgeModel

/// The file under `conf/` is what a merchant starts from: it has to load as shipped, on a machine
/// without any certificate files.
@Suite("Shipped config")
struct ShippedConfigTests {
    static let path: String = {
        var components = #filePath.split(separator: "/", omittingEmptySubsequences: false)
        components.removeLast(3)  // Tests/BridgeModelTests/ShippedConfigTests.swift
        return (components + ["conf", "tls-bridge.toml"]).joined(separator: "/")
    }()

    @Test("loads without certificate files and sends the plain listener to the sandbox")
    func loadsAsShipped() throws {
        let config = try ConfigLoader.load(path: Self.path)
        #expect(config.upstreams.map(\.name) == ["paygent-sandbox", "paygent-production"])
        #expect(config.upstream(named: "paygent-sandbox")?.address == HostPort(host: "sandbox.paygent.co.jp", port: 443))
        #expect(config.upstream(named: "paygent-production")?.address == HostPort(host: "module.paygent.co.jp", port: 443))
        #expect(config.listeners == [ListenerConfig(name: "plain", listen: HostPort(host: "127.0.0.1", port: 8080),
                                                    upstream: "paygent-sandbox")])
        #expect(config.log.sessions == .stdout)
        #expect(config.upstreams.allSatisfy { $0.caFile == nil && $0.clientCert == nil && $0.minVersion == .tls12 })
    }

    @Test("uncommenting every commented default except the file paths gives the same config")
    func commentedValuesAreTheDefaults() throws {
        let whole = try String(contentsOfFile: Self.path, encoding: .utf8)
        // The examples at the end show what to write, not the defaults.
        let text = String(whole[..<(whole.range(of: "# ==== Examples below")?.lowerBound ?? whole.endIndex)])
        // File paths, and the outbound proxy (which has no default: its line shows what to write).
        let fileKeys = ["ca_file", "client_cert", "client_key", "client_key_password_file", "via", "via_credentials"]
        let uncommented = text.split(separator: "\n", omittingEmptySubsequences: false).map { line -> Substring in
            guard line.hasPrefix("# "), line.contains(" = ") else { return line }
            let setting = line.dropFirst(2)
            guard let key = setting.split(separator: " ").first, !fileKeys.contains(String(key)) else { return line }
            return setting
        }.joined(separator: "\n")
        #expect(uncommented != text)
        let shipped = try ConfigLoader.parse(text, baseDirectory: nil)
        let explicit = try ConfigLoader.parse(uncommented, baseDirectory: nil)
        var expected = shipped
        for index in expected.upstreams.indices {
            expected.upstreams[index].serverName = expected.upstreams[index].address.host
            expected.upstreams[index].ciphers = "ECDHE+AESGCM:ECDHE+CHACHA20"
            expected.upstreams[index].ciphersuites = "TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256"
        }
        #expect(explicit == expected)
    }
}
