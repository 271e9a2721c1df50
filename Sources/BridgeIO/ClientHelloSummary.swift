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
    /// How many suites were offered in all (SSL 2.0 cipher kinds included, signalling values not).
    public var totalCiphers: Int
    /// The hello came in the SSLv2-compatible format (Java 6, IE 6, OpenSSL 0.9.8's default method):
    /// 3-byte cipher specs and no extensions, so never an SNI.
    public var isSSLv2Format: Bool

    init?(ssl: OpaquePointer) {
        var hello = tb_client_hello()
        guard tb_ssl_client_hello(ssl, &hello) == 1 else { return nil }
        maxVersionNumber = Int(hello.max_version)
        maxVersion = Self.versionName(maxVersionNumber)
        serverName = hello.has_sni == 1 ? withUnsafeBytes(of: hello.sni) { bytes in
            Self.escaped(bytes.prefix(max(0, min(Int(hello.sni_length), bytes.count - 1))))
        } : nil
        let codes = withUnsafeBytes(of: hello.ciphers) { Array($0.bindMemory(to: UInt32.self)) }
        ciphers = codes.prefix(Int(hello.cipher_count)).map { code in
            // An SSL 2.0 cipher kind has no TLS code point, so OpenSSL has no name for it.
            let name = UInt16(exactly: code).flatMap { string(fromC: tb_cipher_name_for_code(ssl, $0)) }
            return OfferedCipher(code: code, openSSLName: name)
        }
        totalCiphers = Int(hello.total_ciphers)
        isSSLv2Format = hello.is_v2 == 1
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
