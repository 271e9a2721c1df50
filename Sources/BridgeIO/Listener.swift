internal import CLibevent
public import BridgeModel
#if canImport(Glibc)
import Glibc
#endif

/// A bound, listening TCP socket made on the main thread before the workers start, so that a bind
/// error stops start-up with a clear message. Each worker gets its own socket on the same address
/// (SO_REUSEPORT), and the kernel spreads connections across them.
public struct ListeningSocket: Sendable {
    public let fd: Int32
    /// The listener it belongs to.
    public let listener: ListenerConfig

    /// Binds `listener.listen`. Throws naming the listener's key.
    public static func bind(_ listener: ListenerConfig) throws(ConfigError) -> ListeningSocket {
        let key = "listener[\(listener.name)].listen"
        let host = listener.listen.host == "localhost" ? "127.0.0.1" : listener.listen.host
        guard let address = SocketAddress(ip: host, port: listener.listen.port) else {
            throw ConfigError(key: key, message: "\"\(listener.listen)\" is not an IP address and port")
        }
        let fd = socket(address.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else {
            throw ConfigError(key: key, message: "cannot create a socket: \(errnoText(errno))")
        }
        var one: Int32 = 1
        let size = socklen_t(MemoryLayout<Int32>.size)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, size)
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, size)
        if address.family == AF_INET6 {
            setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &one, size)
        }
        guard address.withSockAddr({ Glibc.bind(fd, $0, $1) }) == 0 else {
            let reason = errnoText(errno)
            close(fd)
            throw ConfigError(key: key, message: "cannot listen on \(listener.listen): \(reason); choose a free address or stop what holds it")
        }
        guard listen(fd, 1024) == 0 else {
            let reason = errnoText(errno)
            close(fd)
            throw ConfigError(key: key, message: "cannot listen on \(listener.listen): \(reason)")
        }
        return ListeningSocket(fd: fd, listener: listener)
    }
}

/// Accepts connections on one listening socket, on one worker's loop. Owns the socket from `init`.
///
/// When accepting fails for lack of descriptors (EMFILE/ENFILE), it pauses for a second instead of
/// spinning on a socket that stays readable, and tries again.
public final class Listener {
    private var listener: OpaquePointer!
    private var pause: Timer?
    private let onAccept: (Int32, SocketAddress?) -> Void
    private let onError: (String) -> Void

    /// `onAccept` gets each accepted socket (non-blocking, owned by the callee) and its peer.
    public init(socket: ListeningSocket, loop: EventLoop,
                onAccept: @escaping (Int32, SocketAddress?) -> Void, onError: @escaping (String) -> Void) {
        self.onAccept = onAccept
        self.onError = onError
        let flags = UInt32(LEV_OPT_CLOSE_ON_FREE) | UInt32(LEV_OPT_CLOSE_ON_EXEC)
        listener = evconnlistener_new(loop.base, { _, fd, address, length, context in
            let listener = Unmanaged<Listener>.fromOpaque(context!).takeUnretainedValue()
            var one: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            listener.onAccept(fd, SocketAddress(UnsafePointer(address), length: Int(length)))
        }, Unmanaged.passUnretained(self).toOpaque(), flags, -1, socket.fd)
        evconnlistener_set_error_cb(listener) { _, context in
            let listener = Unmanaged<Listener>.fromOpaque(context!).takeUnretainedValue()
            let code = errno
            listener.onError(errnoText(code))
            if code == EMFILE || code == ENFILE || code == ENOBUFS || code == ENOMEM {
                listener.backOff()
            }
        }
        pause = Timer(loop: loop) { [weak self] in
            guard let self else { return }
            evconnlistener_enable(self.listener)
        }
    }

    private func backOff() {
        evconnlistener_disable(listener)
        pause?.schedule(afterMilliseconds: 1000)
    }

    deinit {
        evconnlistener_free(listener)
    }
}
