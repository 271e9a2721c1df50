internal import CLibevent
#if canImport(Glibc)
import Glibc
#endif

/// A non-blocking TCP connect that tries each address in turn until one answers.
///
/// The deadline is not its business: the session's own timer covers resolve and connect together
/// and calls `cancel()`. On success the connected socket passes to the caller, who must close it
/// (normally by handing it to a bufferevent with close-on-free).
public final class Connection {
    /// What an attempt produced.
    public enum Result {
        case connected(fd: Int32, address: SocketAddress)
        case failed(address: SocketAddress?, reason: String)
    }

    private let loop: EventLoop
    private var remaining: ArraySlice<SocketAddress>
    private var completion: ((Result) -> Void)?
    private var fd: Int32 = -1
    private var writable: OpaquePointer?
    /// The address being tried now (or last tried), for the session record.
    public private(set) var currentAddress: SocketAddress?
    private var lastFailure = "no address to try"

    /// Starts connecting. `completion` runs once on the loop's thread, never inside this initialiser.
    public init(loop: EventLoop, addresses: [SocketAddress], completion: @escaping (Result) -> Void) {
        self.loop = loop
        self.remaining = addresses[...]
        self.completion = completion
        tryNext()
    }

    deinit {
        closePending()
    }

    /// Abandons the attempt and closes its socket. The completion never runs.
    public func cancel() {
        completion = nil
        closePending()
    }

    private func closePending() {
        if let writable {
            event_free(writable)
            self.writable = nil
        }
        if fd >= 0 {
            close(fd)
            fd = -1
        }
    }

    private func tryNext() {
        while let address = remaining.popFirst() {
            currentAddress = address
            let socketFD = socket(address.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            if socketFD < 0 {
                lastFailure = "socket: \(errnoText(errno))"
                continue
            }
            var one: Int32 = 1
            setsockopt(socketFD, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            let result = address.withSockAddr { connect(socketFD, $0, $1) }
            if result == 0 || errno == EINPROGRESS {
                fd = socketFD
                let context = Unmanaged.passUnretained(self).toOpaque()
                writable = event_new(loop.base, socketFD, Int16(EV_WRITE), { _, _, context in
                    let connection = Unmanaged<Connection>.fromOpaque(context!).takeUnretainedValue()
                    withExtendedLifetime(connection) { connection.socketBecameWritable() }
                }, context)
                event_add(writable, nil)
                return
            }
            lastFailure = "connect to \(address) failed: \(errnoText(errno))"
            close(socketFD)
        }
        finish(.failed(address: currentAddress, reason: lastFailure))
    }

    private func socketBecameWritable() {
        var error: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        if getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0 { error = errno }
        if let writable {
            event_free(writable)
            self.writable = nil
        }
        if error == 0, let address = currentAddress {
            let connected = fd
            fd = -1
            finish(.connected(fd: connected, address: address))
            return
        }
        close(fd)
        fd = -1
        lastFailure = "connect to \(currentAddress.map(String.init(describing:)) ?? "?") failed: \(errnoText(error))"
        tryNext()
    }

    /// Delivers the result from the loop, never synchronously: the caller may still be inside our
    /// initialiser. A connection cancelled or gone by then closes the socket instead.
    private func finish(_ result: Result) {
        let box = Unmanaged.passRetained(ResultBox(owner: self, result: result)).toOpaque()
        event_base_once(loop.base, -1, Int16(EV_TIMEOUT), { _, _, context in
            let box = Unmanaged<ResultBox>.fromOpaque(context!).takeRetainedValue()
            guard let owner = box.owner, let completion = owner.completion else {
                if case .connected(let fd, _) = box.result { close(fd) }
                return
            }
            owner.completion = nil
            completion(box.result)
        }, box, nil)
    }

    private final class ResultBox {
        weak var owner: Connection?
        let result: Result
        init(owner: Connection, result: Result) {
            self.owner = owner
            self.result = result
        }
    }
}
