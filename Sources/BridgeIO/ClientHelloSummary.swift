internal import COpenSSL
internal import CBridgeShims

/// What a TLS client offered in its ClientHello: enough to explain a failed handshake to an
/// operator, nothing more (no random, no session id, no key shares).
public struct ClientHelloSummary: Sendable {
    /// The highest version offered, as OpenSSL names versions ("TLSv1", "TLSv1.2", "SSLv3").
    public var maxVersion: String
    /// The same as a protocol number (0x0301 for TLS 1.0).
    public var maxVersionNumber: Int
    /// The SNI host name, if the client sent one: every byte of it, with anything but printable
    /// ASCII (a NUL, a control byte, UTF-8) and the backslash escaped as `\xHH` / `\\`.
    public var serverName: String?
    /// The first suites offered, in the client's order.
    public var ciphers: [OfferedCipher]
    /// How many suites were offered in all.
    public var totalCiphers: Int

    init?(ssl: OpaquePointer) {
        var hello = tb_client_hello()
        guard tb_ssl_client_hello(ssl, &hello) == 1 else { return nil }
        maxVersionNumber = Int(hello.max_version)
        maxVersion = Self.versionName(maxVersionNumber)
        serverName = hello.has_sni == 1 ? withUnsafeBytes(of: hello.sni) { bytes in
            Self.escaped(bytes.prefix(max(0, min(Int(hello.sni_length), bytes.count - 1))))
        } : nil
        let codes = withUnsafeBytes(of: hello.ciphers) { Array($0.bindMemory(to: UInt16.self)) }
        ciphers = codes.prefix(Int(hello.cipher_count)).map { code in
            OfferedCipher(code: code, openSSLName: string(fromC: tb_cipher_name_for_code(ssl, code)))
        }
        totalCiphers = Int(hello.total_ciphers)
    }

    /// Client bytes as a log-safe string: printable ASCII as is, `\` doubled, anything else `\xHH`.
    static func escaped<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> String {
        var text = ""
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "\\"): text += "\\\\"
            case 0x20...0x7E: text.unicodeScalars.append(Unicode.Scalar(byte))
            default: text += "\\x" + (byte < 0x10 ? "0" : "") + String(byte, radix: 16)
            }
        }
        return text
    }

    /// OpenSSL's spelling of a protocol number.
    static func versionName(_ number: Int) -> String {
        switch number {
        case 0x0300: "SSLv3"
        case 0x0301: "TLSv1"
        case 0x0302: "TLSv1.1"
        case 0x0303: "TLSv1.2"
        case 0x0304: "TLSv1.3"
        default: number < 0x0300 ? "SSLv2" : "0x\(String(number, radix: 16))"
        }
    }
}

/// One cipher suite a client offered.
public struct OfferedCipher: Sendable, CustomStringConvertible {
    /// IANA code point.
    public var code: UInt16
    /// OpenSSL's name, or nil when this OpenSSL build does not know the suite at all.
    public var openSSLName: String?

    /// Is this a 3DES or RC4 suite (which Debian's OpenSSL is built without)?
    public var isThreeDESOrRC4: Bool {
        if let known = Self.legacySuites[code] { return known.contains("3DES") || known.contains("RC4") }
        return openSSLName.map { $0.contains("DES-CBC3") || $0.contains("RC4") } ?? false
    }

    /// "AES128-SHA", or "0x000A (TLS_RSA_WITH_3DES_EDE_CBC_SHA, not available in this OpenSSL)".
    public var description: String {
        if let openSSLName { return openSSLName }
        let hex = String(code, radix: 16, uppercase: true)
        let code = "0x" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
        if let known = Self.legacySuites[self.code] { return "\(code) (\(known), not available in this OpenSSL)" }
        return "\(code) (not available in this OpenSSL)"
    }

    /// Legacy suites that old clients still offer and that OpenSSL builds may lack, by IANA name.
    static let legacySuites: [UInt16: String] = [
        0x0003: "TLS_RSA_EXPORT_WITH_RC4_40_MD5", 0x0004: "TLS_RSA_WITH_RC4_128_MD5", 0x0005: "TLS_RSA_WITH_RC4_128_SHA",
        0x0008: "TLS_RSA_EXPORT_WITH_DES40_CBC_SHA", 0x0009: "TLS_RSA_WITH_DES_CBC_SHA",
        0x000A: "TLS_RSA_WITH_3DES_EDE_CBC_SHA", 0x0013: "TLS_DHE_DSS_WITH_3DES_EDE_CBC_SHA",
        0x0016: "TLS_DHE_RSA_WITH_3DES_EDE_CBC_SHA", 0xC007: "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA",
        0xC008: "TLS_ECDHE_ECDSA_WITH_3DES_EDE_CBC_SHA", 0xC011: "TLS_ECDHE_RSA_WITH_RC4_128_SHA",
        0xC012: "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
    ]
}
