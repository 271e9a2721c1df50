/// One cipher suite a client offered: a TLS suite, or, in an SSLv2-compatible hello, an SSL 2.0
/// cipher kind (offered in case the server speaks SSL 2.0, which no OpenSSL 3 does).
public struct OfferedCipher: Sendable, CustomStringConvertible {
    /// The IANA code point of a TLS suite (at most 0xFFFF), or an SSL 2.0 cipher kind's 3-byte
    /// value (0x010080 and up: its first byte is never 0).
    public var code: UInt32
    /// OpenSSL's name, or nil when this OpenSSL build does not know the suite at all (always nil
    /// for an SSL 2.0 kind).
    public var openSSLName: String?

    /// Is this an SSL 2.0 cipher kind rather than a TLS suite?
    public var isSSLv2Kind: Bool { code > 0xFFFF }

    /// Is this a 3DES or RC4 suite or SSL 2.0 kind (which Debian's OpenSSL is built without)?
    public var isThreeDESOrRC4: Bool {
        if isSSLv2Kind { return Self.sslv2Kinds[code].map { $0.contains("RC4") || $0.contains("EDE3") } ?? false }
        if let known = Self.legacySuites[code] { return known.contains("3DES") || known.contains("RC4") }
        return openSSLName.map { $0.contains("DES-CBC3") || $0.contains("RC4") } ?? false
    }

    /// "AES128-SHA", "0x000A (TLS_RSA_WITH_3DES_EDE_CBC_SHA, not available in this OpenSSL)", or
    /// "SSLv2 0x010080 (SSL_CK_RC4_128_WITH_MD5, SSL 2.0 only)".
    public var description: String {
        if let openSSLName { return openSSLName }
        if isSSLv2Kind {
            let kind = "SSLv2 " + Self.hex(code, digits: 6)
            if let known = Self.sslv2Kinds[code] { return "\(kind) (\(known), SSL 2.0 only)" }
            return "\(kind) (unknown SSL 2.0 cipher kind)"
        }
        let code = Self.hex(code, digits: 4)
        if let known = Self.legacySuites[self.code] { return "\(code) (\(known), not available in this OpenSSL)" }
        return "\(code) (not available in this OpenSSL)"
    }

    private static func hex(_ value: UInt32, digits: Int) -> String {
        let hex = String(value, radix: 16, uppercase: true)
        return "0x" + String(repeating: "0", count: max(0, digits - hex.count)) + hex
    }

    /// Legacy suites that old clients still offer and that OpenSSL builds may lack, by IANA name.
    static let legacySuites: [UInt32: String] = [
        0x0003: "TLS_RSA_EXPORT_WITH_RC4_40_MD5", 0x0004: "TLS_RSA_WITH_RC4_128_MD5", 0x0005: "TLS_RSA_WITH_RC4_128_SHA",
        0x0008: "TLS_RSA_EXPORT_WITH_DES40_CBC_SHA", 0x0009: "TLS_RSA_WITH_DES_CBC_SHA",
        0x000A: "TLS_RSA_WITH_3DES_EDE_CBC_SHA", 0x0013: "TLS_DHE_DSS_WITH_3DES_EDE_CBC_SHA",
        0x0016: "TLS_DHE_RSA_WITH_3DES_EDE_CBC_SHA", 0xC007: "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA",
        0xC008: "TLS_ECDHE_ECDSA_WITH_3DES_EDE_CBC_SHA", 0xC011: "TLS_ECDHE_RSA_WITH_RC4_128_SHA",
        0xC012: "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
    ]

    /// The cipher kinds the SSL 2.0 specification defines, by its names.
    static let sslv2Kinds: [UInt32: String] = [
        0x01_0080: "SSL_CK_RC4_128_WITH_MD5", 0x02_0080: "SSL_CK_RC4_128_EXPORT40_WITH_MD5",
        0x03_0080: "SSL_CK_RC2_128_CBC_WITH_MD5", 0x04_0080: "SSL_CK_RC2_128_CBC_EXPORT40_WITH_MD5",
        0x05_0080: "SSL_CK_IDEA_128_CBC_WITH_MD5", 0x06_0040: "SSL_CK_DES_64_CBC_WITH_MD5",
        0x07_00C0: "SSL_CK_DES_192_EDE3_CBC_WITH_MD5",
    ]
}
