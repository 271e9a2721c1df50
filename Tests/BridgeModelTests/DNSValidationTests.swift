import Testing
@testable import BridgeModel

@Suite("DNS validation")
struct DNSValidationTests {
    @Test("name servers may be IP literals with or without a port", arguments: [
        "127.0.0.1", "127.0.0.1:5353", "::1", "[::1]:53", "[2001:db8::53]:5353",
    ])
    func accepted(nameserver: String) throws {
        let config = try ConfigLoader.parse("[dns]\nnameservers = [\"\(nameserver)\"]\n" + minimalConfig, baseDirectory: nil)
        #expect(config.dns.nameservers == [nameserver])
    }

    @Test("name servers must be IP literals", arguments: ["dns.google", "dns.google:53", "127.0.0.1:0", "1.2.3", "[::1]", ""])
    func refused(nameserver: String) {
        #expect(message(for: "dns.nameservers", in: "[dns]\nnameservers = [\"\(nameserver)\"]\n" + minimalConfig)?
            .contains("must be IP literals") == true)
    }

    @Test("the resolver timeout must be a positive duration")
    func timeout() {
        #expect(message(for: "dns.timeout", in: "[dns]\ntimeout = \"0s\"\n" + minimalConfig) == "must be greater than zero")
    }
}
