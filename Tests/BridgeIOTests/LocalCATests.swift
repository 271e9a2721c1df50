import BridgeModel
import CBridgeShims
import COpenSSL
import Glibc
import Testing
@testable import BridgeIO

/// A fresh directory under /tmp; `remove()` deletes it with everything in it.
private struct ScratchDirectory: Sendable {
    let path: String

    init() {
        var template = Array("/tmp/localca-test-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(made != nil, "mkdtemp failed")
        path = String(cString: made!)
    }

    func file(_ name: String) -> String { path + "/" + name }

    func remove() { removeTree(path) }
}

private func entries(_ directory: String) -> [String] {
    guard let dir = opendir(directory) else { return [] }
    defer { closedir(dir) }
    var names: [String] = []
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
        if name != "." && name != ".." { names.append(name) }
    }
    return names
}

private func removeTree(_ path: String) {
    var info = stat()
    guard lstat(path, &info) == 0 else { return }
    if info.st_mode & S_IFMT == S_IFDIR {
        for name in entries(path) { removeTree(path + "/" + name) }
        rmdir(path)
    } else {
        unlink(path)
    }
}

private func mode(_ path: String) -> mode_t? {
    var info = stat()
    guard stat(path, &info) == 0 else { return nil }
    return info.st_mode & 0o7777
}

private func contents(_ path: String) -> String? {
    guard let file = fopen(path, "r") else { return nil }
    defer { fclose(file) }
    var text = ""
    var buffer = [CChar](repeating: 0, count: 4096)
    while fgets(&buffer, Int32(buffer.count), file) != nil {
        text += string(fromBuffer: buffer)
    }
    return text
}

private func writeText(_ text: String, to path: String) {
    let file = fopen(path, "w")!
    fputs(text, file)
    fclose(file)
}

private func times(_ cert: OpaquePointer) -> (notBefore: Int64, notAfter: Int64) {
    var notBefore: Int64 = 0
    var notAfter: Int64 = 0
    #expect(tb_mint_certificate_times(cert, &notBefore, &notAfter) == 1)
    return (notBefore, notAfter)
}

private func now() -> Int64 { Int64(time(nil)) }

/// Verifies `leaf` against a store trusting only `ca`, the way a TLS client checks a server:
/// chain, purpose (TLS server) and, when given, the host name or IP the client dialled.
private func verify(_ leaf: OpaquePointer, trusting ca: OpaquePointer, host: String? = nil, ip: String? = nil,
                    asServer: Bool = true) -> Int32 {
    let store = X509_STORE_new()!
    defer { X509_STORE_free(store) }
    X509_STORE_add_cert(store, ca)
    let context = X509_STORE_CTX_new()!
    defer { X509_STORE_CTX_free(context) }
    X509_STORE_CTX_init(context, store, leaf, nil)
    let param = X509_STORE_CTX_get0_param(context)
    if asServer { X509_VERIFY_PARAM_set_purpose(param, X509_PURPOSE_SSL_SERVER) }
    if let host { X509_VERIFY_PARAM_set1_host(param, host, 0) }
    if let ip { X509_VERIFY_PARAM_set1_ip_asc(param, ip) }
    guard X509_verify_cert(context) == 1 else { return X509_STORE_CTX_get_error(context) }
    return X509_V_OK
}

/// Verifies `leaf` against a store trusting only `ca` the way a TLS server checks the certificate a
/// client presents: chain and purpose (TLS client).
private func verifyAsClientCertificate(_ leaf: OpaquePointer, trusting ca: OpaquePointer) -> Int32 {
    let store = X509_STORE_new()!
    defer { X509_STORE_free(store) }
    X509_STORE_add_cert(store, ca)
    let context = X509_STORE_CTX_new()!
    defer { X509_STORE_CTX_free(context) }
    X509_STORE_CTX_init(context, store, leaf, nil)
    X509_VERIFY_PARAM_set_purpose(X509_STORE_CTX_get0_param(context), X509_PURPOSE_SSL_CLIENT)
    guard X509_verify_cert(context) == 1 else { return X509_STORE_CTX_get_error(context) }
    return X509_V_OK
}

/// Writes a CA (or a non-CA, when `isCA` is false) with the given validity, made with the same C
/// helpers as the real one but a 2048-bit key to keep the tests quick.
private func writeCA(in dir: ScratchDirectory, notBefore: Int64, notAfter: Int64, isCA: Bool = true,
                     name: String = "ca") -> (cert: String, key: String) {
    let key = tb_mint_rsa_key(2048)!
    defer { EVP_PKEY_free(key) }
    let cert = tb_mint_begin_certificate(key, "Test Local CA", nil, notBefore, notAfter)!
    defer { X509_free(cert) }
    #expect(tb_mint_add_extension(cert, nil, NID_basic_constraints, isCA ? "critical,CA:TRUE,pathlen:0" : "critical,CA:FALSE") == 1)
    #expect(tb_mint_add_extension(cert, nil, NID_subject_key_identifier, "hash") == 1)
    #expect(tb_mint_sign(cert, key, 0) == 1)
    let paths = (cert: dir.file("\(name).pem"), key: dir.file("\(name).key"))
    #expect(throws: Never.self) {
        try LocalCAFiles.createNew(paths.cert, mode: 0o644, key: "test") { tb_mint_write_pem($0, cert, nil, nil) == 1 }
        try LocalCAFiles.createNew(paths.key, mode: 0o600, key: "test") { tb_mint_write_pem($0, nil, nil, key) == 1 }
    }
    return paths
}

/// One CA for the tests that only issue from it: RSA 3072 generation takes a moment. Its directory
/// is removed when the test process exits.
private let sharedDirectory: ScratchDirectory = {
    let directory = ScratchDirectory()
    atexit { sharedDirectory.remove() }
    return directory
}()
private let sharedCA: LocalCA = try! LocalCA.create(directory: sharedDirectory.file("ca"))
/// The shared CA's files (created on first use).
private var sharedCertFile: String { _ = sharedCA; return sharedDirectory.file("ca/ca.pem") }
private var sharedKeyFile: String { _ = sharedCA; return sharedDirectory.file("ca/ca.key") }

@Suite struct LocalCACreationTests {
    @Test func createWritesTheCertificate0644AndTheKey0600InANew0700Directory() throws {
        let scratch = ScratchDirectory()
        defer { scratch.remove() }
        let directory = scratch.file("ca")
        let ca = try LocalCA.create(directory: directory)
        #expect(mode(directory) == 0o700)
        #expect(mode(directory + "/ca.pem") == 0o644)
        #expect(mode(directory + "/ca.key") == 0o600)
        #expect(contents(directory + "/ca.pem") == ca.certificatePEM)
        #expect(ca.certificatePEM.hasPrefix("-----BEGIN CERTIFICATE-----\n"))
        #expect(contents(directory + "/ca.key")?.hasPrefix("-----BEGIN PRIVATE KEY-----\n") == true)
        #expect(ca.subject == "CN=tls-bridge local CA")
    }

    @Test func createRefusesADirectoryThatAlreadyHoldsACAAndLeavesItUntouched() throws {
        let scratch = ScratchDirectory()
        defer { scratch.remove() }
        let first = try LocalCA.create(directory: scratch.path, commonName: "First CA")
        let keyBefore = contents(scratch.file("ca.key"))
        #expect {
            _ = try LocalCA.create(directory: scratch.path, commonName: "Second CA")
        } throws: { error in
            guard let error = error as? ConfigError else { return false }
            return error.key == "directory" && error.message.contains("already exists") && error.message.contains("ca.pem")
        }
        #expect(contents(scratch.file("ca.pem")) == first.certificatePEM)
        #expect(contents(scratch.file("ca.key")) == keyBefore)
    }

    @Test func createRefusesWhenOnlyTheKeyIsLeftOver() {
        let scratch = ScratchDirectory()
        defer { scratch.remove() }
        writeText("not really a key\n", to: scratch.file("ca.key"))
        #expect {
            _ = try LocalCA.create(directory: scratch.path)
        } throws: { error in
            (error as? ConfigError)?.message.contains("ca.key already exists") == true
        }
        #expect(contents(scratch.file("ca.key")) == "not really a key\n")
        #expect(mode(scratch.file("ca.pem")) == nil)
    }

    @Test func createRefusesACommonNameThatCannotBeACN() {
        let scratch = ScratchDirectory()
        defer { scratch.remove() }
        #expect {
            _ = try LocalCA.create(directory: scratch.path, commonName: String(repeating: "x", count: 65))
        } throws: { error in
            (error as? ConfigError)?.key == "common_name"
        }
        #expect(mode(scratch.file("ca.key")) == nil)
    }

    @Test func theCACertificateIsAPathLenZeroSHA256RSA3072CAValidForTenYears() {
        let cert = sharedCA.certificate
        #expect(tb_mint_is_ca(cert) == 1)
        #expect(X509_get_pathlen(cert) == 0)
        #expect(X509_get_key_usage(cert) == UInt32(KU_KEY_CERT_SIGN | KU_CRL_SIGN))
        #expect(X509_get0_subject_key_id(cert) != nil)
        #expect(X509_get_signature_nid(cert) == NID_sha256WithRSAEncryption)
        #expect(EVP_PKEY_get_bits(sharedCA.privateKey) == 3072)
        // Both extensions are critical.
        for nid in [NID_basic_constraints, NID_key_usage] {
            let index = X509_get_ext_by_NID(cert, nid, -1)
            #expect(index >= 0)
            #expect(X509_EXTENSION_get_critical(X509_get_ext(cert, index)) == 1)
        }
        let (notBefore, notAfter) = times(cert)
        #expect(abs(notBefore - (now() - 3600)) < 120)
        #expect(abs(notAfter - now() - 3653 * 86_400) < 120)
        // Self-signed: it verifies against itself.
        #expect(verify(cert, trusting: cert, asServer: false) == X509_V_OK)
    }
}

@Suite struct LocalCALoadingTests {
    @Test func loadsWhatCreateWrote() throws {
        let loaded = try LocalCA(certFile: sharedCertFile, keyFile: sharedKeyFile)
        #expect(loaded.subject == sharedCA.subject)
        #expect(loaded.certificatePEM == sharedCA.certificatePEM)
        let leaf = try loaded.issue(names: ["gateway.test"])
        #expect(verify(leaf.certificate, trusting: sharedCA.certificate, host: "gateway.test") == X509_V_OK)
    }

    @Test func aMissingCertificateFileNamesTheCertKey() {
        #expect {
            _ = try LocalCA(certFile: "/nonexistent/ca.pem", keyFile: sharedKeyFile,
                            certKey: "listener[legacy].ca_cert", keyKey: "listener[legacy].ca_key")
        } throws: { error in
            guard let error = error as? ConfigError else { return false }
            return error.key == "listener[legacy].ca_cert" && error.message.contains("/nonexistent/ca.pem")
        }
    }

    @Test func aFileWithoutACertificateNamesTheCertKey() {
        let scratch = ScratchDirectory()
        defer { scratch.remove() }
        writeText("hello\n", to: scratch.file("ca.pem"))
        #expect {
            _ = try LocalCA(certFile: scratch.file("ca.pem"), keyFile: sharedKeyFile)
        } throws: { error in
            (error as? ConfigError)?.key == "ca_cert"
        }
    }

    @Test func aMissingKeyFileNamesTheKeyKey() {
        #expect {
            _ = try LocalCA(certFile: sharedCertFile, keyFile: "/nonexistent/ca.key",
                            certKey: "listener[legacy].ca_cert", keyKey: "listener[legacy].ca_key")
        } throws: { error in
            (error as? ConfigError)?.key == "listener[legacy].ca_key"
        }
    }

    @Test func aLeafCertificateIsRefusedAsNotACA() {
        let scratch = ScratchDirectory()
        defer { scratch.remove() }
        let files = writeCA(in: scratch, notBefore: now() - 60, notAfter: now() + 86_400, isCA: false)
        #expect {
            _ = try LocalCA(certFile: files.cert, keyFile: files.key)
        } throws: { error in
            guard let error = error as? ConfigError else { return false }
            return error.key == "ca_cert" && error.message.contains("not a CA certificate")
        }
    }

    @Test func aKeyThatDoesNotMatchTheCertificateNamesTheKeyKey() {
        let scratch = ScratchDirectory()
        defer { scratch.remove() }
        let other = writeCA(in: scratch, notBefore: now() - 60, notAfter: now() + 86_400)
        #expect {
            _ = try LocalCA(certFile: sharedCertFile, keyFile: other.key)
        } throws: { error in
            guard let error = error as? ConfigError else { return false }
            return error.key == "ca_key" && error.message.contains("does not match")
        }
    }

    @Test func anExpiredCAIsRefusedWithItsExpiryDate() {
        let scratch = ScratchDirectory()
        defer { scratch.remove() }
        let files = writeCA(in: scratch, notBefore: 1_600_000_000, notAfter: 1_700_000_000)
        #expect {
            _ = try LocalCA(certFile: files.cert, keyFile: files.key)
        } throws: { error in
            guard let error = error as? ConfigError else { return false }
            return error.key == "ca_cert" && error.message.contains("expired on 2023-11-14 22:13:20 UTC")
        }
    }
}

@Suite struct LocalCAIssuingTests {
    @Test func aLeafVerifiesForItsNamesAndNotForOthers() throws {
        let leaf = try sharedCA.issue(names: ["sandbox.paygent.co.jp", "localhost", "127.0.0.1", "::1"])
        let ca = sharedCA.certificate
        #expect(verify(leaf.certificate, trusting: ca, host: "sandbox.paygent.co.jp") == X509_V_OK)
        #expect(verify(leaf.certificate, trusting: ca, host: "localhost") == X509_V_OK)
        #expect(verify(leaf.certificate, trusting: ca, ip: "127.0.0.1") == X509_V_OK)
        #expect(verify(leaf.certificate, trusting: ca, ip: "::1") == X509_V_OK)
        #expect(verify(leaf.certificate, trusting: ca, host: "www.paygent.co.jp") == X509_V_ERR_HOSTNAME_MISMATCH)
        #expect(verify(leaf.certificate, trusting: ca, ip: "127.0.0.2") == X509_V_ERR_IP_ADDRESS_MISMATCH)
        // IP literals are IP entries, not DNS names that happen to contain digits.
        #expect(X509_check_host(leaf.certificate, "127.0.0.1", 0, 0, nil) != 1)
        // Trusting some other CA is not enough.
        #expect(verify(leaf.certificate, trusting: leaf.certificate) != X509_V_OK)
    }

    @Test func aLeafCarriesTheServerProfile() throws {
        let leaf = try sharedCA.issue(names: ["sandbox.paygent.co.jp"])
        let cert = leaf.certificate
        var subject = [CChar](repeating: 0, count: 256)
        _ = tb_x509_name_rfc2253(X509_get_subject_name(cert), &subject, subject.count)
        #expect(string(fromBuffer: subject) == "CN=sandbox.paygent.co.jp")
        #expect(X509_NAME_cmp(X509_get_issuer_name(cert), X509_get_subject_name(sharedCA.certificate)) == 0)
        #expect(tb_mint_is_ca(cert) == 0)
        #expect(X509_get_extension_flags(cert) & UInt32(EXFLAG_BCONS) != 0)
        #expect(X509_get_key_usage(cert) == UInt32(KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT))
        #expect(X509_get_extended_key_usage(cert) == UInt32(XKU_SSL_SERVER))
        #expect(X509_get_signature_nid(cert) == NID_sha256WithRSAEncryption)
        #expect(EVP_PKEY_get_bits(leaf.privateKey) == 2048)
        #expect(X509_check_private_key(cert, leaf.privateKey) == 1)
        // SKI present; AKI is the CA's SKI.
        #expect(X509_get0_subject_key_id(cert) != nil)
        #expect(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(cert), X509_get0_subject_key_id(sharedCA.certificate)) == 0)
        // 16-byte positive serial (top bit clear, so no sign byte is needed).
        let serial = X509_get0_serialNumber(cert)
        #expect(ASN1_STRING_length(serial) == 16)
        #expect(ASN1_STRING_type(serial) == V_ASN1_INTEGER)
        let (notBefore, notAfter) = times(cert)
        #expect(abs(notBefore - (now() - 3600)) < 120)
        #expect(abs(notAfter - now() - 397 * 86_400) < 120)
    }

    @Test func aClientLeafCarriesClientAuthAndPassesOnlyAsAClientCertificate() throws {
        let leaf = try sharedCA.issue(names: ["merchant.test"], usage: .tlsClient)
        let cert = leaf.certificate
        #expect(X509_get_extended_key_usage(cert) == UInt32(XKU_SSL_CLIENT))
        #expect(X509_get_key_usage(cert) == UInt32(KU_DIGITAL_SIGNATURE))
        #expect(tb_mint_is_ca(cert) == 0)
        #expect(X509_get_signature_nid(cert) == NID_sha256WithRSAEncryption)
        #expect(X509_check_private_key(cert, leaf.privateKey) == 1)
        #expect(verifyAsClientCertificate(cert, trusting: sharedCA.certificate) == X509_V_OK)
        // Not a server certificate, even for its own name.
        #expect(verify(cert, trusting: sharedCA.certificate, host: "merchant.test") == X509_V_ERR_INVALID_PURPOSE)
        // The default leaf stays server-only: a TLS server refuses it as a client certificate.
        let server = try sharedCA.issue(names: ["gateway.test"])
        #expect(X509_get_extended_key_usage(server.certificate) == UInt32(XKU_SSL_SERVER))
        #expect(verifyAsClientCertificate(server.certificate, trusting: sharedCA.certificate) == X509_V_ERR_INVALID_PURPOSE)
    }

    @Test func everyLeafHasItsOwnSerialAndKey() throws {
        let first = try sharedCA.issue(names: ["a.test"])
        let second = try sharedCA.issue(names: ["a.test"])
        #expect(ASN1_INTEGER_cmp(X509_get0_serialNumber(first.certificate), X509_get0_serialNumber(second.certificate)) != 0)
        #expect(EVP_PKEY_eq(first.privateKey, second.privateKey) != 1)
        #expect(first.privateKeyPEM != second.privateKeyPEM)
    }

    @Test func legacySHA1SignsWithSHA1AndStillVerifiesAtLibraryLevel() throws {
        let leaf = try sharedCA.issue(names: ["legacy.test"], legacySHA1: true)
        #expect(leaf.isLegacySHA1)
        #expect(X509_get_signature_nid(leaf.certificate) == NID_sha1WithRSAEncryption)
        #expect(verify(leaf.certificate, trusting: sharedCA.certificate, host: "legacy.test") == X509_V_OK)
        #expect(try !sharedCA.issue(names: ["modern.test"]).isLegacySHA1)
    }

    @Test func theChainHoldsTheCACertificate() throws {
        let leaf = try sharedCA.issue(names: ["gateway.test"])
        let chain = try #require(leaf.chain)
        #expect(OPENSSL_sk_num(chain) == 1)
        let first = OpaquePointer(OPENSSL_sk_value(chain, 0))
        #expect(X509_cmp(first, sharedCA.certificate) == 0)
    }

    @Test func aLeafNeverOutlivesItsCAAndNeverPredatesIt() throws {
        let scratch = ScratchDirectory()
        defer { scratch.remove() }
        let caStart = now() - 600
        let caEnd = now() + 10 * 86_400
        let files = writeCA(in: scratch, notBefore: caStart, notAfter: caEnd)
        let ca = try LocalCA(certFile: files.cert, keyFile: files.key)
        let leaf = try ca.issue(names: ["short.test"])
        let (notBefore, notAfter) = times(leaf.certificate)
        #expect(notBefore == caStart)
        #expect(notAfter == caEnd)
        #expect(verify(leaf.certificate, trusting: ca.certificate, host: "short.test") == X509_V_OK)
        #expect(leaf.notAfterDescription == LocalCAFiles.utcDescription(caEnd))
    }

    @Test func privateKeyPEMIsThePrivateKeyOfTheCertificate() throws {
        let leaf = try sharedCA.issue(names: ["gateway.test"])
        let pem = leaf.privateKeyPEM
        #expect(pem.hasPrefix("-----BEGIN PRIVATE KEY-----\n"))
        let bio = pem.withCString { BIO_new_mem_buf($0, Int32(strlen($0))) }
        defer { BIO_free(bio) }
        let key = try #require(PEM_read_bio_PrivateKey(bio, nil, nil, nil))
        defer { EVP_PKEY_free(key) }
        #expect(X509_check_private_key(leaf.certificate, key) == 1)
        #expect(leaf.certificatePEM.hasPrefix("-----BEGIN CERTIFICATE-----\n"))
        #expect(!leaf.certificatePEM.contains("PRIVATE KEY"))
    }

    @Test func notAfterDescriptionIsAUTCTimestamp() throws {
        let leaf = try sharedCA.issue(names: ["gateway.test"])
        #expect(leaf.notAfterDescription == LocalCAFiles.utcDescription(times(leaf.certificate).notAfter))
        #expect(LocalCAFiles.utcDescription(1_830_513_600) == "2028-01-03 12:00:00 UTC")
    }

    @Test func namesAreDeduplicatedInOrder() throws {
        let leaf = try sharedCA.issue(names: ["b.test", "a.test", "b.test"])
        #expect(leaf.names == ["b.test", "a.test"])
    }

    @Test(arguments: ["", "two words.test", "-leading.test", "trailing-.test", "double..dot.test", "*.test",
                      "a.*.test", "under_score.test", "slash/name.test", "fe80::1%eth0",
                      String(repeating: "a", count: 64) + ".test", String(repeating: "a", count: 60) + ".test"])
    func unusableNamesAreRefusedNamingThem(name: String) {
        #expect {
            _ = try sharedCA.issue(names: [name])
        } throws: { error in
            guard let error = error as? ConfigError else { return false }
            return error.key == "names" && error.message.contains("\"\(name)\"")
        }
    }

    @Test func noNamesIsRefused() {
        #expect {
            _ = try sharedCA.issue(names: [])
        } throws: { error in
            (error as? ConfigError)?.key == "names"
        }
    }

    @Test func wildcardsAndIPv6AreAccepted() throws {
        let leaf = try sharedCA.issue(names: ["*.paygent.test", "2001:db8::1"])
        #expect(verify(leaf.certificate, trusting: sharedCA.certificate, host: "www.paygent.test") == X509_V_OK)
        #expect(verify(leaf.certificate, trusting: sharedCA.certificate, ip: "2001:db8::1") == X509_V_OK)
    }

    @Test func issuingFromManyThreadsAtOnceGivesValidLeaves() async throws {
        let ca = sharedCA
        let results = await withTaskGroup(of: Int32.self) { group in
            for index in 0..<8 {
                group.addTask {
                    guard let leaf = try? ca.issue(names: ["n\(index).test"], legacySHA1: index % 2 == 1) else { return -1 }
                    return verify(leaf.certificate, trusting: ca.certificate, host: "n\(index).test")
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results == Array(repeating: X509_V_OK, count: 8))
    }
}

@Suite struct IssuedCertificateFileTests {
    @Test func writeMakesTheLeafAndCAChain0644AndTheKey0600AndReplacesOldFiles() throws {
        let scratch = ScratchDirectory()
        defer { scratch.remove() }
        let cert = scratch.file("gw.pem")
        let key = scratch.file("gw.key")
        writeText("old\n", to: cert)
        writeText("old\n", to: key)
        chmod(key, 0o644)
        let leaf = try sharedCA.issue(names: ["gw.test"])
        try leaf.write(certificatePath: cert, keyPath: key)
        #expect(mode(cert) == 0o644)
        #expect(mode(key) == 0o600)
        #expect(contents(cert) == leaf.certificatePEM + sharedCA.certificatePEM)
        #expect(contents(key) == leaf.privateKeyPEM)
        // Nothing but the two files (no temporaries left behind).
        let names = entries(scratch.path)
        #expect(names.sorted() == ["gw.key", "gw.pem"])
    }

    @Test func writeIntoAMissingDirectoryFailsAndSaysSo() throws {
        let leaf = try sharedCA.issue(names: ["gw.test"])
        #expect {
            try leaf.write(certificatePath: "/nonexistent/dir/gw.pem", keyPath: "/nonexistent/dir/gw.key")
        } throws: { error in
            (error as? ConfigError)?.message.contains("/nonexistent/dir/gw.key") == true
        }
    }
}
