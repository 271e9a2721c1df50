/// What `check` tells an operator about the oldest merchant clients a listener cannot serve, in the
/// operator's words (the client, not the cipher suite): a note, not an error — the config is fine.
///
/// Windows XP and Server 2003 use Windows' own TLS (SChannel), whose suites there are 3DES and RC4
/// only: IE 6 and IE 8 on XP, and programs on those systems that use it. A listener whose merchant
/// side takes legacy TLS but accepts neither suite (Debian's OpenSSL has none of them; a cipher string
/// can leave them out) can never complete a handshake with them. Such merchants can still reach the
/// gateway through a plain listener, where the bridge does the TLS.
public enum LegacyClientNote {
    /// What one listener's built TLS context accepts, and what the linked OpenSSL has at all (asked of
    /// the library, never assumed: another build may have 3DES).
    public struct CipherSupport: Sendable, Equatable {
        public var libraryHas3DES: Bool
        public var libraryHasRC4: Bool
        public var listenerAccepts3DES: Bool
        public var listenerAcceptsRC4: Bool

        public init(libraryHas3DES: Bool, libraryHasRC4: Bool, listenerAccepts3DES: Bool, listenerAcceptsRC4: Bool) {
            self.libraryHas3DES = libraryHas3DES
            self.libraryHasRC4 = libraryHasRC4
            self.listenerAccepts3DES = listenerAccepts3DES
            self.listenerAcceptsRC4 = listenerAcceptsRC4
        }

        /// Read from OpenSSL cipher names (`DES-CBC3-SHA`, `RC4-SHA`, ...): the listener's accepted
        /// list and whether the library can build each family at all.
        public init(acceptedCiphers: [String], libraryHas3DES: Bool, libraryHasRC4: Bool) {
            self.init(libraryHas3DES: libraryHas3DES, libraryHasRC4: libraryHasRC4,
                      listenerAccepts3DES: acceptedCiphers.contains { $0.contains("DES-CBC3") },
                      listenerAcceptsRC4: acceptedCiphers.contains { $0.contains("RC4") })
        }
    }

    /// The note for `listener`, or nil when it does not apply: the listener takes no TLS from
    /// merchants (plain, or the notification listener, whose clients are the gateway), it does not
    /// accept TLS 1.0/1.1, or it accepts 3DES or RC4 after all.
    public static func note(for listener: ListenerConfig, support: CipherSupport) -> String? {
        guard listener.accept.terminatesTLS, listener.backend == nil,
              let policy = listener.tls, policy.isLegacy,
              !support.listenerAccepts3DES, !support.listenerAcceptsRC4 else { return nil }
        let why = support.libraryHas3DES || support.libraryHasRC4
            ? "which this listener's ciphers leave out"
            : "which this OpenSSL does not have"
        return "Windows XP / Server 2003 clients (IE 6, IE 8 on XP, and programs using Windows' own TLS there)"
            + " offer only 3DES or RC4, \(why): they cannot use this listener; point them at a plain listener"
    }
}
