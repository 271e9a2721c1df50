import Foundation
import Testing
@testable import BridgeModel

@Suite("Unknown keys")
struct UnknownKeyTests {
    @Test("a misspelt key is an error with a suggestion", arguments: [
        ("[limits]\nidle_timout = \"5s\"", "limits.idle_timout", "idle_timeout"),
        ("[limits]\nconnect-timeout = \"5s\"", "limits.connect-timeout", "connect_timeout"),
        ("[log]\nLevel = \"info\"", "log.Level", "level"),
        ("[dns]\nnameserver = []", "dns.nameserver", "nameservers"),
        ("worker = 2", "worker", "workers"),
        ("[limit]\nmax_sessions = 1", "limit", "limits"),
    ])
    func suggestsCloseKey(extra: String, key: String, suggestion: String) throws {
        let text = try #require(message(for: key, in: extra + "\n" + minimalConfig))
        #expect(text.hasPrefix("unknown key"))
        #expect(text.contains("did you mean \"\(suggestion)\"?"))
    }

    @Test("misspelt upstream and listener keys are reported under the entry's name")
    func entryKeysUseEntryName() {
        let toml = upstreamConfig("severname = \"x.example\"").replacingOccurrences(of: "upstream = \"sandbox\"",
                                                                                 with: "upstream = \"sandbox\"\nbind = \"127.0.0.1:1\"")
        #expect(message(for: "upstream[sandbox].severname", in: toml)?.contains("did you mean \"server_name\"?") == true)
        #expect(message(for: "listener[plain].bind", in: toml)?.contains("did you mean \"listen\"?") == true)
    }

    @Test("any key about verification says verification cannot be turned off", arguments: [
        "verify = false", "insecure_skip_verify = true", "verify_peer = false", "tls_verify = \"none\"", "insecure = true",
    ])
    func verificationCannotBeTurnedOff(line: String) throws {
        let key = String(line.prefix { $0 != " " })
        let text = try #require(message(for: "upstream[sandbox].\(key)", in: upstreamConfig(line)))
        #expect(text.contains("upstream certificate verification cannot be turned off"))
    }

    @Test("verify keys are refused in every table, not only upstream")
    func verifyRefusedAnywhere() {
        #expect(message(for: "verify", in: "verify = false\n" + minimalConfig)?
            .contains("verification cannot be turned off") == true)
        #expect(message(for: "listener[plain].verify_upstream", in: minimalConfig + "\nverify_upstream = false")?
            .contains("verification cannot be turned off") == true)
    }

    @Test("workers placed under a table is pointed back to the top level")
    func workersUnderTable() {
        #expect(message(for: "log.workers", in: "[log]\nworkers = 2\n" + minimalConfig)?.contains("top-level") == true)
    }

    @Test("a key with no close match lists the keys that are known there")
    func listsKnownKeys() {
        #expect(message(for: "dns.zzz", in: "[dns]\nzzz = 1\n" + minimalConfig)?.contains("nameservers, timeout") == true)
    }

    @Test("an unknown key's value is never quoted back")
    func valueNotEchoed() {
        let errors = configErrors(upstreamConfig("client_key_password = \"hunter2-secret\""))
        #expect(errors.map(\.key) == ["upstream[sandbox].client_key_password"])
        #expect(errors.first?.message.contains("client_key_password_file") == true)
        #expect(!errors.description.contains("hunter2"))
    }
}
