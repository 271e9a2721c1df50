internal import COpenSSL
internal import CLibevent

/// Versions of the C libraries this binary is running with (not the ones it was built against).
public enum LibraryVersions {
    /// e.g. "2.1.12-stable".
    public static var libevent: String { String(cString: event_get_version()) }
    /// e.g. "OpenSSL 3.0.19 27 Jan 2026".
    public static var openSSL: String { String(cString: OpenSSL_version(Int32(OPENSSL_VERSION))) }

    /// What the linked OpenSSL can negotiate at all, asked of the library rather than assumed:
    /// Debian builds OpenSSL without 3DES and RC4, for instance.
    public static func openSSLCapabilities() -> [String: Bool] {
        ["3DES": cipherAvailable("DES-CBC3-SHA"), "RC4": cipherAvailable("RC4-SHA"),
         "TLS1.0 (downstream, security level 0)": cipherAvailable("AES128-SHA@SECLEVEL=0")]
    }

    private static func cipherAvailable(_ name: String) -> Bool {
        guard let context = SSL_CTX_new(TLS_method()) else { return false }
        defer { SSL_CTX_free(context) }
        let ok = SSL_CTX_set_cipher_list(context, name) == 1
        _ = drainOpenSSLErrors()
        return ok
    }
}
