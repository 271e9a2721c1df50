import Testing
@testable import BridgeModel

@Suite("parseHostPort")
struct HostPortParsingTests {
    @Test("splits IPv4, bracketed IPv6 and names from their port", arguments: [
        ("127.0.0.1:8080", HostPort(host: "127.0.0.1", port: 8080)),
        ("[::1]:8080", HostPort(host: "::1", port: 8080)),
        ("[2001:db8::8]:443", HostPort(host: "2001:db8::8", port: 443)),
        ("[::ffff:192.0.2.1]:443", HostPort(host: "::ffff:192.0.2.1", port: 443)),
        ("sandbox.paygent.co.jp:443", HostPort(host: "sandbox.paygent.co.jp", port: 443)),
        ("localhost:1", HostPort(host: "localhost", port: 1)),
        ("gw:65535", HostPort(host: "gw", port: 65535)),
    ])
    func parses(text: String, expected: HostPort) {
        #expect(parseHostPort(text) == expected)
    }

    @Test("rejects a missing, zero or out-of-range port, unbracketed IPv6 and malformed hosts", arguments: [
        "127.0.0.1", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:-1", "127.0.0.1:+80", "127.0.0.1:http",
        "::1:8080", "[::1]", "[::1:8080", "[]:80", "[host.example]:443", "[1:2:3:4:5:6:7:8:9]:80", "[::1::2]:80",
        ":443", "bad host:443", "-gw.example:443", "gw..example:443", "127.1:80", "999.0.0.1:80", "010.0.0.1:80",
        "[fe80::1%eth0]:80",
    ])
    func rejects(text: String) {
        #expect(parseHostPort(text) == nil)
    }

    @Test("writes IPv6 back with brackets")
    func describesIPv6WithBrackets() throws {
        let hostPort = try #require(parseHostPort("[::1]:8080"))
        #expect(hostPort.description == "[::1]:8080")
    }
}
