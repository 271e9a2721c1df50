import Testing
@testable import BridgeModel

/// `[[backend]]` and inbound listeners: legacy TLS only on the merchant's side, and only verified.
@Suite("Backend validation")
struct BackendValidationTests {
    private func config(backend: String, listener: String = "backend = \"web\"") -> String {
        """
        [[backend]]
        name = "web"
        \(backend)

        [[listener]]
        name = "notify"
        listen = "127.0.0.1:8443"
        accept = "tls"
        \(listener)
        """
    }

    @Test func aPlainBackendNeedsOnlyAnAddress() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try directory.write("leaf.pem")
        let loaded = try ConfigLoader.parse(config(backend: "address = \"127.0.0.1:8080\"",
                                                   listener: "backend = \"web\"\ncert = \"leaf.pem\"\nproxy_protocol = \"v2\""),
                                            baseDirectory: directory.path)
        #expect(loaded.backends == [BackendConfig(name: "web", address: HostPort(host: "127.0.0.1", port: 8080))])
        #expect(loaded.listeners.first?.backend == "web")
        #expect(loaded.listeners.first?.proxyProtocol == .v2)
    }

    @Test func aLegacyBackendMustBeVerified() {
        let text = message(for: "backend[web].pin_sha256", in: config(backend: "address = \"127.0.0.1:8443\"\ntls = \"legacy\""))
        #expect(text?.contains("ca_file") == true && text?.contains("pin_sha256") == true)
    }

    @Test func aLegacyBackendAtAPublicAddressNeedsTheUnsafeFlag() {
        let pin = String(repeating: "A", count: 64)
        let keys = errorKeys(config(backend: "address = \"8.8.8.8:443\"\ntls = \"legacy\"\npin_sha256 = \"\(pin)\""))
        #expect(keys.contains("backend[web].address"))
        let allowed = errorKeys(config(backend: "address = \"8.8.8.8:443\"\ntls = \"legacy\"\npin_sha256 = \"\(pin)\"\nunsafe_public_backend = true"))
        #expect(!allowed.contains("backend[web].address"))
    }

    @Test("private and loopback addresses need no flag", arguments: ["10.1.2.3", "172.16.0.9", "192.168.1.1", "127.0.0.1", "[::1]", "[fd00::5]"])
    func privateLegacyBackend(host: String) {
        let pin = String(repeating: "b", count: 64)
        #expect(!errorKeys(config(backend: "address = \"\(host):443\"\ntls = \"legacy\"\npin_sha256 = \"\(pin)\"")).contains("backend[web].address"))
    }

    @Test func anUnknownTLSModeIsRefused() {
        #expect(errorKeys(config(backend: "address = \"127.0.0.1:1\"\ntls = \"on\"")).contains("backend[web].tls"))
    }

    @Test func legacyKeysOnAPlainBackendAreRefused() {
        #expect(errorKeys(config(backend: "address = \"127.0.0.1:1\"\nserver_name = \"x.example\"")).contains("backend[web].server_name"))
    }

    @Test func aListenerNamingAnUnknownBackendIsRefused() {
        #expect(errorKeys(config(backend: "address = \"127.0.0.1:1\"", listener: "backend = \"wbe\"")).contains("listener[notify].backend"))
    }

    @Test func aListenerCannotHaveBothABackendAndAnUpstream() {
        let text = """
            [[upstream]]
            name = "gw"
            address = "gw.example:443"
            """ + "\n" + config(backend: "address = \"127.0.0.1:1\"", listener: "backend = \"web\"\nupstream = \"gw\"")
        #expect(errorKeys(text).contains("listener[notify].backend"))
    }

    @Test func anUnknownProxyProtocolIsRefused() {
        #expect(errorKeys(config(backend: "address = \"127.0.0.1:1\"", listener: "backend = \"web\"\nproxy_protocol = \"v3\""))
            .contains("listener[notify].proxy_protocol"))
    }

    @Test func aMalformedSourceRangeIsRefused() {
        #expect(errorKeys(config(backend: "address = \"127.0.0.1:1\"", listener: "backend = \"web\"\nallow_sources = [\"10.0.0.0/33\"]"))
            .contains("listener[notify].allow_sources"))
    }
}

@Suite("Address ranges")
struct AddressRangeTests {
    @Test func ipv4RangesMatchByPrefix() throws {
        let range = try #require(AddressRange("203.0.113.0/24"))
        #expect(range.contains([203, 0, 113, 77]))
        #expect(!range.contains([203, 0, 114, 1]))
        #expect(range.description == "203.0.113.0/24")
    }

    @Test func hostBitsAreIgnoredAndBareAddressesAreSingleHosts() throws {
        #expect(try #require(AddressRange("10.9.8.7/8")).contains([10, 1, 1, 1]))
        let host = try #require(AddressRange("127.0.0.1"))
        #expect(host.contains([127, 0, 0, 1]) && !host.contains([127, 0, 0, 2]))
    }

    @Test func ipv4MappedAddressesMatchIPv4Ranges() throws {
        let mapped: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 168, 0, 1]
        #expect(try #require(AddressRange("192.168.0.0/16")).contains(mapped))
    }

    @Test func ipv6RangesMatchAndDoNotMatchIPv4() throws {
        let range = try #require(AddressRange("::1/128"))
        #expect(range.contains([UInt8](repeating: 0, count: 15) + [1]))
        #expect(!range.contains([127, 0, 0, 1]))
    }

    @Test("malformed ranges are rejected", arguments: ["10.0.0.0/33", "::/129", "10.0.0/8", "host/8", "10.0.0.0/-1", "10.0.0.0/8/8"])
    func malformed(text: String) {
        #expect(AddressRange(text) == nil)
    }
}
