import BridgeModel
import BridgeChain
import BridgeIO
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The session log: one JSON object per line, appended when a session ends.
///
/// Shared by all workers. Each record goes out in a single `write(2)` on an `O_APPEND` descriptor,
/// so lines from different threads never interleave. Records carry metadata only (see
/// `SessionRecord`); nothing here ever sees payload bytes.
///
/// With `[log] chain = true` each record carries `prev`, the SHA-256 of the line before it. The
/// chain continues across restarts (from the file's last line) and across SIGHUP reopens (from
/// memory), and `tls-bridge report --verify` checks it.
public final class SessionLog: Sendable {
    private let fd: Int32
    private let ownsDescriptor: Bool
    /// Whether records are chained, and the digest of the last line written. Chaining holds this
    /// lock across encode and write, so two workers can never claim the same predecessor.
    private let chaining: Bool
    private let chain: Mutex<String>

    /// Opens the destination. A file is created 0640 if missing and appended to. `previous` is the
    /// log this one replaces on reload (its chain continues here).
    public init(_ config: LogConfig, previous: SessionLog? = nil) throws(ConfigError) {
        switch config.sessions {
        case .stdout:
            fd = STDOUT_FILENO
            ownsDescriptor = false
        case .stderr:
            fd = STDERR_FILENO
            ownsDescriptor = false
        case .file(let path):
            let opened = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
            guard opened >= 0 else {
                throw ConfigError(key: "log.sessions", message: "cannot open \(path) for appending: \(String(cString: strerror(errno)))")
            }
            fd = opened
            ownsDescriptor = true
        }
        chaining = config.chain
        guard config.chain else {
            chain = Mutex("")
            return
        }
        let carried = previous.flatMap { $0.chaining ? $0.chain.withLock { $0 } : nil }
        chain = Mutex(carried ?? Self.lastLine(of: fd).map(ChainDigest.digest(ofLine:)) ?? "genesis")
    }

    deinit {
        if ownsDescriptor { close(fd) }
    }

    /// Encodes and appends one record (with its `prev` when chaining).
    func append(_ record: SessionRecord, encoder: RecordEncoder) {
        guard chaining else {
            write(encoder.line(for: record))
            return
        }
        chain.withLock { previous in
            var chained = record
            chained.prev = previous
            let line = encoder.line(for: chained)
            write(line)
            previous = ChainDigest.digest(ofLine: Array(line.dropLast()))
        }
    }

    private func write(_ line: [UInt8]) {
        writeAll(line, to: fd)
    }

    /// The last complete line of a regular file (without its newline), read from its end.
    private static func lastLine(of fd: Int32) -> [UInt8]? {
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, info.st_size > 1 else { return nil }
        let size = Int(info.st_size)
        let window = min(size, 1 << 20)
        var buffer = [UInt8](repeating: 0, count: window)
        let read = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, window, off_t(size - window)) }
        guard read == window else { return nil }
        var end = window
        if buffer[end - 1] == UInt8(ascii: "\n") { end -= 1 }
        let start = buffer[..<end].lastIndex(of: UInt8(ascii: "\n")).map { $0 + 1 } ?? 0
        return end > start ? Array(buffer[start..<end]) : nil
    }
}

/// Encodes records for one worker thread (JSONEncoder is not shared across threads).
final class RecordEncoder {
    private let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        // Sorted keys: every record has the same field order, whatever the hashing of this run.
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    func line(for record: SessionRecord) -> [UInt8] {
        guard var bytes = try? Array(encoder.encode(record)) else { return [] }
        bytes.append(UInt8(ascii: "\n"))
        return bytes
    }
}
