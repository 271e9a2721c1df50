import BridgeIO

/// Ends a plain client connection the way web servers do after answering a client that may still
/// be sending (a refused request, bytes pipelined after `Connection: close`): send FIN, read and
/// drop what still comes for a short while, then close.
///
/// Closing at once with unread input makes the kernel answer with a reset, and a reset can destroy
/// the answer the bridge just wrote before the client has read it. Bounded in time and bytes; the
/// session's record is already written when this starts.
final class LingeringClose: BufferedStreamDelegate {
    /// How long a lingering connection may stay, and how much it may still send.
    static let maxMilliseconds: Int64 = 2000
    static let maxBytes = 1024 * 1024

    private let stream: BufferedStream
    private var timer: Timer?
    private var dropped = 0
    private var ended: ((LingeringClose) -> Void)?

    /// Takes over `stream` (plain, its output already written) and calls `ended` once it is closed.
    init(_ stream: BufferedStream, loop: EventLoop, ended: @escaping (LingeringClose) -> Void) {
        self.stream = stream
        self.ended = ended
        stream.delegate = self
        stream.shutdownWriting()
        stream.discardInput(stream.inputLength)
        stream.enableReading()
        let timer = Timer(loop: loop) { [weak self] in self?.close() }
        timer.schedule(afterMilliseconds: Self.maxMilliseconds)
        self.timer = timer
    }

    /// Closes now (also when the worker stops).
    func close() {
        guard let ended else { return }
        self.ended = nil
        timer?.cancel()
        stream.free(sendCloseNotify: false)
        ended(self)
    }

    func streamHasInput(_ stream: BufferedStream) {
        dropped += stream.inputLength
        stream.discardInput(stream.inputLength)
        if dropped > Self.maxBytes { close() }
    }

    func streamDrained(_ stream: BufferedStream) {}

    func stream(_ stream: BufferedStream, reported event: StreamEvent) {
        close()
    }
}
