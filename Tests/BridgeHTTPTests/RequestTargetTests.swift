import Testing
@testable import BridgeHTTP

@Suite("Request targets")
struct RequestTargetTests {
    private func target(_ method: String, _ text: String) -> ProxyRequestHead.Target? {
        requestHead("\(method) \(text) HTTP/1.1\r\n\r\n")?.target
    }

    private func refusal(_ method: String, _ text: String) -> HTTPParseError? {
        requestError("\(method) \(text) HTTP/1.1\r\n\r\n")
    }

    @Test("reads CONNECT targets: names lowercased, IPv4, and IPv6 without brackets")
    func connectTargets() {
        #expect(target("CONNECT", "Gateway.Example:443") == .authority(host: "gateway.example", port: 443))
        #expect(target("CONNECT", "192.0.2.7:8443") == .authority(host: "192.0.2.7", port: 8443))
        #expect(target("CONNECT", "[2001:DB8::7]:443") == .authority(host: "2001:db8::7", port: 443))
        #expect(target("CONNECT", "[::ffff:192.0.2.1]:1") == .authority(host: "::ffff:192.0.2.1", port: 1))
        #expect(target("CONNECT", "pay_gw.example:65535") == .authority(host: "pay_gw.example", port: 65535))
    }

    @Test("refuses CONNECT targets that are not host:port", arguments: [
        "gateway.example", "gateway.example:", "/", "*", "http://gateway.example:443/", "[::1]", "::1:443",
    ])
    func connectNeedsAuthority(text: String) {
        #expect(refusal("CONNECT", text)?.status == 400)
    }

    @Test("a refused CONNECT target's reason is plain words, never Swift's debug text", arguments: [
        ("gateway.example", "CONNECT target has no port"),
        ("user@gateway.example:443", "CONNECT target contains user information (@), which is not accepted"),
        ("gateway.example:0", "CONNECT target has a port outside 1-65535"),
        ("gate..way:443", "CONNECT target is not a DNS name or IP address"),
    ])
    func connectRefusalReason(text: String, reason: String) {
        #expect(refusal("CONNECT", text)?.reason == reason)
    }

    @Test("refuses ports outside 1-65535", arguments: ["0", "65536", "99999", "443443", "+443", "-1", "44a"])
    func badPorts(port: String) {
        #expect(refusal("CONNECT", "gateway.example:\(port)")?.status == 400)
        #expect(refusal("GET", "http://gateway.example:\(port)/")?.status == 400)
    }

    @Test("reads absolute-form URLs: scheme and host lowercased, path and query as sent")
    func absoluteForm() {
        #expect(target("POST", "HTTP://Gateway.Example/Pay?Order=1") ==
            .absolute(scheme: "http", host: "gateway.example", port: nil, pathAndQuery: "/Pay?Order=1"))
        #expect(target("GET", "https://gateway.example:8443/a/b") ==
            .absolute(scheme: "https", host: "gateway.example", port: 8443, pathAndQuery: "/a/b"))
        #expect(target("GET", "http://[2001:db8::1]:8080/x") ==
            .absolute(scheme: "http", host: "2001:db8::1", port: 8080, pathAndQuery: "/x"))
        #expect(target("GET", "http://gateway.example:/x") ==
            .absolute(scheme: "http", host: "gateway.example", port: nil, pathAndQuery: "/x"))
    }

    @Test("gives an empty path as / and keeps a query that follows the host directly")
    func emptyPath() {
        #expect(target("GET", "http://gateway.example") ==
            .absolute(scheme: "http", host: "gateway.example", port: nil, pathAndQuery: "/"))
        #expect(target("GET", "http://gateway.example?x=1") ==
            .absolute(scheme: "http", host: "gateway.example", port: nil, pathAndQuery: "/?x=1"))
    }

    @Test("parses schemes other than http and https, leaving the refusal to the session")
    func otherSchemes() {
        #expect(target("GET", "ftp://files.example/a") ==
            .absolute(scheme: "ftp", host: "files.example", port: nil, pathAndQuery: "/a"))
    }

    @Test("refuses user information in the URL")
    func userinfo() {
        let error = refusal("GET", "http://user:secret@gateway.example/")
        #expect(error?.status == 400)
        #expect(error?.reason.contains("user information") == true)
        #expect(error?.reason.contains("secret") == false)
        #expect(refusal("GET", "http://gateway.example@evil.example/")?.status == 400)
    }

    @Test("refuses hosts that are not DNS names or IP literals", arguments: [
        "http://gate%2eway.example/", "http://gateway.example./", "http://gate..way/", "http://.gateway/",
        "http://-gateway.example/", "http://gateway!.example/", "http://127.1/", "http://0x7f.0.0.1/",
        "http://017700000001/", "http://0x7f000001/", "http://999.0.0.1/", "http://010.0.0.1/", "http://a.123/",
        "http://[fe80::1%25eth0]/", "http://[v1.x]/", "http://[1:2:3:4:5:6:7:8:9]/", "http://[::1::2]/",
        "http://[192.0.2.1]/", "http:///path", "http://:80/",
    ])
    func badHosts(url: String) {
        #expect(refusal("GET", url)?.status == 400)
    }

    @Test("refuses fragments in targets")
    func fragments() {
        #expect(refusal("GET", "http://gateway.example/#top")?.status == 400)
        #expect(refusal("GET", "/a#top")?.status == 400)
    }

    @Test("reads origin-form targets, which the session refuses toward a proxy")
    func originForm() {
        #expect(target("GET", "/pay?x=1") == .origin(pathAndQuery: "/pay?x=1"))
    }

    @Test("allows * only with OPTIONS")
    func asterisk() {
        #expect(target("OPTIONS", "*") == .asterisk)
        #expect(refusal("GET", "*")?.reason == "the target * is only valid with OPTIONS")
    }

    @Test("allows host:port only with CONNECT")
    func authorityOnlyWithConnect() {
        #expect(refusal("GET", "gateway.example:443")?.reason == "a host:port target (authority-form) is only valid with CONNECT")
        #expect(refusal("OPTIONS", "gateway.example:443")?.status == 400)
    }

    @Test("refuses targets that are neither URLs nor paths", arguments: ["gateway.example", "mailto:a@b.example", "1http://a/"])
    func neitherForm(text: String) {
        #expect(refusal("GET", text)?.status == 400)
    }

    @Test("names the host for a Host header: IPv6 in brackets, port only when written")
    func hostHeaderValue() {
        #expect(ProxyRequestHead.Target.absolute(scheme: "http", host: "a.example", port: nil, pathAndQuery: "/").hostHeaderValue == "a.example")
        #expect(ProxyRequestHead.Target.absolute(scheme: "http", host: "::1", port: 8080, pathAndQuery: "/").hostHeaderValue == "[::1]:8080")
        #expect(ProxyRequestHead.Target.authority(host: "a.example", port: 443).hostHeaderValue == "a.example:443")
        #expect(ProxyRequestHead.Target.origin(pathAndQuery: "/").hostHeaderValue == nil)
    }
}
