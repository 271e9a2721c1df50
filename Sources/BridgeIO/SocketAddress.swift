internal import CLibevent
#if canImport(Glibc)
import Glibc
#endif

/// An IPv4 or IPv6 socket address, copied out of whatever C structure held it.
public struct SocketAddress: Sendable, CustomStringConvertible {
    var storage: sockaddr_storage
    var length: socklen_t

    init?(_ address: UnsafePointer<sockaddr>?, length: Int) {
        guard let address, length > 0, length <= MemoryLayout<sockaddr_storage>.size else { return nil }
        var storage = sockaddr_storage()
        withUnsafeMutableBytes(of: &storage) { target in
            target.copyMemory(from: UnsafeRawBufferPointer(start: address, count: length))
        }
        self.storage = storage
        self.length = socklen_t(length)
    }

    /// The address and port of a connected socket's peer, or (`local`) of the socket itself.
    public init?(peerOf fd: Int32, local: Bool = false) {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                local ? getsockname(fd, $0, &length) : getpeername(fd, $0, &length)
            }
        }
        guard result == 0 else { return nil }
        self.storage = storage
        self.length = length
    }

    /// Parses an IP literal and port.
    public init?(ip: String, port: UInt16) {
        var storage = sockaddr_storage()
        var v4 = sockaddr_in()
        var v6 = sockaddr_in6()
        if inet_pton(AF_INET, ip, &v4.sin_addr) == 1 {
            v4.sin_family = sa_family_t(AF_INET)
            v4.sin_port = port.bigEndian
            withUnsafeMutableBytes(of: &storage) { target in withUnsafeBytes(of: v4) { target.copyMemory(from: $0) } }
            length = socklen_t(MemoryLayout<sockaddr_in>.size)
        } else if inet_pton(AF_INET6, ip, &v6.sin6_addr) == 1 {
            v6.sin6_family = sa_family_t(AF_INET6)
            v6.sin6_port = port.bigEndian
            withUnsafeMutableBytes(of: &storage) { target in withUnsafeBytes(of: v6) { target.copyMemory(from: $0) } }
            length = socklen_t(MemoryLayout<sockaddr_in6>.size)
        } else {
            return nil
        }
        self.storage = storage
    }

    var family: Int32 { Int32(storage.ss_family) }

    /// The IP address's bytes: 4 for IPv4, 16 for IPv6.
    public var ipBytes: [UInt8] {
        withUnsafePointer(to: storage) { pointer in
            if family == AF_INET6 {
                return pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { v6 in
                    withUnsafeBytes(of: v6.pointee.sin6_addr) { Array($0) }
                }
            }
            return pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { v4 in
                withUnsafeBytes(of: v4.pointee.sin_addr) { Array($0) }
            }
        }
    }

    /// The port, host order.
    public var port: UInt16 {
        withUnsafePointer(to: storage) { pointer in
            family == AF_INET6
                ? pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin6_port) }
                : pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin_port) }
        }
    }

    /// Is this an IPv6 address (and not an IPv4-mapped one)?
    public var isIPv6: Bool { family == AF_INET6 }

    /// Calls `body` with the address as the `sockaddr` C functions take.
    func withSockAddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        withUnsafePointer(to: storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, length) }
        }
    }

    /// The IP alone, as text (`127.0.0.2`, `2001:db8::1`: no brackets, no port).
    public var ipText: String {
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        return withUnsafePointer(to: storage) { pointer -> String in
            if family == AF_INET6 {
                return pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { v6 in
                    var address = v6.pointee.sin6_addr
                    inet_ntop(AF_INET6, &address, &text, socklen_t(text.count))
                    return string(fromBuffer: text)
                }
            }
            return pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { v4 in
                var address = v4.pointee.sin_addr
                inet_ntop(AF_INET, &address, &text, socklen_t(text.count))
                return string(fromBuffer: text)
            }
        }
    }

    /// `IP:port`, with brackets around IPv6.
    public var description: String {
        isIPv6 ? "[\(ipText)]:\(port)" : "\(ipText):\(port)"
    }
}

/// The text of an `errno` value, e.g. "Connection refused".
public func errnoText(_ code: Int32) -> String {
    String(cString: strerror(code))
}
