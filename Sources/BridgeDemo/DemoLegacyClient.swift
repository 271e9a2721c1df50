#if canImport(Glibc)
import Glibc
#endif

/// The demo's legacy merchant: `openssl s_client` pinned to TLS 1.0 at security level 0, sending SNI
/// for the gateway's name and trusting only the bridge CA, as an old PHP or Java stack with a
/// hosts-file entry would.
struct DemoLegacyClient {
    /// What the client negotiated and received.
    struct Result {
        var protocolVersion: String?
        var cipher: String?
        var verification: String?
        var answer: [UInt8]
        var exitCode: Int32?
        var errorLines: [String]
    }

    static let ciphers = "DEFAULT:@SECLEVEL=0"

    let workspace: DemoWorkspace

    /// nil when the openssl command can offer TLS 1.0, else why not. Asks `openssl ciphers` for the
    /// suites TLS 1.0 could use at security level 0: an OpenSSL built without TLS 1.0, or without
    /// any suite usable there, lists none.
    func unavailableReason() throws(DemoFailure) -> String? {
        let child = try DemoChild.spawn(name: "openssl ciphers", executable: "openssl",
                                        arguments: ["ciphers", "-s", "-tls1", Self.ciphers],
                                        stdoutPath: workspace.path("ciphers.out"), stderrPath: workspace.path("ciphers.err"))
        guard child.waitForExit(seconds: 10, honouringInterrupt: true) else {
            child.stop(graceSeconds: 1)
            try DemoSignals.checkInterrupted()
            throw DemoFailure("`openssl ciphers` did not answer within 10 s")
        }
        let listed = DemoFiles.read(child.stdoutPath) ?? ""
        if child.exitCode == 0 && listed.contains(where: { !$0.isWhitespace }) { return nil }
        let reason = (DemoFiles.read(child.stderrPath) ?? "").split(separator: "\n").first.map(String.init)
            ?? "no cipher suite usable with TLS 1.0"
        return "the openssl command on this machine cannot speak TLS 1.0 as a client"
            + " (`openssl ciphers -s -tls1 \(Self.ciphers)`: \(reason))"
    }

    /// The `openssl s_client` arguments, also printed so that a newcomer can repeat the call.
    func arguments(port: UInt16) -> [String] {
        ["s_client", "-connect", "127.0.0.1:\(port)", "-tls1", "-cipher", Self.ciphers,
         "-servername", DemoWorkspace.gatewayName, "-CAfile", workspace.bridgeCACertificate,
         "-verify_return_error", "-verify_hostname", DemoWorkspace.gatewayName,
         "-brief", "-ign_eof", "-nocommands"]
    }

    /// Runs the client against 127.0.0.1:`port` with `request` on its stdin, within `seconds`.
    func run(port: UInt16, request: String, seconds: Double) throws(DemoFailure) -> Result {
        let requestFile = workspace.path("legacy-request.txt")
        try DemoFiles.write(request, to: requestFile)
        let child = try DemoChild.spawn(name: "openssl s_client", executable: "openssl", arguments: arguments(port: port),
                                        stdinPath: requestFile, stdoutPath: workspace.path("legacy-client.out"),
                                        stderrPath: workspace.path("legacy-client.err"))
        let finished = child.waitForExit(seconds: seconds, honouringInterrupt: true)
        if !finished {
            child.stop(graceSeconds: 1)
            try DemoSignals.checkInterrupted()
        }
        // -brief: the connection summary goes to stderr, the application data to stdout.
        var result = Result(answer: Array((DemoFiles.read(child.stdoutPath) ?? "").utf8), exitCode: child.exitCode,
                            errorLines: [])
        for line in (DemoFiles.read(child.stderrPath) ?? "").split(separator: "\n").map(String.init) {
            if let value = value(line, after: "Protocol version:") {
                result.protocolVersion = value
            } else if let value = value(line, after: "Ciphersuite:") {
                result.cipher = value
            } else if let value = value(line, after: "Verification:") {
                result.verification = value
            } else if line.contains("error") || line.contains("alert") || line.contains("errno") {
                result.errorLines.append(line)
            }
        }
        if !finished {
            result.errorLines.append("openssl s_client did not finish within \(Int(seconds)) s; stopped it")
        }
        return result
    }

    private func value(_ line: String, after label: String) -> String? {
        guard line.hasPrefix(label) else { return nil }
        return String(line.dropFirst(label.count).drop { $0 == " " })
    }
}
