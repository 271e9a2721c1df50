import Testing
@testable import BridgeModel

/// Private keys, passphrases and proxy passwords must not be readable by group or others.
@Suite("Key permissions")
struct KeyPermissionTests {
    private func upstream(keyMode: Int, extra: String = "") throws -> (errors: [ConfigError], directory: TemporaryDirectory) {
        let directory = try TemporaryDirectory()
        try directory.write("client.pem", permissions: 0o644)
        try directory.write("client.key", permissions: keyMode)
        let text = extra + upstreamConfig("client_cert = \"client.pem\"\nclient_key = \"client.key\"")
        return (configErrors(text, baseDirectory: directory.path), directory)
    }

    @Test func aKeyReadableByOthersIsRefusedNamingTheKeyAndTheFix() throws {
        let (errors, directory) = try upstream(keyMode: 0o644)
        defer { directory.remove() }
        #expect(errors.map(\.key) == ["upstream[sandbox].client_key"])
        #expect(errors.first?.message.contains("chmod 600") == true)
        #expect(errors.first?.message.contains("644") == true)
    }

    @Test func aKeyReadableByItsOwnerOnlyIsAccepted() throws {
        let (errors, directory) = try upstream(keyMode: 0o600)
        defer { directory.remove() }
        #expect(errors.isEmpty)
    }

    @Test func theUnsafeFlagAcceptsALooseKey() throws {
        let (errors, directory) = try upstream(keyMode: 0o640, extra: "unsafe_key_permissions = true\n")
        defer { directory.remove() }
        #expect(errors.isEmpty)
    }

    // A certificate file can carry its private key after the certificate; used without a separate
    // key file, it is the key file and needs the same mode.
    private static let certificatePEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    private static let combinedPEM = certificatePEM + "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"

    private func combinedFileErrors(_ lines: String, file: String, contents: String = combinedPEM, mode: Int,
                                    listener: Bool, extra: String = "") throws -> [ConfigError] {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try directory.write(file, contents, permissions: mode)
        let text = extra + (listener
            ? listenerConfig("name = \"legacy\"\nlisten = \"127.0.0.1:8443\"\naccept = \"tls\"\nupstream = \"sandbox\"\n" + lines)
            : upstreamConfig(lines))
        return configErrors(text, baseDirectory: directory.path)
    }

    @Test("a certificate file holding its key is checked like a key file", arguments: [
        ("client_cert = \"combined.pem\"", false, "upstream[sandbox].client_cert"),
        ("cert = \"combined.pem\"", true, "listener[legacy].cert"),
        ("ca_cert = \"combined.pem\"\nca_key = \"combined.pem\"", true, "listener[legacy].ca_cert"),
    ])
    func combinedPEMReadableByOthers(lines: String, listener: Bool, key: String) throws {
        let errors = try combinedFileErrors(lines, file: "combined.pem", mode: 0o644, listener: listener)
        #expect(errors.map(\.key).contains(key), "\(errors)")
        let message = errors.first { $0.key == key }?.message ?? ""
        #expect(message.contains("private key") && message.contains("chmod 600") && message.contains("644"))
    }

    @Test("each private-key PEM flavour counts", arguments: ["PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY",
                                                             "ENCRYPTED PRIVATE KEY"])
    func keyFlavours(label: String) throws {
        let pem = Self.certificatePEM + "-----BEGIN \(label)-----\nMIIE\n-----END \(label)-----\n"
        let errors = try combinedFileErrors("client_cert = \"combined.pem\"", file: "combined.pem", contents: pem,
                                            mode: 0o640, listener: false)
        #expect(errors.map(\.key) == ["upstream[sandbox].client_cert"])
    }

    @Test("a key after a long certificate chain is found, also where it spans two reads", arguments: [
        65_536 - 20, 65_536 - 5, 65_536, 200_000,
    ])
    func keyAfterLongChain(offset: Int) throws {
        let padding = String(repeating: "A", count: offset - "-----BEGIN ".count)
        let pem = padding + "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"
        let errors = try combinedFileErrors("client_cert = \"chain.pem\"", file: "chain.pem", contents: pem,
                                            mode: 0o644, listener: false)
        #expect(errors.map(\.key) == ["upstream[sandbox].client_cert"])
    }

    @Test func aCombinedFileReadableByItsOwnerOnlyIsAccepted() throws {
        let errors = try combinedFileErrors("client_cert = \"combined.pem\"", file: "combined.pem", mode: 0o600,
                                            listener: false)
        #expect(errors.isEmpty)
    }

    @Test func aCertificateWithoutAKeyMayBeReadableByAll() throws {
        let errors = try combinedFileErrors("client_cert = \"cert.pem\"", file: "cert.pem", contents: Self.certificatePEM,
                                            mode: 0o644, listener: false)
        #expect(errors.isEmpty)
    }

    @Test func theUnsafeFlagAcceptsALooseCombinedFile() throws {
        let errors = try combinedFileErrors("client_cert = \"combined.pem\"", file: "combined.pem", mode: 0o644,
                                            listener: false, extra: "unsafe_key_permissions = true\n")
        #expect(errors.isEmpty)
    }
}
