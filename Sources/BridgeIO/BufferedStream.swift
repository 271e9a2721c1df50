internal import CLibevent
internal import COpenSSL
internal import CBridgeShims
#if canImport(Glibc)
import Glibc
#endif

/// What a stream reports besides data.
public enum StreamEvent: Equatable {
    /// The TLS handshake (or, for plain sockets, the connect) finished.
    case connected
    /// The peer ended the stream cleanly.
    case endOfStream
    /// The peer went away without TLS close_notify after the handshake: all data arrived, but the
    /// close was not authenticated. Treated as an end of stream, logged as such.
    case endOfStreamWithoutCloseNotify
    /// A socket or TLS error, with OpenSSL's reasons when there are any.
    case failed(StreamFailure)
}

/// Receives a stream's callbacks, on the loop's thread.
public protocol BufferedStreamDelegate: AnyObject {
    /// New bytes are waiting in the input buffer.
    func streamHasInput(_ stream: BufferedStream)
    /// The output buffer drained to its low-water mark (0 unless set).
    func streamDrained(_ stream: BufferedStream)
    /// Connected, ended, or failed.
    func stream(_ stream: BufferedStream, reported event: StreamEvent)
}

/// One socket with libevent's input and output buffers: a `bufferevent`, plain or TLS.
///
/// Owns the bufferevent, and through it the socket and (for TLS) the `SSL`. Data moves between
/// two streams buffer to buffer (`moveInput(to:)`), never through Swift arrays. Loop-thread only.
///
/// Two shortcuts keep the relay's system calls close to the minimum (see `relay_io.c`): a plain
/// socket is read by the stream itself, 16 KiB at a time, where libevent reads 4 KiB (a relayed
/// chunk then fills a TLS record); and moved bytes go straight to the other socket when nothing
/// is queued there, instead of arming a write event and waiting a loop turn for it.
public final class BufferedStream {
    let bev: OpaquePointer
    /// The TLS connection, owned by `bev`; nil for a plain stream.
    let ssl: OpaquePointer?
    /// Reads a plain socket in place of the bufferevent (owned); nil for TLS streams.
    private var readEvent: OpaquePointer?
    /// The plain socket reported its end or an error: reading is over for good.
    private var readEnded = false
    /// Is `bev` a socket of its own (not a TLS filter over another bufferevent)?
    private let ownsSocket: Bool
    /// For a TLS filter: the bufferevent below it, which owns the socket (owned by the filter).
    private var underlying: OpaquePointer? { ownsSocket ? nil : bufferevent_get_underlying(bev) }
    /// Is this a TLS stream?
    public var isTLS: Bool { ssl != nil }
    /// Receives the callbacks. Weak: the delegate owns the stream, not the other way round.
    public weak var delegate: (any BufferedStreamDelegate)?
    private var freed = false
    /// For a TLS filter: our callback on the output of the bufferevent it writes through, whose
    /// socket is what drains (the filter's own output empties at once). Removed before freeing.
    private var underlyingOutputWatch: OpaquePointer?
    /// `streamDrained` fires at or below this many queued bytes.
    private var writeLowWatermark = 0
    /// The most input bytes the stream holds before it stops reading the socket (0: no limit).
    private var inputLimit = 0
    /// The owner wants input (`enableReading`); reading may still be held by `inputLimit`.
    private var readingWanted = false
    /// A plain socket's reading is held because the input buffer reached `inputLimit`.
    private var heldAtInputLimit = false
    /// A TLS stream's end, waiting one loop turn for the bytes before it (see `holdEnd`).
    private var heldEnd: StreamEvent?
    /// The event that delivers `heldEnd` (owned).
    private var endDelivery: OpaquePointer?

    /// Wraps an accepted or connected plain socket. The stream owns `fd` from now on.
    public init(socket fd: Int32, loop: EventLoop) {
        bev = bufferevent_socket_new(loop.base, fd, Int32(BEV_OPT_CLOSE_ON_FREE.rawValue))
        ssl = nil
        ownsSocket = true
        installCallbacks()
        let context = Unmanaged.passUnretained(self).toOpaque()
        readEvent = event_new(loop.base, fd, Int16(EV_READ | EV_PERSIST), { _, _, context in
            let stream = Unmanaged<BufferedStream>.fromOpaque(context!).takeUnretainedValue()
            withExtendedLifetime(stream) { stream.socketReadable() }
        }, context)
    }

    /// Starts a TLS client handshake toward an upstream over a connected socket. The stream owns
    /// the socket from now on; if OpenSSL cannot make the connection, the socket is closed and
    /// the initialiser fails.
    public convenience init?(tlsClientSocket fd: Int32, context: UpstreamTLSContext, loop: EventLoop) {
        self.init(tlsClientSocket: fd, ssl: context.makeConnection(), loop: loop)
    }

    /// Starts a TLS client handshake toward a legacy backend, as above.
    public convenience init?(tlsClientSocket fd: Int32, context: BackendTLSContext, loop: EventLoop) {
        self.init(tlsClientSocket: fd, ssl: context.makeConnection(), loop: loop)
    }

    private init?(tlsClientSocket fd: Int32, ssl: OpaquePointer?, loop: EventLoop) {
        guard let ssl else {
            close(fd)
            return nil
        }
        bev = bufferevent_openssl_socket_new(loop.base, fd, ssl, BUFFEREVENT_SSL_CONNECTING,
                                             Int32(BEV_OPT_CLOSE_ON_FREE.rawValue))
        self.ssl = ssl
        ownsSocket = true
        // Report a close without close_notify as an EOF-like event rather than a hard error;
        // `eventReported` still tells the two apart.
        bufferevent_openssl_set_allow_dirty_shutdown(bev, 1)
        installCallbacks()
    }

    /// Starts a TLS server handshake with a merchant on an accepted socket. The stream owns the
    /// socket from now on; if OpenSSL cannot make the connection, the socket is closed and the
    /// initialiser fails.
    public init?(tlsServerSocket fd: Int32, context: DownstreamTLSContext, loop: EventLoop) {
        guard let ssl = context.makeConnection() else {
            close(fd)
            return nil
        }
        bev = bufferevent_openssl_socket_new(loop.base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                             Int32(BEV_OPT_CLOSE_ON_FREE.rawValue))
        self.ssl = ssl
        ownsSocket = true
        // Legacy clients often just close TCP; that still ends the stream, see `eventReported`.
        bufferevent_openssl_set_allow_dirty_shutdown(bev, 1)
        installCallbacks()
    }

    /// Wraps an existing bufferevent (a TLS filter over another stream's bufferevent).
    private init(filter: OpaquePointer, ssl: OpaquePointer) {
        bev = filter
        self.ssl = ssl
        ownsSocket = false
        bufferevent_openssl_set_allow_dirty_shutdown(bev, 1)
        installCallbacks()
        // A filter encrypts into the underlying bufferevent's output at once, so backpressure and
        // draining must watch that buffer; the filter's own write callback never sees it shrink.
        if let underlying {
            underlyingOutputWatch = evbuffer_add_cb(bufferevent_get_output(underlying), { _, info, context in
                guard let info, info.pointee.n_deleted > 0 else { return }
                let stream = Unmanaged<BufferedStream>.fromOpaque(context!).takeUnretainedValue()
                withExtendedLifetime(stream) { stream.outputShrank() }
            }, Unmanaged.passUnretained(self).toOpaque())
        }
    }

    /// Reports `streamDrained` once everything queued (for a filter: below it too) is down to the
    /// low-water mark. libevent's own callback alone would say so for a filter every time it passes
    /// bytes down, whatever waits below.
    private func outputShrank() {
        guard !freed, outputLength <= writeLowWatermark else { return }
        delegate?.streamDrained(self)
    }

    /// Starts a TLS server handshake inside this plain stream (after an HTTP CONNECT), presenting
    /// the certificate for `host`. The returned stream owns this one's bufferevent and socket; this
    /// object becomes inert. Nil (and this stream unchanged) when the listener has no identity for
    /// `host` or OpenSSL fails.
    public func startTLSServer(context: DownstreamTLSContext, host: String) -> BufferedStream? {
        guard !freed, ssl == nil, let ssl = context.makeConnection(forHost: host) else { return nil }
        return startTLS(ssl, state: BUFFEREVENT_SSL_ACCEPTING)
    }

    /// Starts the TLS client handshake toward an upstream inside this plain stream (a tunnel an
    /// outbound proxy opened), with the upstream's whole policy: SNI, verification, client
    /// certificate. Ownership as for `startTLSServer`; nil (and this stream unchanged) when OpenSSL
    /// cannot make the connection.
    public func startTLSClient(context: UpstreamTLSContext) -> BufferedStream? {
        guard !freed, ssl == nil, let ssl = context.makeConnection() else { return nil }
        return startTLS(ssl, state: BUFFEREVENT_SSL_CONNECTING)
    }

    /// Puts a TLS filter over this stream's bufferevent. Bytes already read stay in its input and
    /// are the first the handshake sees.
    private func startTLS(_ ssl: OpaquePointer, state: bufferevent_ssl_state) -> BufferedStream? {
        let base = bufferevent_get_base(bev)
        // Our callbacks go first: the filter installs its own on this bufferevent, and reads it
        // through the bufferevent (bytes already read stay in its input for the handshake).
        bufferevent_setcb(bev, nil, nil, nil, nil)
        let wasReading = readEvent.map { event_pending($0, Int16(EV_READ), nil) != 0 } ?? false
        if let readEvent { event_del(readEvent) }
        guard let filter = bufferevent_openssl_filter_new(base, bev, ssl, state, Int32(BEV_OPT_CLOSE_ON_FREE.rawValue)) else {
            SSL_free(ssl)
            installCallbacks()
            if wasReading, let readEvent { event_add(readEvent, nil) }
            return nil
        }
        // The filter now owns our bufferevent (close-on-free).
        freed = true
        if let readEvent { event_free(readEvent) }
        readEvent = nil
        return BufferedStream(filter: filter, ssl: ssl)
    }

    deinit {
        free(sendCloseNotify: false)
    }

    private func installCallbacks() {
        let context = Unmanaged.passUnretained(self).toOpaque()
        bufferevent_setcb(bev, { _, context in
            let stream = Unmanaged<BufferedStream>.fromOpaque(context!).takeUnretainedValue()
            withExtendedLifetime(stream) { stream.delegate?.streamHasInput(stream) }
        }, { _, context in
            let stream = Unmanaged<BufferedStream>.fromOpaque(context!).takeUnretainedValue()
            withExtendedLifetime(stream) { stream.outputShrank() }
        }, { _, what, context in
            let stream = Unmanaged<BufferedStream>.fromOpaque(context!).takeUnretainedValue()
            withExtendedLifetime(stream) { stream.eventReported(what) }
        }, context)
    }

    private func eventReported(_ what: Int16) {
        let socketError = errno
        let flags = Int32(what)
        let event: StreamEvent
        if flags & BEV_EVENT_CONNECTED != 0 {
            event = .connected
        } else if flags & BEV_EVENT_EOF != 0, let ssl, SSL_get_shutdown(ssl) & SSL_RECEIVED_SHUTDOWN == 0 {
            // No close_notify arrived. On a TLS socket, OpenSSL 3 reports a bare TCP close as
            // UNEXPECTED_EOF (an ERROR, below), so an EOF here is libevent's "dirty shutdown": a
            // socket error such as a reset, which must not pass for a clean end. A TLS filter
            // (after CONNECT) reports its underlying stream's TCP close this way instead.
            if underlying != nil {
                event = .endOfStreamWithoutCloseNotify
            } else if socketError != 0 && socketError != EAGAIN && socketError != EINTR {
                event = .failed(StreamFailure(socketError: socketError))
            } else {
                event = .failed(StreamFailure(text: "the connection broke without TLS close_notify"))
            }
        } else if flags & BEV_EVENT_EOF != 0 {
            event = .endOfStream
        } else if flags & BEV_EVENT_ERROR != 0 {
            let (tlsText, reasons) = ssl == nil ? ("", []) : drainBuffereventErrors(bev)
            if reasons.contains(SSL_R_UNEXPECTED_EOF_WHILE_READING) {
                event = .endOfStreamWithoutCloseNotify
            } else if !tlsText.isEmpty {
                event = .failed(StreamFailure(text: tlsText, sslReasons: reasons, socketError: socketError == 0 ? nil : socketError))
            } else if socketError != 0 {
                event = .failed(StreamFailure(socketError: socketError))
            } else {
                event = .failed(StreamFailure(text: "connection closed during the TLS handshake"))
            }
        } else {
            return
        }
        if ssl != nil, event != .connected {
            holdEnd(event)
            return
        }
        delegate?.stream(self, reported: event)
    }

    /// Delivers a TLS stream's end (or failure) one loop turn late, after the bytes that came before
    /// it. libevent 2.1's TLS read pass (`do_read` in bufferevent_openssl.c) runs the event callback
    /// for a close_notify, a reset or an error *before* it commits what it decrypted earlier in the
    /// same pass to the input buffer: reported at once, the end overtakes the last bytes, and an
    /// owner that closes on it loses them (a gateway's answer followed at once by close_notify).
    private func holdEnd(_ event: StreamEvent) {
        heldEnd = event
        if endDelivery == nil {
            endDelivery = event_new(bufferevent_get_base(bev), -1, 0, { _, _, context in
                let stream = Unmanaged<BufferedStream>.fromOpaque(context!).takeUnretainedValue()
                withExtendedLifetime(stream) { stream.deliverHeldEnd() }
            }, Unmanaged.passUnretained(self).toOpaque())
        }
        if let endDelivery { event_active(endDelivery, EV_TIMEOUT, 1) }
    }

    private func deliverHeldEnd() {
        guard !freed, let event = heldEnd else { return }
        heldEnd = nil
        // The bytes committed after the end was seen: offered first, as they arrived first.
        if inputLength > 0 { delegate?.streamHasInput(self) }
        guard !freed else { return }
        delegate?.stream(self, reported: event)
    }

    /// Starts delivering input (up to the input limit, see `setInputLimit`).
    public func enableReading() {
        readingWanted = true
        if let readEvent {
            if !readEnded, !heldAtInputLimit { event_add(readEvent, nil) }
        } else {
            bufferevent_enable(bev, Int16(EV_READ))
        }
    }

    /// Stops reading from the socket; queued input stays.
    public func disableReading() {
        readingWanted = false
        if let readEvent {
            event_del(readEvent)
        } else {
            bufferevent_disable(bev, Int16(EV_READ))
        }
    }

    /// Bounds the input buffer: once it holds `bytes`, the stream stops reading the socket until
    /// the owner has taken input out (moved or discarded it), whatever the owner asked with
    /// `enableReading`. So an owner that cannot use its input yet (a parser waiting for a peer, a
    /// session that reads nothing more) never makes the bridge buffer without limit: the bytes
    /// wait in the kernel and TCP pushes back on the sender. One read may pass the limit by up to
    /// a read's worth (16 KiB, or one TLS record).
    public func setInputLimit(_ bytes: Int) {
        inputLimit = max(bytes, 0)
        if readEvent == nil {
            // libevent holds a bufferevent's reading at its read high-water mark and resumes it
            // when the input shrinks below; for a TLS filter it holds the socket below too.
            bufferevent_setwatermark(bev, Int16(EV_READ), 0, inputLimit)
        } else {
            holdOrResumeReading()
        }
    }

    /// For a plain socket read by `readEvent`: hold reading while the input is at its limit,
    /// resume once it is below (and the owner wants input).
    private func holdOrResumeReading() {
        guard let readEvent, inputLimit > 0 else { return }
        let full = inputLength >= inputLimit
        if full, !heldAtInputLimit {
            heldAtInputLimit = true
            event_del(readEvent)
        } else if !full, heldAtInputLimit {
            heldAtInputLimit = false
            if readingWanted, !readEnded { event_add(readEvent, nil) }
        }
    }

    /// Up to 16 KiB per read, less the buffer chain's own header, so that one chain fills one
    /// TLS record and its allocation stays at 16 KiB.
    private static let readChunk = 16_384 - 128
    /// Reads per wake-up: bounds how far one busy socket runs past `buffer_size` before the
    /// session's backpressure looks, and how long it holds the loop.
    private static let readsPerWakeup: Int32 = 4

    /// The plain socket is readable: read, deliver, then report an end or error (the bytes read
    /// before it first, as libevent does).
    private func socketReadable() {
        guard !freed, let readEvent else { return }
        var status: Int32 = 0
        var reads = Self.readsPerWakeup
        if inputLimit > 0 {
            let room = inputLimit - inputLength
            reads = Int32(max(1, min(Int(reads), (room + Self.readChunk - 1) / Self.readChunk)))
        }
        let count = tb_read_socket(bufferevent_get_input(bev), bufferevent_getfd(bev), Self.readChunk, reads, &status)
        if status != Int32(TB_READ_MORE) {
            // Both stay readable for ever (level-triggered): stop asking.
            readEnded = true
            event_del(readEvent)
        }
        holdOrResumeReading()
        if count > 0 { delegate?.streamHasInput(self) }
        guard !freed, status != Int32(TB_READ_MORE) else { return }
        delegate?.stream(self, reported: status == Int32(TB_READ_EOF) ? .endOfStream : .failed(StreamFailure(socketError: status)))
    }
    /// Allows writing (on by default after connect); needed once for a TLS handshake to progress.
    public func enableWriting() { bufferevent_enable(bev, Int16(EV_WRITE)) }

    /// Bytes waiting in the input buffer.
    public var inputLength: Int { evbuffer_get_length(bufferevent_get_input(bev)) }

    /// Has the peer stayed silent: nothing buffered or pending in TLS, and the socket open with
    /// nothing unread (peeked, not read)? A connection that waited unused (a spare) is fit to carry
    /// a session only then: anything else is the peer closing (FIN, reset, close_notify) or
    /// speaking unasked, and no byte of a session may go to it.
    public var peerIsSilent: Bool {
        guard !freed, inputLength == 0 else { return false }
        if let ssl, SSL_pending(ssl) > 0 { return false }
        let fd = bufferevent_getfd(underlying ?? bev)
        guard fd >= 0 else { return false }
        var byte: UInt8 = 0
        let peeked = recv(fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
        return peeked < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)
    }
    /// Bytes queued for the peer, not yet written (for a TLS filter, also the encrypted bytes
    /// queued below it).
    public var outputLength: Int {
        var length = evbuffer_get_length(bufferevent_get_output(bev))
        if let underlying {
            length += evbuffer_get_length(bufferevent_get_output(underlying))
        }
        return length
    }

    /// Moves the whole input buffer to `other`'s output without copying the bytes. Returns the count.
    @discardableResult
    public func moveInput(to other: BufferedStream) -> Int {
        guard let input = bufferevent_get_input(bev) else { return 0 }
        let count = evbuffer_get_length(input)
        if count > 0 {
            other.sendNow(from: input)
            if evbuffer_get_length(input) > 0 {
                evbuffer_add_buffer(bufferevent_get_output(other.bev), input)
            }
            holdOrResumeReading()
        }
        return count
    }

    /// Most TLS bytes one `sendNow` encrypts before leaving the rest to the write event.
    private static let sendNowLimit = 256 * 1024

    /// Writes the front of `source` to this stream's socket right away when nothing is queued
    /// here (queued bytes go first, so then the bufferevent writes as usual). What the socket
    /// does not take stays in `source`; a would-block or an error is left for the bufferevent,
    /// which meets it again when it writes the rest.
    private func sendNow(from source: OpaquePointer) {
        guard !freed, ownsSocket, outputLength == 0 else { return }
        if let ssl {
            guard SSL_is_init_finished(ssl) == 1 else { return }
            _ = tb_send_tls_now(source, ssl, Self.sendNowLimit)
        } else {
            _ = tb_send_plain_now(source, bufferevent_getfd(bev))
        }
    }

    /// Calls `body` with up to `maxBytes` of the input buffer's start, made contiguous (this may copy
    /// within libevent's buffer). The pointer is valid only inside `body`.
    public func withInputPrefix<R>(maxBytes: Int, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        let input = bufferevent_get_input(bev)
        let count = min(maxBytes, evbuffer_get_length(input))
        guard count > 0, let start = evbuffer_pullup(input, count) else {
            return body(UnsafeRawBufferPointer(start: nil, count: 0))
        }
        return body(UnsafeRawBufferPointer(start: start, count: count))
    }

    /// Drops the first `count` input bytes (a request head the bridge rewrote).
    public func discardInput(_ count: Int) {
        evbuffer_drain(bufferevent_get_input(bev), count)
        holdOrResumeReading()
    }

    /// Moves the first `count` input bytes to `other`'s output without copying. Returns the count moved.
    @discardableResult
    public func moveInput(_ count: Int, to other: BufferedStream) -> Int {
        guard count > 0 else { return 0 }
        let moved = Int(evbuffer_remove_buffer(bufferevent_get_input(bev), bufferevent_get_output(other.bev), count))
        holdOrResumeReading()
        return moved
    }

    /// Queues bytes the bridge itself produced (a PROXY header, an HTTP answer) for the peer.
    public func write(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { _ = bufferevent_write(bev, $0.baseAddress, $0.count) }
    }

    /// `streamDrained` fires once the output is at or below `bytes`.
    public func setWriteLowWatermark(_ bytes: Int) {
        writeLowWatermark = bytes
        bufferevent_setwatermark(bev, Int16(EV_WRITE), bytes, 0)
    }

    /// Sends FIN on a plain socket (nothing more will be written; reading goes on). Only for a
    /// plain stream whose output is already written: TLS would need close_notify first.
    public func shutdownWriting() {
        guard !freed, ssl == nil, ownsSocket else { return }
        _ = shutdown(bufferevent_getfd(bev), Int32(SHUT_WR))
    }

    /// Closes the socket and frees everything the stream owns. With `sendCloseNotify`, a TLS
    /// stream first sends close_notify (never after a fatal TLS error). Idempotent.
    public func free(sendCloseNotify: Bool) {
        guard !freed else { return }
        freed = true
        bufferevent_setcb(bev, nil, nil, nil, nil)
        if let readEvent { event_free(readEvent) }
        readEvent = nil
        if let endDelivery { event_free(endDelivery) }
        endDelivery = nil
        if let underlyingOutputWatch, let underlying {
            evbuffer_remove_cb_entry(bufferevent_get_output(underlying), underlyingOutputWatch)
        }
        underlyingOutputWatch = nil
        if sendCloseNotify, let ssl {
            _ = SSL_shutdown(ssl)
            ERR_clear_error()
        }
        bufferevent_free(bev)
    }

    /// What the TLS handshake negotiated and verified; nil for a plain stream.
    public func tlsDetails() -> TLSDetails? {
        ssl.map(TLSDetails.init(ssl:))
    }

    /// What a TLS client offered, for a server-side stream whose ClientHello was read.
    public func clientHello() -> ClientHelloSummary? {
        ssl.flatMap(ClientHelloSummary.init(ssl:))
    }
}
