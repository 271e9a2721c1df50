import Testing
@testable import BridgeModel

@Suite("isLoopback")
struct LoopbackTests {
    @Test("is true for 127.0.0.0/8, ::1 and localhost", arguments: [
        "127.0.0.1", "127.255.255.254", "127.1.2.3", "::1", "0:0:0:0:0:0:0:1", "[::1]", "localhost", "LOCALHOST",
        "::ffff:127.0.0.1",
    ])
    func loopback(host: String) {
        #expect(isLoopback(host))
    }

    @Test("is false for wildcard, private, public addresses and other names", arguments: [
        "0.0.0.0", "::", "10.0.0.1", "192.168.1.10", "128.0.0.1", "126.255.255.255", "::2", "::ffff:10.0.0.1",
        "localhost.example", "loopback", "127.0.0.1.nip.io", "",
    ])
    func notLoopback(host: String) {
        #expect(!isLoopback(host))
    }
}
