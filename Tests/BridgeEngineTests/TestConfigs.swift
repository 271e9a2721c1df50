import BridgeIO
import Glibc

/// Configurations for the engine tests. Nothing is bound or dialled: listeners are handed sockets,
/// and dials are stand-ins. The upstream trusts the system's CAs (no file needed).
enum TestConfigs {
    /// A local CA for the http-proxy listener's CONNECT identities, made once per test run.
    static let mintCA: String = {
        var template = Array("/tmp/tls-bridge-engine-tests-XXXXXX".utf8CString)
        let directory = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
        _ = try! LocalCA.create(directory: directory + "/ca")
        // proxy_auth's file: owner-only, as the config loader requires of secrets.
        let users = open(directory + "/ca/proxy-users", O_WRONLY | O_CREAT | O_EXCL, 0o600)
        _ = "merchant:s3cret\n".withCString { write(users, $0, strlen($0)) }
        close(users)
        atexit {
            for file in ["ca/ca.pem", "ca/ca.key", "ca/proxy-users", "ca", ""] {
                let path = TestConfigs.scratch + "/" + file
                if unlink(path) != 0 { _ = rmdir(path) }
            }
        }
        return directory + "/ca"
    }()

    /// The directory `mintCA` lives in, removed when the test run exits.
    private static var scratch: String { String(mintCA.dropLast(3)) }

    static var proxy: String { proxyConfig() }

    private static func proxyConfig(listenerKeys: String = "") -> String { """
        [limits]
        idle_timeout = "2s"
        header_timeout = "2s"
        handshake_timeout = "1500ms"
        buffer_size = "64KiB"

        [[upstream]]
        name = "gw"
        address = "gateway.test:443"

        [[upstream]]
        name = "gw2"
        address = "other.test:443"

        [[listener]]
        name = "proxy"
        listen = "127.0.0.1:18080"
        accept = "http-proxy"
        \(listenerKeys)
        ca_cert = "\(mintCA)/ca.pem"
        ca_key = "\(mintCA)/ca.key"

        [listener.routes]
        "gateway.test" = "gw"
        "other.test" = "gw2"
        """
    }

    /// `proxy` with `proxy_auth`: the pair merchant:s3cret (Basic bWVyY2hhbnQ6czNjcmV0).
    static var authenticatingProxy: String { proxyConfig(listenerKeys: "proxy_auth = \"\(mintCA)/proxy-users\"") }

    static let plain = """
        [limits]
        idle_timeout = "300ms"
        half_close_timeout = "100ms"
        buffer_size = "64KiB"

        [[upstream]]
        name = "gw"
        address = "gateway.test:443"

        [[listener]]
        name = "plain"
        listen = "127.0.0.1:18081"
        upstream = "gw"
        """

    /// A notification listener that frames each request to the merchant's web server and sets
    /// X-Forwarded-For. Its certificate is the test CA's own; the tests start its sessions past the
    /// TLS handshake (`EngineHarness.connect(listener:skippingTLS:)`): that is not what they test.
    static var notify: String { """
        [limits]
        idle_timeout = "5s"
        header_timeout = "2s"
        buffer_size = "64KiB"

        [[backend]]
        name = "shop"
        address = "127.0.0.1:8080"
        tls = "off"

        [[listener]]
        name = "notify"
        listen = "127.0.0.1:18082"
        backend = "shop"
        accept = "tls"
        cert = "\(mintCA)/ca.pem"
        key = "\(mintCA)/ca.key"
        client_address_header = "X-Forwarded-For"
        """
    }
}
