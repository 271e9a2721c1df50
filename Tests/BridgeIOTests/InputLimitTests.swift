import BridgeIO
import BridgeModel
import Glibc
import Testing

/// A stream's input limit holds on a real socket whatever its owner does: a peer that keeps
/// writing to an owner that never takes the input fills the bridge only up to the limit, and the
/// rest waits in the kernel until the owner consumes.
@Suite struct InputLimitTests {
    /// Receives callbacks and never consumes input: the owner that is waiting for something.
    private final class IdleOwner: BufferedStreamDelegate {
        var inputCallbacks = 0
        func streamHasInput(_ stream: BufferedStream) { inputCallbacks += 1 }
        func streamDrained(_ stream: BufferedStream) {}
        func stream(_ stream: BufferedStream, reported event: StreamEvent) {}
    }

    private static let limit = 64 * 1024
    /// One wake-up may pass the limit by at most one read (16 KiB less libevent's chain header).
    private static let oneRead = 16 * 1024

    /// Writes as much as the socket takes right now (non-blocking), at most `cap` bytes.
    private func fill(_ fd: Int32, cap: Int) -> Int {
        let block = [UInt8](repeating: 0x61, count: 64 * 1024)
        var total = 0
        while total < cap {
            let written = block.withUnsafeBytes { write(fd, $0.baseAddress, min($0.count, cap - total)) }
            if written <= 0 { break }
            total += written
        }
        return total
    }

    /// Runs the loop for `milliseconds`, writing to `writer` before each turn.
    private func run(_ loop: EventLoop, milliseconds: Int64, feeding writer: Int32, sent: inout Int) {
        var stopped = false
        let timer = Timer(loop: loop) { stopped = true; loop.stop() }
        timer.schedule(afterMilliseconds: milliseconds)
        // The loop stops at the timer; meanwhile the kernel's buffers hold what the stream leaves.
        sent += fill(writer, cap: 8 * 1024 * 1024)
        loop.run()
        #expect(stopped)
        sent += fill(writer, cap: 8 * 1024 * 1024)
    }

    @Test func aPlainStreamStopsReadingAtItsLimitAndResumesOnceInputIsTaken() throws {
        var fds: [Int32] = [0, 0]
        try #require(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
        for fd in fds { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
        let writer = fds[1]
        defer { close(writer) }
        let loop = try EventLoop(dns: DNSConfig())
        let owner = IdleOwner()
        let stream = BufferedStream(socket: fds[0], loop: loop)
        defer { stream.free(sendCloseNotify: false) }
        stream.delegate = owner
        stream.setInputLimit(Self.limit)
        stream.enableReading()

        var sent = 0
        for _ in 0..<5 { run(loop, milliseconds: 20, feeding: writer, sent: &sent) }
        let held = stream.inputLength
        #expect(held >= Self.limit, "the stream read less than its limit: \(held)")
        #expect(held <= Self.limit + Self.oneRead, "the stream buffered \(held) bytes past a \(Self.limit)-byte limit")
        #expect(sent > held + 64 * 1024, "the writer could not get ahead of the reader, so nothing was held back")

        // Taking the input out lets reading go on, again up to the limit.
        stream.discardInput(held)
        run(loop, milliseconds: 20, feeding: writer, sent: &sent)
        #expect(stream.inputLength >= Self.limit && stream.inputLength <= Self.limit + Self.oneRead)

        // The owner's own disableReading still wins over the limit's resume.
        stream.disableReading()
        stream.discardInput(stream.inputLength)
        run(loop, milliseconds: 20, feeding: writer, sent: &sent)
        #expect(stream.inputLength == 0, "reading resumed although the owner had disabled it")
    }
}
