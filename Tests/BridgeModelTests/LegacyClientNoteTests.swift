import Testing
@testable import BridgeModel

/// `check`'s note about Windows XP / Server 2003 merchants: said for every listener whose merchant side takes
/// legacy TLS without 3DES or RC4, in words that name the clients and the way out, and nowhere else.
@Suite("Legacy client note")
struct LegacyClientNoteTests {
    /// Debian's OpenSSL: neither family exists, so no listener accepts them.
    private let debian = LegacyClientNote.CipherSupport(libraryHas3DES: false, libraryHasRC4: false,
                                                        listenerAccepts3DES: false, listenerAcceptsRC4: false)

    private func listener(_ accept: AcceptMode, minVersion: TLSVersion?, backend: String? = nil) -> ListenerConfig {
        ListenerConfig(name: "legacy", listen: HostPort(host: "127.0.0.1", port: 8443), accept: accept,
                       upstream: backend == nil ? "gw" : nil, tls: minVersion.map { DownstreamTLSConfig(minVersion: $0) },
                       backend: backend)
    }

    @Test(arguments: [AcceptMode.tls, .httpProxy], [TLSVersion.tls10, .tls11])
    func aLegacyMerchantSideNamesTheWindowsXPClientsAndSendsThemToAPlainListener(accept: AcceptMode,
                                                                               minVersion: TLSVersion) throws {
        let note = try #require(LegacyClientNote.note(for: listener(accept, minVersion: minVersion), support: debian))
        #expect(note.contains("Windows XP / Server 2003 clients"))
        #expect(note.contains("IE 6, IE 8 on XP"))
        #expect(note.contains("offer only 3DES or RC4, which this OpenSSL does not have"))
        #expect(note.contains("they cannot use this listener; point them at a plain listener"))
    }

    @Test func aLibraryWith3DESThatTheListenerLeavesOutIsNotBlamed() throws {
        let support = LegacyClientNote.CipherSupport(libraryHas3DES: true, libraryHasRC4: false,
                                                     listenerAccepts3DES: false, listenerAcceptsRC4: false)
        let note = try #require(LegacyClientNote.note(for: listener(.tls, minVersion: .tls10), support: support))
        #expect(note.contains("which this listener's ciphers leave out"))
        #expect(!note.contains("this OpenSSL does not have"))
    }

    @Test func aListenerThatAccepts3DESOrRC4GetsNoNote() {
        for (accepts3DES, acceptsRC4) in [(true, false), (false, true)] {
            let support = LegacyClientNote.CipherSupport(libraryHas3DES: true, libraryHasRC4: true,
                                                         listenerAccepts3DES: accepts3DES, listenerAcceptsRC4: acceptsRC4)
            #expect(LegacyClientNote.note(for: listener(.tls, minVersion: .tls10), support: support) == nil)
        }
    }

    @Test func listenersThatTakeNoLegacyTLSFromMerchantsGetNoNote() {
        // TLS 1.2 floor: XP clients fail on the version first, and no merchant on XP is expected there.
        #expect(LegacyClientNote.note(for: listener(.tls, minVersion: .tls12), support: debian) == nil)
        #expect(LegacyClientNote.note(for: listener(.httpProxy, minVersion: .tls12), support: debian) == nil)
        // Plain: the bridge does the TLS, which is exactly where the note sends these clients.
        #expect(LegacyClientNote.note(for: listener(.plain, minVersion: nil), support: debian) == nil)
        // The notification listener's clients are the gateway, not merchants on Windows XP.
        #expect(LegacyClientNote.note(for: listener(.tls, minVersion: .tls10, backend: "web"), support: debian) == nil)
    }

    @Test func cipherSupportIsReadFromOpenSSLCipherNames() {
        let aesOnly = LegacyClientNote.CipherSupport(acceptedCiphers: ["ECDHE-RSA-AES128-SHA", "AES256-SHA"],
                                                     libraryHas3DES: false, libraryHasRC4: false)
        #expect(!aesOnly.listenerAccepts3DES && !aesOnly.listenerAcceptsRC4)
        let old = LegacyClientNote.CipherSupport(acceptedCiphers: ["AES128-SHA", "DES-CBC3-SHA", "RC4-SHA"],
                                                 libraryHas3DES: true, libraryHasRC4: true)
        #expect(old.listenerAccepts3DES && old.listenerAcceptsRC4)
    }
}
