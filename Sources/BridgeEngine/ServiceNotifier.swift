#if canImport(Glibc)
import Glibc
#endif

/// Tells the service manager about start-up, reloads and shutdown through `$NOTIFY_SOCKET`
/// (systemd's `Type=notify`), without libsystemd: one datagram per state change on a Unix socket.
/// Does nothing when the variable is unset, so the same binary runs under any supervisor.
public struct ServiceNotifier: Sendable {
    private let path: String?

    public init() {
        path = getenv("NOTIFY_SOCKET").map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 }
    }

    /// Every listener is bound and accepting.
    public func ready(status: String) { send("READY=1\nSTATUS=\(status)\nMAINPID=\(getpid())") }
    /// A reload (SIGHUP) has started; `ready` follows when it is over, whatever the outcome.
    public func reloading() { send("RELOADING=1\nMONOTONIC_USEC=\(monotonicMicroseconds())") }
    /// Shutdown has started: listeners closed, open sessions draining.
    public func stopping(status: String) { send("STOPPING=1\nSTATUS=\(status)") }
    /// Alive (`WatchdogSec=`): see `Watchdog`.
    public func watchdog() { send("WATCHDOG=1") }
    /// A status line for `systemctl status`.
    public func status(_ text: String) { send("STATUS=\(text)") }

    private func send(_ message: String) {
        guard let path else { return }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        // "@name" is Linux's abstract namespace: a leading NUL byte instead of the '@'.
        var bytes = Array(path.utf8)
        if bytes.first == UInt8(ascii: "@") { bytes[0] = 0 }
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard bytes.count < capacity else { return }
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            buffer.copyBytes(from: bytes)
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count)
        _ = message.withCString { text in
            withUnsafePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, text, strlen(text), 0, $0, length)
                }
            }
        }
    }

    private func monotonicMicroseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000
    }
}
