internal import COpenSSL

/// The link of the session log's tamper-evidence chain (`[log] chain = true`): what the writer
/// (BridgeEngine's session log) puts in each record's `prev`, and what `report --verify`
/// (BridgeReport's `LogChain`) checks. One definition for both sides.
public enum ChainDigest {
    /// The `prev` of the first record of a chain.
    public static let genesis = "genesis"

    /// Lowercase hex SHA-256 of one line's exact bytes, without its newline: the `prev` the next record
    /// must carry. Uses OpenSSL's `EVP_Digest`; thread-safe.
    public static func digest(ofLine line: [UInt8]) -> String {
        line.withUnsafeBytes { digest(of: $0) }
    }

    public static func digest(of bytes: UnsafeRawBufferPointer) -> String {
        var md = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        let ok = md.withUnsafeMutableBytes { out in
            EVP_Digest(bytes.baseAddress ?? UnsafeRawPointer(out.baseAddress!), bytes.count,
                       out.baseAddress!.assumingMemoryBound(to: UInt8.self), &length, EVP_sha256(), nil)
        }
        // EVP_Digest with SHA-256 only fails when OpenSSL cannot allocate a context.
        precondition(ok == 1 && length == 32, "OpenSSL EVP_Digest(SHA-256) failed")
        return hex(md[0..<32])
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    private static func hex(_ bytes: ArraySlice<UInt8>) -> String {
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            out.append(hexDigits[Int(byte >> 4)])
            out.append(hexDigits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
