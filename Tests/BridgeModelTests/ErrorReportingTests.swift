import Foundation
import Testing
@testable import BridgeModel

@Suite("Error reporting")
struct ErrorReportingTests {
    @Test("validation reports every problem, not only the first")
    func collectsAllErrors() {
        let toml = """
            workers = 0
            [limits]
            idle_timeout = "forever"
            [[upstream]]
            name = "gw"
            address = "gw.example:443"
            min_version = "TLS1.0"
            ciphers = "RC4"
            [[listener]]
            name = "l"
            listen = "0.0.0.0:80"
            upstream = "nowhere"
            """
        #expect(errorKeys(toml) == [
            "workers", "limits.idle_timeout", "upstream[gw].min_version", "upstream[gw].ciphers",
            "listener[l].upstream", "listener[l].listen",
        ])
    }

    @Test("the description is one \"key: message\" line per error")
    func descriptionIsOneLinePerError() {
        let errors = ConfigErrors([ConfigError(key: "a.b", message: "first"), ConfigError(key: "c", message: "second")])
        #expect(errors.description == "a.b: first\nc: second")
        #expect(ConfigError(key: "limits.idle_timeout", message: "must be greater than zero").description ==
            "limits.idle_timeout: must be greater than zero")
    }

    @Test("load resolves paths against the config file's directory")
    func loadUsesFileDirectory() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try directory.write("etc/ca.pem")
        let path = try directory.write("etc/bridge.toml", upstreamConfig("ca_file = \"ca.pem\""))
        let config = try ConfigLoader.load(path: path)
        #expect(config.upstreams.first?.caFile == ConfigFiles.absoluteBase(directory.path) + "/etc/ca.pem")
    }

    @Test("a missing config file is a config error with its path")
    func missingFile() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.path + "/absent.toml"
        #expect(throws: ConfigErrors.self) { try ConfigLoader.load(path: path) }
        do {
            _ = try ConfigLoader.load(path: path)
        } catch {
            #expect(error.errors.map(\.key) == ["config"])
            #expect(error.errors.first?.message.contains("absent.toml does not exist") == true)
        }
    }

    @Test("a file that is not UTF-8 is refused")
    func notUTF8() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.path + "/latin1.toml"
        try Data([0x23, 0x20, 0xE9, 0xFF, 0x0A]).write(to: URL(fileURLWithPath: path))
        #expect(throws: ConfigErrors.self) { try ConfigLoader.load(path: path) }
    }
}
