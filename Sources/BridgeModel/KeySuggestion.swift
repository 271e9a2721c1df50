/// "Did you mean" for unknown keys.
///
/// A misspelt key in a security config must fail loudly, and the error is only useful if it points
/// at the intended key. Suggests a known key that differs by case, `-` for `_`, a small edit
/// distance, or a common alias from other proxies (`sni`, `bind`, `ca`).
enum KeySuggestion {
    /// Names people bring from other tools, and the key they mean here.
    private static let aliases: [String: String] = [
        "sni": "server_name", "servername": "server_name", "hostname": "server_name",
        "ca": "ca_file", "cafile": "ca_file", "ca_cert": "ca_file", "ca_bundle": "ca_file", "cacert": "ca_file",
        "cert": "client_cert", "certificate": "client_cert", "key": "client_key", "private_key": "client_key",
        "password": "client_key_password_file", "passphrase": "client_key_password_file",
        "client_key_password": "client_key_password_file", "key_password": "client_key_password_file",
        "min_tls_version": "min_version", "tls_min_version": "min_version", "min_protocol": "min_version",
        "cipher_suites": "ciphersuites", "tls13_ciphers": "ciphersuites", "cipher": "ciphers",
        "bind": "listen", "listen_address": "listen", "target": "upstream", "backend": "upstream",
        "host": "address", "addr": "address", "connect": "address", "upstreams": "upstream", "listeners": "listener",
        "threads": "workers", "worker_threads": "workers", "nameserver": "nameservers", "resolvers": "nameservers",
        "loglevel": "level", "log_level": "level", "session_log": "sessions",
    ]

    /// The known key `unknown` was probably meant to be, or `nil`.
    static func suggestion(for unknown: String, among known: [String]) -> String? {
        let normalized = String(unknown.lowercased().map { $0 == "-" ? "_" : $0 })
        if let exact = known.first(where: { $0 == normalized }) { return exact }
        if let alias = aliases[normalized], known.contains(alias) { return alias }
        let scored = known.map { ($0, editDistance(normalized, $0)) }.filter { candidate in
            candidate.1 <= 2 && candidate.1 * 3 <= max(candidate.0.count, normalized.count)
        }
        return scored.min { $0.1 < $1.1 }?.0
    }

    /// Levenshtein distance over characters.
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var current = [i] + [Int](repeating: 0, count: b.count)
            for j in 1...b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}
