import ArgumentParser
import BridgeDemo
#if canImport(Glibc)
import Glibc
#endif

/// `tls-bridge demo`: the whole path on this machine, for a newcomer with no gateway and no internet.
/// A local TLS 1.2-only test gateway that requires and verifies a client certificate, the bridge with
/// a plain and a legacy-TLS listener in front of it, one plain and one TLS 1.0 request through it,
/// the two session records, and a verdict. Everything it starts it stops, by PID.
struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run the whole path on this machine: a local TLS 1.2-only gateway, the bridge, a plain and a TLS 1.0 request.",
        discussion: """
        Makes throwaway certificates in a temporary directory, starts `openssl s_server` as a test \
        gateway (TLS 1.2 only, requires and verifies the merchant's client certificate) on a free \
        127.0.0.1 port, and this binary's `run` with a plain listener and a legacy `accept = "tls"` \
        listener (TLS 1.0 allowed) in front of it, on free ports unless --port-plain/--port-tls name \
        them. Then sends a plain HTTP request through the plain \
        listener and a TLS 1.0 request (`openssl s_client -tls1`, SNI gateway.demo) through the legacy \
        listener, stops both children, prints the two session records and a one-line verdict. Needs the \
        `openssl` command; uses no network beyond loopback.

        Exit status: 0 when both requests reached the gateway over TLS 1.2 or 1.3, with its certificate \
        verified and the merchant certificate presented; 1 when anything failed (the output says what); \
        3 when the plain request passed but this machine's OpenSSL cannot speak TLS 1.0 as a client, so \
        that part was skipped.
        """
    )

    // Free ports by default: a fixed default fails on every machine where something already has it.
    @Option(name: .customLong("port-plain"), help: ArgumentHelp(
        "Port on 127.0.0.1 for the bridge's plain listener (default, or 0: a free one).", valueName: "port"))
    var portPlain: UInt16 = 0

    @Option(name: .customLong("port-tls"), help: ArgumentHelp(
        "Port on 127.0.0.1 for the bridge's legacy TLS listener (default, or 0: a free one).", valueName: "port"))
    var portTLS: UInt16 = 0

    @Flag(help: "Keep the temporary directory (certificates, demo.toml, session log, the children's output).")
    var keep = false

    func validate() throws {
        if portPlain != 0 && portPlain == portTLS {
            throw ValidationError("--port-plain and --port-tls are both \(portPlain); give two different ports (or 0 for either)")
        }
    }

    func run() throws {
        DemoSignals.install()
        let demo = DemoRun(plainPort: portPlain, tlsPort: portTLS, keep: keep)
        let status = demo.run()
        if status != 0 { throw ExitCode(status) }
    }
}
