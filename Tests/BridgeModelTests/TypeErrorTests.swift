import Testing
@testable import BridgeModel

@Suite("Wrong types")
struct TypeErrorTests {
    @Test("a value of the wrong type names the key and both types", arguments: [
        ("[limits]\nmax_sessions = \"many\"", "limits.max_sessions", "expected an integer, found a string"),
        ("[limits]\nidle_timeout = 300", "limits.idle_timeout", "a bare number has no unit"),
        ("[log]\nlevel = 1", "log.level", "expected a string, found an integer"),
        ("[dns]\nnameservers = \"127.0.0.1\"", "dns.nameservers", "expected an array of strings, found a string"),
        ("[dns]\nnameservers = [53]", "dns.nameservers", "found an integer"),
        ("log = \"stdout\"", "log", "expected a table ([log]), found a string"),
        ("workers = 1.5", "workers", "found a decimal number"),
        ("[limits]\nbuffer_size = true", "limits.buffer_size", "found a boolean"),
    ])
    func wrongType(extra: String, key: String, expected: String) {
        #expect(message(for: key, in: extra + "\n" + minimalConfig)?.contains(expected) == true)
    }

    @Test("entry keys of the wrong type are reported under the entry")
    func entryKeyTypes() {
        #expect(message(for: "upstream[sandbox].min_version", in: upstreamConfig("min_version = 1.2"))?
            .contains("expected a string") == true)
        #expect(message(for: "listener[p].unsafe_listen_public",
                        in: listenerConfig("name = \"p\"\nlisten = \"127.0.0.1:1\"\nupstream = \"sandbox\"\nunsafe_listen_public = \"yes\""))?
            .contains("expected true or false") == true)
    }

    @Test("an entry that is not a table is reported by position")
    func entryNotATable() {
        let toml = "upstream = [\"sandbox\"]\n[[listener]]\nname = \"plain\"\nlisten = \"127.0.0.1:1\"\nupstream = \"x\""
        #expect(message(for: "upstream[#1]", in: toml)?.contains("expected a table") == true)
    }
}
