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
}
