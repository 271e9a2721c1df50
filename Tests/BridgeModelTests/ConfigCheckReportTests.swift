import Foundation
import Testing
@testable import BridgeModel

/// A reload's child process hands the bridge its validated config as JSON: it must come back whole.
@Suite("Config check report")
struct ConfigCheckReportTests {
    @Test func aRichConfigSurvivesTheTripUnchanged() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        for name in ["leaf.pem", "leaf.key", "ca.pem", "ca.key", "client.pem", "client.key", "gw-ca.pem", "module.pem"] {
            try directory.write(name)
        }
        let text = """
            workers = 3
            [admin]
            listen = "127.0.0.1:9180"
            [log]
            sessions = "sessions.jsonl"
            level = "debug"
            chain = true
            [limits]
            idle_timeout = "90s"
            max_sessions_per_source = 7
            buffer_size = "1MiB"
            [dns]
            nameservers = ["127.0.0.53:53"]

            [[upstream]]
            name = "sandbox"
            address = "sandbox.paygent.co.jp:443"
            server_name = "gw.example"
            ca_file = "gw-ca.pem"
            client_cert = "client.pem"
            client_key = "client.key"
            min_version = "TLS1.3"

            [[upstream]]
            name = "module"
            address = "[2001:db8::1]:8443"
            ciphers = "ECDHE+AESGCM"

            [[backend]]
            name = "web"
            address = "127.0.0.1:8080"

            [[listener]]
            name = "legacy"
            listen = "127.0.0.1:8443"
            accept = "tls"
            upstream = "sandbox"
            cert = "leaf.pem"
            key = "leaf.key"
            min_version = "TLS1.0"
            max_version = "TLS1.2"
            allow_sources = ["10.0.0.0/8", "::1"]
            [listener.routes]
            "module.paygent.co.jp" = "module"
            [listener.certificates."module.paygent.co.jp"]
            cert = "module.pem"
            key = "leaf.key"

            [[listener]]
            name = "notify"
            listen = "127.0.0.1:9443"
            accept = "tls"
            backend = "web"
            cert = "leaf.pem"
            key = "leaf.key"
            proxy_protocol = "v1"

            [[listener]]
            name = "proxy"
            listen = "127.0.0.1:3128"
            accept = "http-proxy"
            ca_cert = "ca.pem"
            ca_key = "ca.key"
            [listener.routes]
            "sandbox.paygent.co.jp" = "sandbox"
            "module.paygent.co.jp:8443" = "module"
            """
        let config = try ConfigLoader.parse(text, baseDirectory: directory.path)
        let decoded = ConfigCheckReport.decoded(from: ConfigCheckReport(config: config).encoded())
        #expect(decoded?.config == config)
        #expect(decoded?.errors == [])
    }

    @Test func errorsSurviveTheTrip() {
        let errors = [ConfigError(key: "upstream[gw].min_version", message: "\"TLS1.0\" is below the floor"),
                      ConfigError(key: "config", message: "line 3: é ✓ \"quoted\"")]
        #expect(ConfigCheckReport.decoded(from: ConfigCheckReport(errors: errors).encoded())?.errors == errors)
    }

    @Test("truncated, empty, foreign or self-contradicting output is no report", arguments: [
        "", "{", "[]", "{\"errors\": []}", "{\"config\": null, \"errors\": []}", "not json at all",
    ])
    func garbageIsNoReport(text: String) {
        #expect(ConfigCheckReport.decoded(from: Data(text.utf8)) == nil)
    }
}
