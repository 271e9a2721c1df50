import Testing
@testable import BridgeHTTP

@Suite("Basic proxy credentials")
struct BasicCredentialsTests {
    private func decode(_ value: String?) -> [String]? {
        basicCredentials(value).map { [$0.user, $0.password] }
    }

    @Test("decodes user and password, splitting at the first colon")
    func decodes() {
        #expect(decode("Basic bWVyY2hhbnQ6czNjcjN0") == ["merchant", "s3cr3t"])  // merchant:s3cr3t
        #expect(decode("basic   YTpiOmM=") == ["a", "b:c"])  // a:b:c
        #expect(decode("BASIC YTo=") == ["a", ""])  // a:
        #expect(decode("Basic OnA=") == ["", "p"])  // :p
        #expect(decode("Basic w7w6w6Q=") == ["ü", "ä"])  // ü:ä in UTF-8
    }

    @Test("refuses other schemes and missing or malformed parts", arguments: [
        "Bearer bWVyY2hhbnQ6czNjcjN0", "Basic", "Basic ", "BasicYTpi", "Basic\tYTpi", "Basic YWJj",
        "Basic YTpi\r\n", "Basic YTp ", "Basic YTpiYw", "Basic YTpiYw=", "Basic YT=i", "Basic YTpiY===",
        "Basic YTpi-w==", "Basic YTpi_w==", "Basic YTpiYw==YTpi", "Basic YTpiYx==", "Basic YTpiYy=",
        "Basic =TpiYw==",
    ])
    func refuses(value: String) {
        #expect(decode(value) == nil)
    }

    @Test("refuses a missing header")
    func missing() {
        #expect(decode(nil) == nil)
    }

    @Test("refuses credentials that are not UTF-8 or contain control characters")
    func refusesBadText() {
        #expect(decode("Basic YTr/") == nil)  // a: 0xFF
        #expect(decode("Basic YToKYg==") == nil)  // a:\nb
        #expect(decode("Basic YQBiOmM=") == nil)  // a\0b:c
    }

    @Test("decodes the whole base64 alphabet, including + and /")
    func alphabet() {
        #expect(Base64.decode(Array("+/+/".utf8)) == [0xFB, 0xFF, 0xBF])
        #expect(Base64.decode(Array("AAAA".utf8)) == [0, 0, 0])
        #expect(Base64.decode(Array("////".utf8)) == [0xFF, 0xFF, 0xFF])
        #expect(Base64.decode(Array("QUJD".utf8)) == Array("ABC".utf8))
        #expect(Base64.decode(Array("MDEyMzQ1Njc4OXp6".utf8)) == Array("0123456789zz".utf8))
        #expect(Base64.decode(Array("".utf8)) == nil)
    }
}
