import BridgeIO

/// Connections the bridge answers itself, outside any session, and then closes: it writes the
/// answer, stops reading, and frees the stream once the answer has drained, the client went away,
/// or `limitMilliseconds` passed (a client that never reads cannot hold the connection).
///
/// Owned by one worker; loop-thread only. Each pending answer stays here until it is freed.
final class ClosingAnswers {
    /// How long a client gets to read an answer before its connection is closed regardless.
    static let limitMilliseconds: Int64 = 5_000

    private var pending: [ObjectIdentifier: Pending] = [:]

    /// Takes over `stream` (it must have no other delegate from now on) and sends it `bytes`.
    func answer(_ stream: BufferedStream, with bytes: [UInt8], loop: EventLoop) {
        let entry = Pending(stream: stream, owner: self)
        pending[ObjectIdentifier(entry)] = entry
        entry.start(bytes, loop: loop)
    }

    /// Frees every pending answer at once (the worker is stopping).
    func closeAll() {
        for entry in Array(pending.values) { entry.close() }
    }

    fileprivate func ended(_ entry: Pending) {
        pending.removeValue(forKey: ObjectIdentifier(entry))
    }

    /// One connection being answered.
    fileprivate final class Pending: BufferedStreamDelegate {
        private let stream: BufferedStream
        private unowned let owner: ClosingAnswers
        private var timer: Timer?
        private var closed = false

        init(stream: BufferedStream, owner: ClosingAnswers) {
            self.stream = stream
            self.owner = owner
        }

        func start(_ bytes: [UInt8], loop: EventLoop) {
            stream.delegate = self
            stream.disableReading()
            let timer = Timer(loop: loop) { [weak self] in self?.close() }
            timer.schedule(afterMilliseconds: ClosingAnswers.limitMilliseconds)
            self.timer = timer
            stream.write(bytes)
            stream.setWriteLowWatermark(0)
            stream.enableWriting()
            if stream.outputLength == 0 { close() }
        }

        func close() {
            guard !closed else { return }
            closed = true
            timer?.cancel()
            timer = nil
            stream.free(sendCloseNotify: stream.isTLS)
            owner.ended(self)
        }

        func streamHasInput(_ stream: BufferedStream) {}

        func streamDrained(_ stream: BufferedStream) {
            if stream.outputLength == 0 { close() }
        }

        func stream(_ stream: BufferedStream, reported event: StreamEvent) {
            close()
        }
    }
}
