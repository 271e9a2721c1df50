import BridgeModel
import Foundation

/// The `user:password` pairs an http-proxy listener accepts (`proxy_auth`), read once at start-up.
///
/// Checked in constant time: every entry is compared in full, whatever matches, so response timing
/// tells a client nothing about which part of its guess was right. Never logged.
public struct ProxyCredentials: Sendable {
    private let entries: [(user: [UInt8], password: [UInt8])]

    /// Reads `path` (see `readPairs`).
    public init(path: String, key: String) throws(ConfigError) {
        let pairs = try Self.readPairs(path: path, key: key)
        guard !pairs.isEmpty else {
            throw ConfigError(key: key, message: "\(path) lists no user:password line; add one, or remove proxy_auth")
        }
        entries = pairs.map { (Array($0.user.utf8), Array($0.password.utf8)) }
    }

    /// The `user:password` lines of a credentials file (`proxy_auth`, `via_credentials`): blank
    /// lines and `#` comments are skipped; the user is everything before the first colon, without
    /// surrounding spaces, and may not be empty; the password is everything after it to the end of
    /// the line (LF or CRLF), spaces included: a password is the proxy's to choose, and
    /// trimming one that ends in a space would turn it into a wrong one. Errors name the line,
    /// never its content.
    static func readPairs(path: String, key: String) throws(ConfigError) -> [(user: String, password: String)] {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw ConfigError(key: key, message: "\(path) cannot be read as UTF-8 text")
        }
        var pairs: [(user: String, password: String)] = []
        // A Swift Character "\r\n" is one line break, as "\n" is.
        for (number, line) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            let leading = line.trimmingCharacters(in: .whitespaces)
            if leading.isEmpty || leading.hasPrefix("#") { continue }
            guard let colon = line.firstIndex(of: ":") else {
                throw ConfigError(key: key, message: "line \(number + 1) of \(path) is not user:password (it has no colon)")
            }
            let user = line[..<colon].trimmingCharacters(in: .whitespaces)
            guard !user.isEmpty else {
                throw ConfigError(key: key, message: "line \(number + 1) of \(path) has no user name before its colon")
            }
            pairs.append((user, String(line[line.index(after: colon)...])))
        }
        return pairs
    }

    /// Does this pair match an entry?
    func matches(user: String, password: String) -> Bool {
        let user = Array(user.utf8)
        let password = Array(password.utf8)
        var matched = false
        for entry in entries {
            let same = Self.equal(entry.user, user) && Self.equal(entry.password, password)
            matched = matched || same
        }
        return matched
    }

    /// Byte equality whose time depends only on the lengths.
    private static func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference = UInt8(a.count == b.count ? 0 : 1)
        for index in 0..<max(a.count, b.count) {
            difference |= (index < a.count ? a[index] : 0) ^ (index < b.count ? b[index] : 0)
        }
        return difference == 0
    }
}
