/// The upstream cipher floor: which parts of an OpenSSL cipher string the loader refuses.
///
/// A merchant's cipher string is passed to OpenSSL as written, so the check reads it the way
/// OpenSSL does: tokens separated by `:`, `,` or spaces, each an alias or suite name optionally
/// prefixed by `+`, and possibly joined with `+` (`EECDH+3DES`). Tokens starting with `!` or `-`
/// remove ciphers and are always fine. What enables broken or unauthenticated cryptography is
/// refused: (3)DES, RC2, RC4, NULL encryption, export grades, anonymous key exchange, MD5 MACs, and
/// `@SECLEVEL` below 2.
///
/// Broad aliases such as `ALL` or `HIGH` still include anonymous suites in OpenSSL. This text check
/// cannot see that; `UpstreamTLSContext` lists the ciphers the built context would really offer and
/// refuses the string if any of them is weak.
enum CipherPolicy {
    /// Dash-separated name parts that mark a weak suite or alias (compared in upper case).
    private static let weakParts: Set<String> = [
        "3DES", "DES", "RC2", "RC4", "NULL", "ENULL", "ANULL", "ADH", "AECDH", "ANON", "MD5",
        "COMPLEMENTOFALL", "COMPLEMENTOFDEFAULT",
    ]

    /// The tokens of a TLS 1.2 cipher string that enable something below the floor, as written.
    static func weakTokens(inCipherString text: String) -> [String] {
        tokens(of: text).filter { token in
            if token.hasPrefix("!") || token.hasPrefix("-") { return false }
            let upper = token.uppercased().drop { $0 == "+" }
            if upper.hasPrefix("@") { return lowersSecurityLevel(upper) }
            return upper.split(separator: "+").contains(where: isWeakName)
        }
    }

    /// The tokens of a merchant-side (downstream) cipher string that are refused even for legacy
    /// clients: no encryption, no authentication, export grades. 3DES, RC4 and MD5 stay possible
    /// there (where the linked OpenSSL still has them), because some legacy clients know nothing else.
    static func refusedTokens(inDownstreamCipherString text: String) -> [String] {
        let refused: Set<String> = ["NULL", "ENULL", "ANULL", "ADH", "AECDH", "ANON", "COMPLEMENTOFALL"]
        return tokens(of: text).filter { token in
            if token.hasPrefix("!") || token.hasPrefix("-") { return false }
            let upper = token.uppercased().drop { $0 == "+" }
            return upper.split(separator: "+").contains { name in
                name.split(separator: "-").contains { refused.contains(String($0)) || $0.hasPrefix("EXP") }
            }
        }
    }

    /// The TLS 1.3 suites that provide no encryption (RFC 9150 integrity-only suites), as written.
    static func weakTokens(inCipherSuites text: String) -> [String] {
        tokens(of: text).filter { token in
            let upper = token.uppercased()
            return upper.contains("NULL") || upper == "TLS_SHA256_SHA256" || upper == "TLS_SHA384_SHA384"
        }
    }

    /// Why a token was refused, for the error message.
    static func reason(forWeakToken token: String) -> String {
        token.uppercased().hasPrefix("@SECLEVEL")
            ? "security levels below 2 are not allowed upstream"
            : "it enables a broken or unauthenticated cipher"
    }

    private static func tokens(of text: String) -> [String] {
        text.split(whereSeparator: { $0 == ":" || $0 == "," || $0 == " " }).map(String.init)
    }

    private static func isWeakName(_ name: Substring) -> Bool {
        if name.contains("DES-CBC") { return true }
        return name.split(separator: "-").contains { part in
            weakParts.contains(String(part)) || part.hasPrefix("EXP")
        }
    }

    /// `@SECLEVEL` set to 0 or 1; other `@` directives (`@STRENGTH`) are harmless.
    private static func lowersSecurityLevel(_ directive: Substring) -> Bool {
        guard directive.hasPrefix("@SECLEVEL=") else { return false }
        let level = directive.dropFirst("@SECLEVEL=".count)
        guard isDecimalDigits(level), let value = Int(level) else { return true }
        return value < 2
    }
}
