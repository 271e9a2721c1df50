import ArgumentParser
import BridgeIO
import BridgeModel
#if canImport(Glibc)
import Glibc
#endif

/// `tls-bridge ca`: the local CA that lets the bridge terminate the merchant's legacy TLS under the
/// gateway's name. The merchant trusts this CA (and only the bridge holds its key), so the bridge
/// can present a certificate for `sandbox.paygent.co.jp` that the merchant accepts.
struct CACommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ca",
        abstract: "Create a local CA for terminating the merchant's legacy TLS, and issue certificates from it.",
        subcommands: [CAInitCommand.self, CAIssueCommand.self]
    )
}

/// `tls-bridge ca init DIR`: a new CA, and what the merchant and the config must do with it.
struct CAInitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Create a new local CA in DIR (ca.pem, ca.key); never overwrites an existing one."
    )

    @Argument(help: "Directory for ca.pem and ca.key (created 0700 if missing).")
    var directory: String

    @Option(help: "The CA certificate's common name, as merchants will see it in their trust store.")
    var commonName: String = "tls-bridge local CA"

    func run() throws {
        let ca: LocalCA
        do {
            ca = try LocalCA.create(directory: directory, commonName: commonName)
        } catch {
            failCA("init", error)
        }
        let certPath = caPath(directory, "ca.pem")
        let keyPath = caPath(directory, "ca.key")
        print("""
        Created local CA "\(ca.subject)", valid until \(ca.notAfterDescription).
          certificate: \(certPath)  (0644, public: the merchant must trust it)
          private key: \(keyPath)  (0600, SECRET: whoever has it can impersonate the gateway to the
                       merchant. Keep it 0600, owned by the bridge's user, on this host only.)

        The merchant's server must trust \(certPath): add it to the trust bundle its TLS client uses.
          PHP (curl, or openssl streams):
            in php.ini set curl.cainfo (and openssl.cafile, PHP 5.6+) to a bundle that contains it,
            or append it to the bundle file they already name:
              cat \(certPath) >> /path/to/that/bundle.pem
            (older PHP without openssl.cafile: pass 'cafile' in the stream context's ssl options)
          Java:
            keytool -importcert -alias tls-bridge -file \(certPath) -keystore <truststore>
            (<truststore> is the JVM's cacerts, e.g. $JAVA_HOME/jre/lib/security/cacerts, or the file
            javax.net.ssl.trustStore names; restart the JVM afterwards)
          .NET / Windows (copy ca.pem to the server, elevated prompt):
            certutil -addstore Root ca.pem
        Then point the gateway's name at the bridge in the merchant's hosts file.

        tls-bridge config, on the listener with accept = "tls":
          ca_cert = "\(certPath)"
          ca_key = "\(keyPath)"
        or issue a fixed certificate: tls-bridge ca issue --ca \(directory) sandbox.paygent.co.jp
        """)
    }
}

/// `tls-bridge ca issue --ca DIR NAME...`: a leaf for the given names, written as NAME.pem (leaf and
/// CA) and NAME.key (0600).
struct CAIssueCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "issue",
        abstract: "Issue a server certificate from the local CA for one or more names (the first names the files)."
    )

    @Option(help: "Directory of the local CA (holds ca.pem and ca.key).")
    var ca: String

    @Flag(help: "Sign with SHA-1 instead of SHA-256: only for merchant clients that cannot verify SHA-256.")
    var sha1 = false

    @Option(help: "Directory to write NAME.pem and NAME.key to (default: the CA directory).")
    var out: String?

    @Argument(help: "DNS names or IP addresses the certificate is for; the first is its CN and names the files.")
    var names: [String]

    func run() throws {
        let caCert = caPath(ca, "ca.pem")
        let caKey = caPath(ca, "ca.key")
        let outDirectory = out ?? ca
        // A wildcard would make a file name the shell expands; spell it out instead.
        let base = names[0].replacingStar()
        let certPath = caPath(outDirectory, "\(base).pem")
        let keyPath = caPath(outDirectory, "\(base).key")
        // Never write over the CA itself (e.g. NAME "ca" into the CA directory).
        for path in [certPath, keyPath] {
            if let target = fileIdentity(path), [caCert, caKey].contains(where: { fileIdentity($0).map { $0 == target } ?? false }) {
                failCA("issue", ConfigError(key: "names", message: "\(path) is the CA's own file; choose another NAME or --out"))
            }
        }
        let issued: IssuedCertificate
        do {
            let authority = try LocalCA(certFile: caCert, keyFile: caKey, certKey: "--ca", keyKey: "--ca")
            issued = try authority.issue(names: names, legacySHA1: sha1)
        } catch {
            failCA("issue", error)
        }
        do throws(ConfigError) {
            try issued.write(certificatePath: certPath, keyPath: keyPath)
        } catch {
            failCA("issue", ConfigError(key: out == nil ? "--ca" : "--out", message: error.message))
        }
        print("""
        Issued a certificate for \(issued.names.joined(separator: ", ")), valid until \(issued.notAfterDescription).
          certificate: \(certPath)  (leaf followed by the CA certificate)
          private key: \(keyPath)  (0600, secret)
        """)
        if issued.isLegacySHA1 {
            print("LEGACY: SHA-1 signature, only for clients that cannot verify SHA-256; modern clients reject it.")
        } else {
            print("Signature: SHA-256.")
        }
        print("""

        tls-bridge config, on the listener with accept = "tls":
          cert = "\(certPath)"
          key = "\(keyPath)"
        """)
    }
}

/// `directory/name`, without a doubled slash.
private func caPath(_ directory: String, _ name: String) -> String {
    directory.hasSuffix("/") ? directory + name : directory + "/" + name
}

/// Device and inode of an existing file, to tell whether two paths are the same file.
private func fileIdentity(_ path: String) -> [UInt64]? {
    var info = stat()
    guard stat(path, &info) == 0 else { return nil }
    return [UInt64(info.st_dev), UInt64(info.st_ino)]
}

/// Prints the error on stderr as `tls-bridge ca SUBCOMMAND: key: message` and exits 1.
private func failCA(_ subcommand: String, _ error: any Error) -> Never {
    let text = "tls-bridge ca \(subcommand): \(error)\n"
    _ = text.withCString { write(STDERR_FILENO, $0, strlen($0)) }
    CAIssueCommand.exit(withError: ExitCode(1))
}

private extension String {
    /// `*.example.com` → `wildcard.example.com`.
    func replacingStar() -> String {
        split(separator: "*", omittingEmptySubsequences: false).joined(separator: "wildcard")
    }
}
