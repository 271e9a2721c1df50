/// The cipher floors: which parts of an OpenSSL cipher string the loader refuses, upstream (the
/// gateway) and downstream (the merchant's side).
///
/// A merchant's cipher string is passed to OpenSSL as written, so the check reads it the way
/// OpenSSL 3 does. Tokens are separated by `:`, `,`, space *or* `;`. Inside a token a rule starts
/// with an optional `!` or `-` (remove), `+` (move to the end) or `@` (a directive such as
/// `@SECLEVEL=0`), followed by names joined with `+` (`EECDH+3DES`); a `!` or `@` after a name
/// starts a new rule without any separator (`HIGH!aNULL`, `ECDHE+AESGCM@SECLEVEL=0`). Any other
/// character that cannot be part of a name is an error to OpenSSL 3.0; here it also starts a new
/// rule, so nothing written after it escapes the check whatever another OpenSSL version makes of it.
/// Removals are always fine; a `+` rule only reorders, but a string that names a weak suite in one
/// is refused all the same.
///
/// Upstream refuses what enables broken or unauthenticated cryptography: (3)DES, RC2, RC4, NULL
/// encryption, export grades, anonymous key exchange, MD5 MACs, and `@SECLEVEL` below
/// `UpstreamConfig.minimumSecurityLevel`. Downstream refuses no encryption, no authentication and
/// export grades here; 3DES, RC4 and MD5 names are left to the built context, which refuses any
/// such suite the linked OpenSSL really has (Debian's has none).
///
/// This text check cannot see what broad aliases expand to (`ALL` and `HIGH` include anonymous
/// suites). Every TLS context therefore lists the suites and the security level it really built
/// and refuses what its side may never have, whatever string produced it (`TLSContextAudit` in
/// BridgeIO): this check gives earlier, token-precise messages; that one is the guarantee.
enum CipherPolicy {
    /// Dash-separated name parts that mark a weak suite or alias (compared in upper case).
    private static let weakParts: Set<String> = [
        "3DES", "DES", "RC2", "RC4", "NULL", "ENULL", "ANULL", "ADH", "AECDH", "ANON", "MD5",
        "COMPLEMENTOFALL", "COMPLEMENTOFDEFAULT",
    ]

    /// Name parts refused even for legacy merchants: no encryption, no authentication.
    private static let unprotectedParts: Set<String> = [
        "NULL", "ENULL", "ANULL", "ADH", "AECDH", "ANON", "COMPLEMENTOFALL", "COMPLEMENTOFDEFAULT",
    ]

    /// The characters OpenSSL's cipher string separates tokens with.
    static let separators: Set<Character> = [":", ",", " ", ";"]

    /// The tokens of a TLS 1.2 cipher string that enable something below the upstream floor, as written.
    static func weakTokens(inCipherString text: String) -> [String] {
        tokens(of: text).filter { token in
            rules(of: token).contains { rule in
                switch rule.action {
                case .remove: false
                case .directive: rule.names.contains(where: lowersSecurityLevel)
                case .add, .order: rule.names.contains(where: isWeakName)
                }
            }
        }.map(String.init)
    }

    /// The tokens of a merchant-side (downstream) cipher string that are refused even for legacy
    /// clients: no encryption, no authentication, export grades. Security level 0 is allowed there.
    static func refusedTokens(inDownstreamCipherString text: String) -> [String] {
        tokens(of: text).filter { token in
            rules(of: token).contains { rule in
                switch rule.action {
                case .remove, .directive: false
                case .add, .order: rule.names.contains { name in
                    name.uppercased().split(separator: "-").contains {
                        unprotectedParts.contains(String($0)) || $0.hasPrefix("EXP")
                    }
                }
                }
            }
        }.map(String.init)
    }

    /// The TLS 1.3 suites that provide no encryption (RFC 9150 integrity-only suites), as written.
    /// OpenSSL splits this list on `:` only; splitting on every separator here only makes the check
    /// stricter.
    static func weakTokens(inCipherSuites text: String) -> [String] {
        tokens(of: text).filter { token in
            let upper = token.uppercased()
            return upper.contains("NULL") || upper.contains("TLS_SHA256_SHA256") || upper.contains("TLS_SHA384_SHA384")
        }.map(String.init)
    }

    /// Why a token was refused, for the error message.
    static func reason(forWeakToken token: String) -> String {
        let lowersLevel = rules(of: Substring(token)).contains { rule in
            rule.action == .directive && rule.names.contains(where: lowersSecurityLevel)
        }
        return lowersLevel
            ? "security levels below \(UpstreamConfig.minimumSecurityLevel) are not allowed upstream"
            : "it enables a broken or unauthenticated cipher"
    }

    /// One rule of a cipher string: what it does and the names it joins with `+`.
    private struct Rule {
        enum Action { case add, remove, order, directive }
        var action: Action
        var names: [Substring]
    }

    private static func tokens(of text: String) -> [Substring] {
        text.split(whereSeparator: separators.contains)
    }

    /// Can OpenSSL read this character as part of a cipher, alias or directive name?
    private static func isNameCharacter(_ character: Character) -> Bool {
        guard character.isASCII else { return false }
        return character.isLetter || character.isNumber || "-_.=".contains(character)
    }

    /// The rules of one token, in order (see the type's documentation for the grammar).
    private static func rules(of token: Substring) -> [Rule] {
        var rules: [Rule] = []
        var index = token.startIndex
        while index < token.endIndex {
            let first = token[index]
            let action: Rule.Action
            switch first {
            case "!": action = .remove
            case "-" where index == token.startIndex: action = .remove
            case "+" where index == token.startIndex: action = .order
            case "@": action = .directive
            default: action = .add
            }
            // A name character begins the rule's first name; anything else was its prefix (or junk).
            if action != .add || !isNameCharacter(first) {
                index = token.index(after: index)
            }
            var names: [Substring] = []
            while true {
                let start = index
                while index < token.endIndex, isNameCharacter(token[index]) {
                    index = token.index(after: index)
                }
                if start < index { names.append(token[start..<index]) }
                guard index < token.endIndex, token[index] == "+" else { break }
                index = token.index(after: index)
            }
            rules.append(Rule(action: action, names: names))
        }
        return rules
    }

    private static func isWeakName(_ name: Substring) -> Bool {
        let upper = name.uppercased()
        if upper.contains("DES-CBC") { return true }
        return upper.split(separator: "-").contains { part in
            weakParts.contains(String(part)) || part.hasPrefix("EXP")
        }
    }

    /// `SECLEVEL=` below the upstream minimum, or with a value OpenSSL may read differently; other
    /// directives (`STRENGTH`) are harmless.
    private static func lowersSecurityLevel(_ directive: Substring) -> Bool {
        let upper = directive.uppercased()
        guard upper.hasPrefix("SECLEVEL") else { return false }
        let level = upper.dropFirst("SECLEVEL=".count)
        guard upper.hasPrefix("SECLEVEL="), isDecimalDigits(level), let value = Int(level) else { return true }
        return value < UpstreamConfig.minimumSecurityLevel
    }
}
