/// ClientHellos real clients sent, as testssl.sh 3.0.8 recorded them (Debian's
/// /etc/testssl/client-simulation.txt, `handshakebytes`): the whole first record, hex.
///
/// Only two clients in that table send the SSLv2-compatible format (a record starting 0x80 with
/// 3-byte cipher specs): Java 6u45 and IE 6 on XP. testssl recorded OpenSSL 0.9.8y with SSLv2
/// switched off, so its hello is in the ordinary TLS format (with SNI): it is here to show that
/// format still reads as before.
enum RecordedClientHello {
    /// Java 6u45: SSLv2-format record, version 0x0301, 20 cipher specs (4 SSL 2.0 kinds, the
    /// renegotiation SCSV), no session id, 32-byte challenge.
    static let java6u45 = bytes(
        "8065010301003c0000002000000401008000000500002f00003300003200000a0700c00000160000130000090600400000150000"
            + "120000030200800000080000140000110000ff52173357f48ce6722f974dbb429b9279208d1cf5b9088947c9ba16d9ecbc0fa6")

    /// IE 6 on Windows XP: SSLv2-format record, version 0x0300 (SSL 3.0 at most), 18 cipher specs
    /// (5 SSL 2.0 kinds, the SCSV), 16-byte challenge.
    static let ie6XP = bytes(
        "804f01030000360000001000000400000500000a0100800700c00300800000090600400000640000620000030000060200800400800"
            + "000130000120000630000ffd9f61eed63ba552d0bca94dc016081a3")

    /// OpenSSL 0.9.8y as testssl recorded it: a TLS 1.0 record, SNI www.ssllabs.com, 21 suites.
    static let openSSL098y = bytes(
        "16030100730100006f0301521782e707c1a780d3124742f35573dbb693babe5d3a7e9405c706af18b636bf00002a00390038003500"
            + "160013000a00330032002f0007000500040015001200090014001100080006000300ff0100001c00000014001200000f7777772e"
            + "73736c6c6162732e636f6d00230000")

    private static func bytes(_ hex: String) -> [UInt8] {
        let digits = Array(hex.utf8)
        precondition(digits.count % 2 == 0, "odd number of hex digits")
        return stride(from: 0, to: digits.count, by: 2).map { UInt8(String(decoding: digits[$0..<$0 + 2], as: UTF8.self), radix: 16)! }
    }
}
