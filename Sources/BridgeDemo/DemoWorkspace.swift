import BridgeIO
import BridgeModel
#if canImport(Glibc)
import Glibc
#endif

/// The demo's work directory and what goes into it: throwaway certificates, the test gateway's web
/// root, the bridge's config and the files the children write.
struct DemoWorkspace {
    /// The name the test gateway's certificate is for, and the name the legacy client dials.
    static let gatewayName = "gateway.demo"
    /// The merchant certificate's CN.
    static let merchantName = "merchant.demo"
    /// The file the test gateway serves, and what is in it.
    static let pagePath = "/hello.txt"
    static let pageText = "Hello from the demo gateway: TLS 1.2 only, merchant client certificate verified.\n"

    let directory: String

    var gatewayCADirectory: String { path("gateway-ca") }
    var gatewayCACertificate: String { path("gateway-ca/ca.pem") }
    var gatewayCertificate: String { path("gateway.pem") }
    var gatewayKey: String { path("gateway.key") }
    var merchantCertificate: String { path("merchant.pem") }
    var merchantKey: String { path("merchant.key") }
    var bridgeCADirectory: String { path("bridge-ca") }
    var bridgeCACertificate: String { path("bridge-ca/ca.pem") }
    var bridgeCAKey: String { path("bridge-ca/ca.key") }
    var webRoot: String { path("www") }
    var config: String { path("demo.toml") }
    var sessionLog: String { path("sessions.jsonl") }

    func path(_ name: String) -> String { directory + "/" + name }

    /// Two throwaway CAs and two leaves:
    /// - the gateway CA stands in for the gateway's own PKI: it signs the test gateway's server
    ///   certificate and the merchant's client certificate (extendedKeyUsage clientAuth, which the
    ///   gateway checks), and the bridge's `ca_file` trusts it;
    /// - the bridge CA is what `tls-bridge ca init` makes: the legacy listener mints its certificate
    ///   for gateway.demo from it, and the legacy merchant client trusts it.
    ///
    /// Returns one line per certificate for the demo's output.
    func makeCertificates() throws(DemoFailure) -> [String] {
        do throws(ConfigError) {
            let gatewayCA = try LocalCA.create(directory: gatewayCADirectory, commonName: "demo gateway CA")
            let gateway = try gatewayCA.issue(names: [Self.gatewayName])
            try gateway.write(certificatePath: gatewayCertificate, keyPath: gatewayKey)
            let merchant = try gatewayCA.issue(names: [Self.merchantName], usage: .tlsClient)
            try merchant.write(certificatePath: merchantCertificate, keyPath: merchantKey)
            let bridgeCA = try LocalCA.create(directory: bridgeCADirectory, commonName: "tls-bridge demo CA")
            return [
                "gateway CA     \(gatewayCA.subject): stands in for the gateway's CA (the bridge's ca_file)",
                "gateway        CN=\(Self.gatewayName): the test gateway's server certificate",
                "merchant       CN=\(Self.merchantName): the merchant's client certificate (clientAuth),"
                    + " presented by the bridge",
                "bridge CA      \(bridgeCA.subject): your `tls-bridge ca init` CA; the legacy listener mints"
                    + " gateway.demo from it and the legacy client trusts it",
            ]
        } catch {
            throw DemoFailure("making the demo certificates failed: \(error)")
        }
    }

    func writeWebRoot() throws(DemoFailure) {
        guard mkdir(webRoot, 0o700) == 0 else {
            throw DemoFailure("could not create \(webRoot): \(String(cString: strerror(errno)))")
        }
        try DemoFiles.write(Self.pageText, to: webRoot + Self.pagePath)
    }

    /// The bridge's config: one upstream (the test gateway, verified as gateway.demo against the
    /// gateway CA, with the merchant certificate), a plain listener and a legacy TLS listener.
    func writeConfig(gatewayPort: UInt16, plainPort: UInt16, tlsPort: UInt16) throws(DemoFailure) {
        let q = DemoFiles.tomlString
        let text = """
        # Written by `tls-bridge demo`: throwaway certificates, loopback only.
        workers = 1

        [log]
        sessions = \(q(sessionLog))
        level = "notice"

        [limits]
        connect_timeout = "5s"
        handshake_timeout = "5s"
        idle_timeout = "20s"
        drain_timeout = "2s"

        # The test gateway (openssl s_server, TLS 1.2 only, requires a client certificate).
        [[upstream]]
        name = "demo-gateway"
        address = "127.0.0.1:\(gatewayPort)"
        server_name = "\(Self.gatewayName)"
        ca_file = \(q(gatewayCACertificate))
        client_cert = \(q(merchantCertificate))
        client_key = \(q(merchantKey))

        # A merchant that can be pointed at http://127.0.0.1:\(plainPort)/...
        [[listener]]
        name = "plain"
        listen = "127.0.0.1:\(plainPort)"
        upstream = "demo-gateway"

        # A merchant that can only dial https://\(Self.gatewayName)/ with TLS 1.0 (hosts-file entry
        # pointing the name here, bridge CA in its trust bundle).
        [[listener]]
        name = "legacy-tls"
        listen = "127.0.0.1:\(tlsPort)"
        accept = "tls"
        min_version = "TLS1.0"
        ca_cert = \(q(bridgeCACertificate))
        ca_key = \(q(bridgeCAKey))
        [listener.routes]
        "\(Self.gatewayName)" = "demo-gateway"

        """
        try DemoFiles.write(text, to: config, mode: 0o600)
    }
}
