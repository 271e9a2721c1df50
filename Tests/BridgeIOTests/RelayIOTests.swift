import CBridgeShims
import CLibevent
import Glibc
import Testing

/// The relay's socket shortcuts (relay_io.c) against real sockets: how much one wake-up reads and
/// in what pieces, how an end or a reset is reported, and that a write takes only what the socket
/// accepts and leaves the rest queued, in order.
@Suite struct RelayIOTests {
    private static let chunk = 16_384 - 128

    /// A connected non-blocking Unix stream pair, closed by `close()`.
    private struct SocketPair {
        let reader: Int32
        let writer: Int32

        init() {
            var fds: [Int32] = [0, 0]
            precondition(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
            for fd in fds { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
            (reader, writer) = (fds[0], fds[1])
        }

        func send(_ bytes: [UInt8]) {
            bytes.withUnsafeBytes { precondition(write(writer, $0.baseAddress, $0.count) == $0.count) }
        }

        func close() {
            _ = Glibc.close(reader)
            _ = Glibc.close(writer)
        }
    }

    /// A bufferevent's input keeps its end frozen; tb_read_socket expects that.
    private func frozenInput() -> OpaquePointer {
        let buffer = evbuffer_new()!
        evbuffer_freeze(buffer, 0)
        return buffer
    }

    private func contents(_ buffer: OpaquePointer) -> [UInt8] {
        let count = evbuffer_get_length(buffer)
        return [UInt8](unsafeUninitializedCapacity: count) { out, initialized in
            initialized = Int(evbuffer_copyout(buffer, out.baseAddress, count))
        }
    }

    private func chainLengths(_ buffer: OpaquePointer) -> [Int] {
        let count = Int(evbuffer_peek(buffer, -1, nil, nil, 0))
        var vectors = [iovec](repeating: iovec(), count: count)  // evbuffer_iovec is iovec here
        _ = evbuffer_peek(buffer, -1, nil, &vectors, Int32(count))
        return vectors.map(\.iov_len)
    }

    private func pattern(_ count: Int) -> [UInt8] { (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) } }

    @Test func aWakeUpReadsWholeChunksThatEachFitOneTLSRecord() {
        let pair = SocketPair()
        defer { pair.close() }
        let input = frozenInput()
        defer { evbuffer_free(input) }
        let sent = pattern(40_000)
        pair.send(sent)

        var status: Int32 = 99
        let got = tb_read_socket(input, pair.reader, Self.chunk, 4, &status)

        #expect(got == 40_000)
        #expect(status == Int32(TB_READ_MORE))
        #expect(contents(input) == sent)
        let chains = chainLengths(input)
        #expect(chains.count == 3, "40,000 bytes in \(chains)")
        #expect(chains.dropLast().allSatisfy { $0 >= Self.chunk && $0 <= 16_384 }, "chains \(chains)")
    }

    @Test func aWakeUpStopsAtItsReadCapAndLeavesTheRestInTheSocket() {
        let pair = SocketPair()
        defer { pair.close() }
        let input = frozenInput()
        defer { evbuffer_free(input) }
        pair.send(pattern(150_000))

        var status: Int32 = 99
        let first = tb_read_socket(input, pair.reader, Self.chunk, 2, &status)
        #expect(first >= 2 * Self.chunk && first <= 2 * 16_384)
        #expect(status == Int32(TB_READ_MORE))
        var total = first
        for _ in 0..<20 where total < 150_000 {
            total += tb_read_socket(input, pair.reader, Self.chunk, 2, &status)
        }
        #expect(total == 150_000)
        #expect(contents(input) == pattern(150_000))
    }

    @Test func theEndIsReportedOnTheReadAfterTheLastBytes() {
        let pair = SocketPair()
        defer { pair.close() }
        let input = frozenInput()
        defer { evbuffer_free(input) }
        pair.send(Array("last words".utf8))
        _ = shutdown(pair.writer, Int32(SHUT_WR))

        var status: Int32 = 99
        #expect(tb_read_socket(input, pair.reader, Self.chunk, 4, &status) == 10)
        #expect(status == Int32(TB_READ_MORE), "a short read stops before asking again")
        #expect(tb_read_socket(input, pair.reader, Self.chunk, 4, &status) == 0)
        #expect(status == Int32(TB_READ_EOF))
        #expect(contents(input) == Array("last words".utf8))
    }

    @Test func nothingToReadIsNeitherAnEndNorAnError() {
        let pair = SocketPair()
        defer { pair.close() }
        let input = frozenInput()
        defer { evbuffer_free(input) }
        var status: Int32 = 99
        #expect(tb_read_socket(input, pair.reader, Self.chunk, 4, &status) == 0)
        #expect(status == Int32(TB_READ_MORE))
    }

    @Test func aResetIsReportedAsItsErrno() throws {
        // TCP on loopback: the peer closes with RST (SO_LINGER 0).
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { _ = close(listener) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        try withUnsafeMutablePointer(to: &address) { pointer in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                try #require(bind(listener, sa, length) == 0 && listen(listener, 1) == 0)
                try #require(getsockname(listener, sa, &length) == 0)
            }
        }
        let client = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        try withUnsafePointer(to: &address) { pointer in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                try #require(connect(client, sa, length) == 0)
            }
        }
        let server = accept(listener, nil, nil)
        try #require(server >= 0)
        defer { _ = close(server) }
        _ = fcntl(server, F_SETFL, fcntl(server, F_GETFL) | O_NONBLOCK)
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
        _ = setsockopt(client, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        _ = close(client)

        let input = frozenInput()
        defer { evbuffer_free(input) }
        var status: Int32 = 99
        for _ in 0..<100 {  // the RST may take a moment to arrive: up to ~1 s
            _ = tb_read_socket(input, server, Self.chunk, 4, &status)
            if status != Int32(TB_READ_MORE) { break }
            usleep(10_000)
        }
        #expect(status == ECONNRESET)
    }

    @Test func aPlainWriteTakesWhatTheSocketAcceptsAndKeepsTheRestInOrder() {
        let pair = SocketPair()
        defer { pair.close() }
        var small: Int32 = 8_192
        _ = setsockopt(pair.writer, SOL_SOCKET, SO_SNDBUF, &small, socklen_t(MemoryLayout<Int32>.size))
        let source = evbuffer_new()!
        defer { evbuffer_free(source) }
        let sent = pattern(1 << 20)
        _ = sent.withUnsafeBytes { evbuffer_add(source, $0.baseAddress, $0.count) }

        let first = tb_send_plain_now(source, pair.writer)
        #expect(first > 0 && first < sent.count, "wrote \(first)")
        #expect(evbuffer_get_length(source) == sent.count - first)
        #expect(tb_send_plain_now(source, pair.writer) == 0, "a full socket takes nothing more")

        // What arrived, then the rest, is exactly what was sent.
        var received = [UInt8](repeating: 0, count: first)
        #expect(read(pair.reader, &received, first) == first)
        #expect(received == Array(sent[..<first]))
        #expect(contents(source) == Array(sent[first...]))
    }
}
