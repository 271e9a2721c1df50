import BridgeModel
import CBridgeShims
import COpenSSL
import Testing
@testable import BridgeIO

/// SSLv2-compatible ClientHellos (Java 6, IE 6, OpenSSL 0.9.8's default method) carry 3-byte cipher
/// specs. The record's `downstream.offered` is the migration evidence for exactly these clients, so
/// their specs must read as the suites they are, in order, with SSL 2.0-only kinds named as such.
@Suite struct SSLv2ClientHelloTests {
    /// What a default legacy listener (min_version TLS1.0, default ciphers) observes when `flight`
    /// is a client's first bytes. The handshake goes no further (the context has no certificate and
    /// nobody answers), but OpenSSL runs the observer before anything that could stop it.
    private func observed(_ flight: [UInt8]) throws -> ClientHelloSummary {
        let listener = ListenerConfig(name: "legacy", listen: HostPort(host: "127.0.0.1", port: 8443), accept: .tls,
                                      upstream: nil, tls: DownstreamTLSConfig(minVersion: .tls10))
        let context = try DownstreamTLSContext(listener: listener)
        let ssl = try #require(context.makeConnection())
        defer { SSL_free(ssl) }
        let input = try #require(BIO_new(BIO_s_mem()))
        guard let output = BIO_new(BIO_s_mem()) else {
            BIO_free(input)
            throw BIOAllocationFailed()
        }
        SSL_set_bio(ssl, input, output)  // the SSL owns both from here
        #expect(BIO_write(input, flight, Int32(flight.count)) == Int32(flight.count))
        _ = SSL_accept(ssl)
        ERR_clear_error()
        return try #require(ClientHelloSummary(ssl: ssl))
    }

    private struct BIOAllocationFailed: Error {}

    // The expected orders agree with testssl's own `ciphers` line for each client (OpenSSL names, the
    // SSL 2.0 kinds under their old OpenSSL names: RC4-MD5, DES-CBC3-MD5, RC2-CBC-MD5, DES-CBC-MD5).

    @Test func java6u45SSLv2HelloListsItsSuitesInTheClientsOrder() throws {
        let offered = try observed(RecordedClientHello.java6u45)
        #expect(offered.isSSLv2Format)
        #expect(offered.maxVersion == "TLSv1" && offered.maxVersionNumber == 0x0301)
        #expect(offered.serverName == nil)
        #expect(offered.ciphers.map { Int($0.code) } == [
            0x0004, 0x01_0080, 0x0005, 0x002F, 0x0033, 0x0032, 0x000A, 0x07_00C0, 0x0016, 0x0013, 0x0009, 0x06_0040,
        ])
        // 20 specs, less the renegotiation SCSV.
        #expect(offered.totalCiphers == 19)
        #expect(offered.ciphers[3].description == "AES128-SHA")
        #expect(offered.ciphers[4].description == "DHE-RSA-AES128-SHA")
        #expect(offered.ciphers[5].description == "DHE-DSS-AES128-SHA")
        #expect(offered.ciphers[1].description == "SSLv2 0x010080 (SSL_CK_RC4_128_WITH_MD5, SSL 2.0 only)")
        #expect(offered.ciphers[7].description == "SSLv2 0x0700C0 (SSL_CK_DES_192_EDE3_CBC_WITH_MD5, SSL 2.0 only)")
    }

    @Test func ie6XPSSLv2HelloShowsSSLv3AndItsSuites() throws {
        let offered = try observed(RecordedClientHello.ie6XP)
        #expect(offered.isSSLv2Format)
        #expect(offered.maxVersion == "SSLv3")
        #expect(offered.serverName == nil)
        #expect(offered.ciphers.map { Int($0.code) } == [
            0x0004, 0x0005, 0x000A, 0x01_0080, 0x07_00C0, 0x03_0080, 0x0009, 0x06_0040, 0x0064, 0x0062, 0x0003, 0x0006,
        ])
        // 18 specs, less the renegotiation SCSV.
        #expect(offered.totalCiphers == 17)
    }

    @Test func openSSL098yTLSFormatHelloReadsAsBefore() throws {
        let offered = try observed(RecordedClientHello.openSSL098y)
        #expect(!offered.isSSLv2Format)
        #expect(offered.maxVersion == "TLSv1")
        #expect(offered.serverName == "www.ssllabs.com")
        #expect(offered.ciphers.map { Int($0.code) } == [
            0x0039, 0x0038, 0x0035, 0x0016, 0x0013, 0x000A, 0x0033, 0x0032, 0x002F, 0x0007, 0x0005, 0x0004,
        ])
        #expect(offered.totalCiphers == 20)
        #expect(offered.ciphers[2].description == "AES256-SHA")
    }

    // MARK: the cipher list parser alone, no handshake

    /// The cipher specs of an SSLv2-format hello: after the record header (2), the message type (1),
    /// the version (2) and the three lengths (specs, session id, challenge: 2 each).
    private func cipherSpecs(_ hello: [UInt8]) -> [UInt8] {
        let length = Int(hello[5]) << 8 | Int(hello[6])
        return Array(hello[11..<11 + length])
    }

    private func parsed(_ list: [UInt8], v2: Bool) -> (codes: [UInt32], total: Int) {
        var hello = tb_client_hello()
        tb_parse_cipher_list(list, list.count, v2 ? 1 : 0, &hello)
        let codes = withUnsafeBytes(of: hello.ciphers) { Array($0.bindMemory(to: UInt32.self)) }
        return (Array(codes.prefix(Int(hello.cipher_count))), Int(hello.total_ciphers))
    }

    @Test func java6u45CipherSpecsParseAsTLSSuitesAndSSLv2Kinds() {
        let (codes, total) = parsed(cipherSpecs(RecordedClientHello.java6u45), v2: true)
        #expect(codes == [0x0004, 0x01_0080, 0x0005, 0x002F, 0x0033, 0x0032, 0x000A, 0x07_00C0, 0x0016, 0x0013, 0x0009, 0x06_0040])
        #expect(total == 19)
    }

    @Test func ie6XPCipherSpecsParseAsTLSSuitesAndSSLv2Kinds() {
        let (codes, total) = parsed(cipherSpecs(RecordedClientHello.ie6XP), v2: true)
        #expect(codes == [0x0004, 0x0005, 0x000A, 0x01_0080, 0x07_00C0, 0x03_0080, 0x0009, 0x06_0040, 0x0064, 0x0062, 0x0003, 0x0006])
        #expect(total == 17)
    }

    @Test func signallingSpecsAreSkippedOnlyWhenTheyAreTLSCodes() {
        let specs: [UInt8] = [
            0x00, 0x00, 0xFF,  // renegotiation SCSV: skipped
            0x01, 0x00, 0xFF,  // an SSL 2.0 kind that merely ends like it: kept
            0x00, 0x0A, 0x0A,  // GREASE as a TLS code: skipped
            0x0A, 0x0A, 0x0A,  // an (unknown) SSL 2.0 kind: kept
            0x00, 0x56, 0x00,  // fallback SCSV: skipped
            0x00, 0x2F,        // a partial spec at the end: ignored
        ]
        let (codes, total) = parsed(specs, v2: true)
        #expect(codes == [0x01_00FF, 0x0A_0A0A])
        #expect(total == 2)
    }

    @Test func twoByteCipherListsStillReadAsCodePoints() {
        let (codes, total) = parsed([0x00, 0x2F, 0x00, 0xFF, 0x0A, 0x0A, 0xC0, 0x13, 0x00], v2: false)
        #expect(codes == [0x002F, 0xC013])
        #expect(total == 2)
    }

    @Test("an SSL 2.0 kind reads as what it is, and counts as 3DES/RC4 when it is", arguments: [
        (UInt32(0x01_0080), "SSLv2 0x010080 (SSL_CK_RC4_128_WITH_MD5, SSL 2.0 only)", true),
        (0x02_0080, "SSLv2 0x020080 (SSL_CK_RC4_128_EXPORT40_WITH_MD5, SSL 2.0 only)", true),
        (0x07_00C0, "SSLv2 0x0700C0 (SSL_CK_DES_192_EDE3_CBC_WITH_MD5, SSL 2.0 only)", true),
        (0x06_0040, "SSLv2 0x060040 (SSL_CK_DES_64_CBC_WITH_MD5, SSL 2.0 only)", false),
        (0x0A_0A0A, "SSLv2 0x0A0A0A (unknown SSL 2.0 cipher kind)", false),
        (0x000A, "0x000A (TLS_RSA_WITH_3DES_EDE_CBC_SHA, not available in this OpenSSL)", true),
    ])
    func sslv2KindDescription(code: UInt32, description: String, weak: Bool) {
        let cipher = OfferedCipher(code: code, openSSLName: nil)
        #expect(cipher.description == description)
        #expect(cipher.isThreeDESOrRC4 == weak)
    }
}
