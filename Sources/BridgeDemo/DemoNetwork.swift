#if canImport(Glibc)
import Glibc
#endif

/// Loopback sockets for the demo: is a port free, pick a free one, is something listening yet, and
/// one plain HTTP exchange.
enum DemoNetwork {
    /// 127.0.0.1:`port` as a sockaddr_in.
    private static func loopback(_ port: UInt16) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        return address
    }

    private static func tcpSocket() -> Int32 {
        socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    }

    private static func bind(_ fd: Int32, _ port: UInt16) -> Int32 {
        var address = loopback(port)
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
    }

    /// nil when 127.0.0.1:`port` can be bound right now, else the errno that binding it gave
    /// (EADDRINUSE: something listens there).
    static func bindError(port: UInt16) -> Int32? {
        let fd = tcpSocket()
        guard fd >= 0 else { return errno }
        defer { close(fd) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        return bind(fd, port) == 0 ? nil : errno
    }

    /// A port on 127.0.0.1 that was free a moment ago (the kernel's choice).
    static func freePort() throws(DemoFailure) -> UInt16 {
        let fd = tcpSocket()
        guard fd >= 0 else { throw DemoFailure("could not open a socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        guard bind(fd, 0) == 0 else {
            throw DemoFailure("could not bind 127.0.0.1 to find a free port: \(String(cString: strerror(errno)))")
        }
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let result = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard result == 0 else { throw DemoFailure("getsockname failed: \(String(cString: strerror(errno)))") }
        return UInt16(bigEndian: address.sin_port)
    }

    /// Whether a socket is listening on 127.0.0.1:`port`, read from /proc/net/tcp. Looking rather
    /// than connecting matters for the bridge: a test connection would be a real session, dialled
    /// to the gateway and logged.
    static func isListening(port: UInt16) -> Bool {
        guard let table = DemoFiles.read("/proc/net/tcp") else { return false }
        let wanted = "0100007F:" + hex4(port)
        for line in table.split(separator: "\n").dropFirst() {
            let fields = line.split(separator: " ")
            if fields.count > 3, fields[1] == wanted, fields[3] == "0A" { return true }
        }
        return false
    }

    private static func hex4(_ value: UInt16) -> String {
        let digits = Array("0123456789ABCDEF")
        return String((0..<4).reversed().map { digits[Int(value >> (4 * UInt16($0))) & 0xf] })
    }

    /// Sends `request` to 127.0.0.1:`port` and reads until the peer closes, within `seconds`.
    static func exchange(port: UInt16, request: String, seconds: Double) throws(DemoFailure) -> [UInt8] {
        let fd = tcpSocket()
        guard fd >= 0 else { throw DemoFailure("could not open a socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        // One second per blocking call; the loop below holds the overall deadline. On Linux the send
        // timeout also bounds connect().
        var slice = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &slice, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &slice, socklen_t(MemoryLayout<timeval>.size))
        var address = loopback(port)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else {
            throw DemoFailure("could not connect to 127.0.0.1:\(port): \(String(cString: strerror(errno)))")
        }
        let deadline = DemoDeadline(seconds: seconds)
        var pending = Array(request.utf8)[...]
        while !pending.isEmpty {
            try DemoSignals.checkInterrupted()
            let sent = pending.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if sent > 0 {
                pending = pending.dropFirst(sent)
            } else if sent < 0 && (errno == EINTR || errno == EAGAIN) && !deadline.passed {
                continue
            } else {
                throw DemoFailure("sending to 127.0.0.1:\(port) failed: \(String(cString: strerror(errno)))")
            }
        }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16_384)
        while true {
            try DemoSignals.checkInterrupted()
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count > 0 {
                received += buffer[0..<count]
                if received.count > 1 << 20 { break }  // the demo's answers are a few hundred bytes
            } else if count == 0 {
                break
            } else if errno == EINTR || errno == EAGAIN {
                if deadline.passed {
                    throw DemoFailure("no complete answer from 127.0.0.1:\(port) within \(Int(seconds)) s"
                        + " (\(received.count) bytes arrived)")
                }
            } else {
                if received.isEmpty {
                    throw DemoFailure("reading from 127.0.0.1:\(port) failed: \(String(cString: strerror(errno)))")
                }
                break
            }
        }
        return received
    }
}
