import Testing
@testable import BridgeModel

@Suite("Listener validation")
struct ListenerValidationTests {
    static func listener(_ listen: String, unsafe: Bool? = nil) -> String {
        listenerConfig("name = \"l\"\nlisten = \"\(listen)\"\nupstream = \"sandbox\"" +
                       (unsafe.map { "\nunsafe_listen_public = \($0)" } ?? ""))
    }

    @Test("loopback addresses need no opt-in", arguments: ["127.0.0.1:8080", "[::1]:8080", "localhost:8080", "127.0.0.2:1"])
    func loopbackAccepted(listen: String) {
        #expect(configErrors(Self.listener(listen)).isEmpty)
    }

    @Test("a non-loopback address without unsafe_listen_public is refused with the reason",
          arguments: ["0.0.0.0:8080", "[::]:8080", "192.168.1.5:8080", "[2001:db8::5]:8080"])
    func publicRefused(listen: String) throws {
        let text = try #require(message(for: "listener[l].listen", in: Self.listener(listen)))
        #expect(text.contains("not a loopback address"))
        #expect(text.contains("client certificate"))
        #expect(text.contains("unsafe_listen_public = true"))
        #expect(configErrors(Self.listener(listen, unsafe: false)).map(\.key) == ["listener[l].listen"])
    }

    @Test("unsafe_listen_public = true allows a public address")
    func publicWithOptIn() throws {
        let config = try ConfigLoader.parse(Self.listener("0.0.0.0:8080", unsafe: true), baseDirectory: nil)
        #expect(config.listeners.first?.unsafeListenPublic == true)
    }

    @Test("listen must be an IP literal, not a name", arguments: ["merchant-gw.internal:8080", "example.com:80"])
    func namesRefused(listen: String) {
        #expect(message(for: "listener[l].listen", in: Self.listener(listen, unsafe: true))?.contains("is a name") == true)
    }

    @Test("listen needs a port", arguments: ["127.0.0.1", "::1:8080", "127.0.0.1:70000"])
    func malformedListen(listen: String) {
        #expect(message(for: "listener[l].listen", in: Self.listener(listen))?.contains("is not IP:port") == true)
    }

    @Test("an unknown accept mode lists the accepted values")
    func unknownAcceptMode() {
        let toml = listenerConfig("name = \"l\"\nlisten = \"127.0.0.1:1\"\nupstream = \"sandbox\"\naccept = \"ftp\"")
        #expect(message(for: "listener[l].accept", in: toml) == "\"ftp\" is not an accept mode; accepted values: \"plain\", \"tls\", \"http-proxy\"")
    }

    @Test("a config without any listener is refused", arguments: ["", "listener = []\n"])
    func noListener(declaration: String) {
        let toml = declaration + "[[upstream]]\nname = \"sandbox\"\naddress = \"sandbox.paygent.co.jp:443\"\n"
        #expect(errorKeys(toml) == ["listener"])
        #expect(message(for: "listener", in: toml)?.contains("no [[listener]]") == true)
    }

    @Test("listen and upstream are required")
    func requiredKeys() {
        let keys = errorKeys(listenerConfig("name = \"l\""))
        #expect(keys == ["listener[l].listen", "listener[l].upstream"])
    }
}
