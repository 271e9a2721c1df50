import Foundation
import Testing
@testable import BridgeModel

@Suite("Upstream certificate files")
struct UpstreamFileTests {
    @Test("relative paths resolve against the base directory", arguments: [
        "ca_file", "client_cert", "client_key", "client_key_password_file",
    ])
    func relativePathsResolve(key: String) throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try directory.write("certs/merchant.pem")
        try directory.write("certs/file")
        let certLine = key == "client_cert" ? "" : "client_cert = \"certs/merchant.pem\""
        let config = try ConfigLoader.parse(upstreamConfig("\(key) = \"certs/file\"\n\(certLine)"), baseDirectory: directory.path)
        let upstream = try #require(config.upstreams.first)
        let value = [upstream.caFile, upstream.clientCert, upstream.clientKey, upstream.clientKeyPasswordFile][
            ["ca_file", "client_cert", "client_key", "client_key_password_file"].firstIndex(of: key)!]
        #expect(value == ConfigFiles.absoluteBase(directory.path) + "/certs/file")
    }

    @Test("a missing file is an error naming the key and the resolved path")
    func missingFileNamesResolvedPath() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let text = try #require(message(for: "upstream[sandbox].ca_file", in: upstreamConfig("ca_file = \"ca/missing.pem\""),
                                        baseDirectory: directory.path))
        #expect(text == ConfigFiles.absoluteBase(directory.path) + "/ca/missing.pem does not exist")
    }

    @Test("a directory is not accepted as a certificate file")
    func directoryIsNotAFile() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        #expect(message(for: "upstream[sandbox].ca_file", in: upstreamConfig("ca_file = \".\""), baseDirectory: directory.path)?
            .hasSuffix("is a directory, not a file") == true)
    }

    @Test("an unreadable file is an error, and its contents are never quoted",
          .enabled(if: !runningAsRoot, "root can read any file"))
    func unreadableFile() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try directory.write("key.pem", "-----BEGIN PRIVATE KEY-----\nsecret\n", permissions: 0o000)
        let errors = configErrors(upstreamConfig("client_cert = \"key.pem\""), baseDirectory: directory.path)
        #expect(errors.map(\.key) == ["upstream[sandbox].client_cert"])
        #expect(errors.first?.message.contains("not readable") == true)
        #expect(!errors.description.contains("secret"))
    }

    @Test("absolute paths are used as written")
    func absolutePath() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let file = try directory.write("ca.pem")
        let config = try ConfigLoader.parse(upstreamConfig("ca_file = \"\(file)\""), baseDirectory: "/nonexistent")
        #expect(config.upstreams.first?.caFile == ConfigFiles.resolve(file, against: "/"))
    }

    @Test("a client key or its password file without client_cert is refused", arguments: [
        "client_key", "client_key_password_file",
    ])
    func keyRequiresCertificate(key: String) throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try directory.write("file")
        #expect(message(for: "upstream[sandbox].\(key)", in: upstreamConfig("\(key) = \"file\""), baseDirectory: directory.path)?
            .contains("set client_cert") == true)
    }
}
