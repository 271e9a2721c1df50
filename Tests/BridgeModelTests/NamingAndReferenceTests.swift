import Foundation
import Testing
@testable import BridgeModel

@Suite("Names and references")
struct NamingAndReferenceTests {
    @Test("a listener naming an unknown upstream is refused with a suggestion")
    func unknownUpstream() {
        let toml = listenerConfig("name = \"plain\"\nlisten = \"127.0.0.1:8080\"\nupstream = \"sandbx\"")
        #expect(message(for: "listener[plain].upstream", in: toml) ==
            "\"sandbx\" does not name an [[upstream]]; did you mean \"sandbox\"?")
    }

    @Test("duplicate upstream names are refused and the second entry is labelled by position")
    func duplicateUpstreamNames() {
        let toml = minimalConfig + "\n[[upstream]]\nname = \"sandbox\"\naddress = \"module.paygent.co.jp:443\""
        #expect(message(for: "upstream[#2].name", in: toml) ==
            "\"sandbox\" is already the name of upstream #1; names must be unique")
    }

    @Test("duplicate listener names are refused")
    func duplicateListenerNames() {
        let toml = minimalConfig + "\n[[listener]]\nname = \"plain\"\nlisten = \"127.0.0.1:8081\"\nupstream = \"sandbox\""
        #expect(errorKeys(toml) == ["listener[#2].name"])
    }

    @Test("two listeners on the same address are refused, however the address is spelt", arguments: [
        ("127.0.0.1:8080", "127.0.0.1:8080"),
        ("[::1]:8080", "[0:0:0:0:0:0:0:1]:8080"),
        ("localhost:8080", "LOCALHOST:8080"),
    ])
    func duplicateListenAddress(first: String, second: String) throws {
        let toml = listenerConfig("name = \"a\"\nlisten = \"\(first)\"\nupstream = \"sandbox\"\n"
            + "[[listener]]\nname = \"b\"\nlisten = \"\(second)\"\nupstream = \"sandbox\"")
        let text = try #require(message(for: "listener[b].listen", in: toml))
        #expect(text.contains("is already the address of listener[a]"))
    }

    @Test("the same host on different ports is fine")
    func differentPorts() {
        let toml = listenerConfig("name = \"a\"\nlisten = \"127.0.0.1:8080\"\nupstream = \"sandbox\"\n"
            + "[[listener]]\nname = \"b\"\nlisten = \"127.0.0.1:8081\"\nupstream = \"sandbox\"")
        #expect(configErrors(toml).isEmpty)
    }

    @Test("names are limited to letters, digits, dot, underscore and dash", arguments: ["a b", "gw/1", "", "ü"])
    func invalidNames(name: String) {
        let toml = minimalConfig.replacingOccurrences(of: "name = \"plain\"", with: "name = \"\(name)\"")
        #expect(message(for: "listener[#1].name", in: toml) != nil)
    }

    @Test("an entry without a name is labelled by its position in every error")
    func positionLabels() {
        let toml = "[[upstream]]\naddress = \"gw.example\"\n" + minimalConfig
        #expect(errorKeys(toml) == ["upstream[#1].name", "upstream[#1].address"])
    }

    @Test("a listener pointing at an upstream with other errors gets no extra error")
    func noCascadingReferenceError() {
        let toml = minimalConfig.replacingOccurrences(of: "sandbox.paygent.co.jp:443", with: "no-port")
        #expect(errorKeys(toml) == ["upstream[sandbox].address"])
    }
}
