import ArgumentParser
import BridgeModel
#if canImport(Glibc)
import Glibc
#endif

/// `tls-bridge health`: asks the *running* bridge, not the file, whether it is alive — a GET of
/// `/healthz` on the config's `[admin] listen` address, bounded by `--timeout`. Exit 0 when it answers
/// 200, 1 otherwise (Docker's HEALTHCHECK and Kubernetes' exec probes read exactly that).
///
/// Health needs the admin endpoint: without `[admin] listen` there is nothing that only a live,
/// answering bridge could reply to (a listener's port is accepted by the kernel even while the process
/// is stopped, and a connection to it would cost a gateway session), so `health` says so and exits 1.
/// A stopped or wedged process does not answer within the timeout: unhealthy.
struct HealthCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "health",
        abstract: "Ask the running bridge's admin endpoint (/healthz): exit 0 if it answers 200, 1 if not.",
        discussion: "Needs [admin] listen in the config. For a container HEALTHCHECK or a Kubernetes exec probe."
    )

    @OptionGroup var options: ConfigOptions

    @Option(help: "Seconds to wait for the whole answer.")
    var timeout: Double = 3

    @Flag(help: "Ask for /healthz?deep=1: a real handshake to every upstream (slow; not for a liveness probe).")
    var deep = false

    func validate() throws {
        guard timeout > 0, timeout <= 300 else { throw ValidationError("--timeout must be between 0 and 300 seconds") }
    }

    func run() throws {
        let config = try loadConfigOrExit(options.config)
        guard let admin = config.admin.listen else {
            fail("no [admin] listen in \(options.config): health asks the running bridge's admin endpoint;"
                + " set e.g. [admin] listen = \"127.0.0.1:9090\"")
        }
        let path = deep ? "/healthz?deep=1" : "/healthz"
        switch HealthProbe.get(host: HealthProbe.connectableHost(admin.host), port: admin.port, path: path,
                               timeoutSeconds: timeout) {
        case .success(let status) where status == 200:
            print("healthy: \(admin) answered 200 to \(path)")
        case .success(let status):
            fail("\(admin) answered \(status) to \(path)")
        case .failure(let reason):
            fail("\(admin): \(reason)")
        }
    }

    private func fail(_ message: String) -> Never {
        let text = "tls-bridge health: unhealthy: \(message)\n"
        _ = text.withCString { write(STDERR_FILENO, $0, strlen($0)) }
        Glibc.exit(1)
    }
}

/// One bounded HTTP/1.0 GET with plain sockets: the status code, or why there is none.
enum HealthProbe {
    enum Failure: Error, CustomStringConvertible {
        case message(String)
        var description: String { if case .message(let text) = self { return text }; return "" }
    }

    /// A wildcard listen address is reached on loopback.
    static func connectableHost(_ host: String) -> String {
        switch host {
        case "0.0.0.0", "": return "127.0.0.1"
        case "::", "[::]": return "::1"
        default: return host
        }
    }

    static func get(host: String, port: UInt16, path: String, timeoutSeconds: Double) -> Result<Int, Failure> {
        let deadline = now() + timeoutSeconds
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_NUMERICSERV
        var list: UnsafeMutablePointer<addrinfo>?
        let resolved = getaddrinfo(host, String(port), &hints, &list)
        guard resolved == 0, let first = list else {
            return .failure(.message("cannot resolve \(host): \(String(cString: gai_strerror(resolved)))"))
        }
        defer { freeaddrinfo(list) }
        let fd = socket(first.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return .failure(.message("socket: \(String(cString: strerror(errno)))")) }
        defer { close(fd) }

        if connect(fd, first.pointee.ai_addr, first.pointee.ai_addrlen) != 0 {
            guard errno == EINPROGRESS else { return .failure(.message("connect: \(String(cString: strerror(errno)))")) }
            guard wait(fd, for: Int16(POLLOUT), until: deadline) else { return .failure(.message("no connection within the timeout")) }
            var error: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
            guard error == 0 else { return .failure(.message("connect: \(String(cString: strerror(error)))")) }
        }

        let request = Array("GET \(path) HTTP/1.0\r\nHost: tls-bridge-health\r\n\r\n".utf8)
        var sent = 0
        while sent < request.count {
            let written = request[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if written > 0 { sent += written; continue }
            guard written < 0, errno == EAGAIN || errno == EINTR else {
                return .failure(.message("send: \(String(cString: strerror(errno)))"))
            }
            guard wait(fd, for: Int16(POLLOUT), until: deadline) else { return .failure(.message("request not taken within the timeout")) }
        }

        // The status line is all that matters: "HTTP/1.x NNN ...".
        var answer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 512)
        while !answer.contains(UInt8(ascii: "\n")) && answer.count < 4096 {
            let received = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if received > 0 { answer += chunk[..<received]; continue }
            if received == 0 { break }
            guard errno == EAGAIN || errno == EINTR else { return .failure(.message("recv: \(String(cString: strerror(errno)))")) }
            guard wait(fd, for: Int16(POLLIN), until: deadline) else { return .failure(.message("no answer within the timeout")) }
        }
        let line = String(decoding: answer.prefix { $0 != UInt8(ascii: "\r") && $0 != UInt8(ascii: "\n") }, as: UTF8.self)
        let fields = line.split(separator: " ")
        guard fields.count >= 2, fields[0].hasPrefix("HTTP/1."), let status = Int(fields[1]) else {
            return .failure(.message(answer.isEmpty ? "closed without an answer" : "not an HTTP answer"))
        }
        return .success(status)
    }

    private static func wait(_ fd: Int32, for events: Int16, until deadline: Double) -> Bool {
        while true {
            let left = deadline - now()
            guard left > 0 else { return false }
            var entry = pollfd(fd: fd, events: events, revents: 0)
            let ready = poll(&entry, 1, Int32(min(left * 1000, 60_000).rounded(.up)))
            if ready > 0 { return true }
            if ready < 0 && errno == EINTR { continue }
            if ready == 0 { continue }
            return false
        }
    }

    private static func now() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }
}
