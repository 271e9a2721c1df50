internal import COpenSSL
internal import CLibevent
#if canImport(Glibc)
import Glibc
#endif

/// One real TLS handshake with an upstream, with the bridge's own policy and client certificate:
/// the operator's pre-cutover check (`tls-bridge probe`) and the deep health check.
///
/// Blocking (name resolution, connect, handshake, each bounded by `timeout`): call it from the
/// command line or the admin thread, never from a worker's event loop.
public enum UpstreamProbe {
    /// What one probe found.
    public struct Result: Sendable {
        public var upstream: String
        /// The address that answered (or was last tried).
        public var address: String?
        /// What the handshake negotiated and verified; nil when it never started.
        public var details: TLSDetails?
        /// Nil on success, else what went wrong with OpenSSL's reason.
        public var error: String?
        public var milliseconds: Int
    }

    public static func run(_ context: UpstreamTLSContext, timeout: Duration) -> Result {
        let started = EventLoop.monotonicMilliseconds()
        let config = context.config
        var result = Result(upstream: config.name, address: nil, details: nil, error: nil, milliseconds: 0)
        defer { _ = drainOpenSSLErrors() }
        let seconds = max(1, Int(timeout.components.seconds))
        guard let (fd, address) = connect(host: config.address.host, port: config.address.port, seconds: seconds,
                                          failure: &result.error) else {
            result.milliseconds = Int(EventLoop.monotonicMilliseconds() - started)
            return result
        }
        defer { close(fd) }
        result.address = address
        guard let ssl = context.makeConnection() else {
            result.error = "OpenSSL could not set up a TLS connection"
            return result
        }
        defer { SSL_free(ssl) }
        SSL_set_fd(ssl, fd)
        _ = drainOpenSSLErrors()
        if SSL_connect(ssl) == 1 {
            result.details = TLSDetails(ssl: ssl)
            // In TLS 1.3 the server judges the client certificate after the client's handshake is
            // done: wait briefly for an alert before calling the probe a success.
            var brief = timeval(tv_sec: 0, tv_usec: 300_000)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &brief, socklen_t(MemoryLayout<timeval>.size))
            var byte: UInt8 = 0
            if SSL_peek(ssl, &byte, 1) <= 0, SSL_get_error(ssl, 0) == SSL_ERROR_SSL {
                result.error = "the gateway ended the session right after the handshake: \(drainOpenSSLErrors())"
            } else {
                _ = SSL_shutdown(ssl)
            }
        } else {
            result.details = TLSDetails(ssl: ssl)
            let reason = drainOpenSSLErrors()
            var text = "TLS handshake failed: \(reason.isEmpty ? errnoText(errno) : reason)"
            if let verification = result.details?.verification, verification != "ok" {
                text += "; certificate verify failed: \(verification)"
            }
            result.error = text
        }
        result.milliseconds = Int(EventLoop.monotonicMilliseconds() - started)
        return result
    }

    /// A connected, blocking socket with send/receive timeouts, or nil with `failure` set.
    private static func connect(host: String, port: UInt16, seconds: Int, failure: inout String?) -> (Int32, String)? {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0, let list else {
            failure = "could not resolve \(host): \(String(cString: gai_strerror(status)))"
            return nil
        }
        defer { freeaddrinfo(list) }
        var entry: UnsafeMutablePointer<addrinfo>? = list
        failure = "no address for \(host)"
        while let current = entry {
            entry = current.pointee.ai_next
            guard let address = SocketAddress(UnsafePointer(current.pointee.ai_addr), length: Int(current.pointee.ai_addrlen)) else { continue }
            let fd = socket(current.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { continue }
            var limit = timeval(tv_sec: seconds, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
            if address.withSockAddr({ Glibc.connect(fd, $0, $1) }) == 0 {
                failure = nil
                return (fd, address.description)
            }
            failure = "connect to \(address) failed: \(errnoText(errno))"
            close(fd)
        }
        return nil
    }
}
