internal import CZlib
#if canImport(Glibc)
import Glibc
#endif

/// Where a line sits: the file as given on the command line, and its 1-based line number.
public struct LogLocation: Codable, Hashable, Sendable, CustomStringConvertible {
    public var file: String
    public var line: Int

    public init(file: String, line: Int) {
        self.file = file
        self.line = line
    }

    /// `file:line`, as compilers and editors print it.
    public var description: String { "\(file):\(line)" }
}

/// One line of a log, without its newline.
public struct LogLine: Sendable {
    /// 1-based line number in its file.
    public var number: Int
    /// The line's exact bytes; empty when the line was too long to keep (see `length`).
    public var bytes: [UInt8]
    /// The line's length in bytes, also for one too long to keep.
    public var length: Int
    /// Whether the line exceeded `LogLineReader.maximumLineLength` and was skipped rather than kept.
    public var isOversized: Bool { length > bytes.count }
}

/// Why a log file could not be read (to the end).
public struct LogReadError: Error, Sendable, CustomStringConvertible {
    /// The file as given.
    public var file: String
    /// Lines delivered before the failure (0 if it could not be opened).
    public var afterLine: Int
    /// What went wrong, from the OS or zlib.
    public var reason: String

    public var description: String {
        afterLine == 0 ? "\(file): \(reason)" : "\(file): \(reason) (after line \(afterLine))"
    }
}

/// Reads a session log line by line, plain or gzip-compressed (rotated `sessions.jsonl.2.gz`), without
/// ever holding more than one read chunk and one line in memory.
///
/// Compression is recognised by content, not by name: zlib's `gzread` reads a plain file unchanged and
/// inflates a gzip one (also several concatenated members). Memory is bounded: a line longer than
/// `maximumLineLength` (no session record comes near it) is skipped and delivered as oversized.
///
/// Blocking file I/O: run it off any event loop. Not thread-safe; one reader per file.
public final class LogLineReader {
    /// Longest line kept, in bytes. Records are well under 4 KiB; this only guards against a file that
    /// is not a session log at all.
    public static let maximumLineLength = 1 << 20
    private static let chunkSize = 256 * 1024

    /// The file as given.
    public let path: String
    /// Whether the file is gzip-compressed (known after the first read).
    public var isCompressed: Bool { file.map { gzdirect($0) == 0 } ?? false }

    private var file: gzFile?
    private var chunk: [UInt8]
    private var start = 0
    private var end = 0
    private var pending: [UInt8] = []
    private var pendingLength = 0
    private var lineNumber = 0
    private var atEnd = false

    /// Opens `path` for reading. Throws if it does not exist, is not readable or is a directory.
    public init(path: String) throws(LogReadError) {
        self.path = path
        var status = stat()
        guard stat(path, &status) == 0 else {
            throw LogReadError(file: path, afterLine: 0, reason: String(cString: strerror(errno)))
        }
        guard status.st_mode & S_IFMT != S_IFDIR else {
            throw LogReadError(file: path, afterLine: 0, reason: "is a directory")
        }
        guard let opened = gzopen(path, "rb") else {
            let reason = errno == 0 ? "cannot be opened (out of memory)" : String(cString: strerror(errno))
            throw LogReadError(file: path, afterLine: 0, reason: reason)
        }
        gzbuffer(opened, UInt32(Self.chunkSize))
        file = opened
        chunk = [UInt8](repeating: 0, count: Self.chunkSize)
    }

    deinit {
        if let file { gzclose(file) }
    }

    /// The next line, or `nil` at the end of the file. A last line without a newline is still a line.
    /// Throws when the file cannot be read further (for example a gzip file cut short); the lines
    /// delivered before stay valid.
    public func next() throws(LogReadError) -> LogLine? {
        while true {
            if start < end {
                let newline: Int? = chunk.withUnsafeBytes { buffer in
                    guard let base = buffer.baseAddress,
                          let hit = memchr(base + start, Int32(UInt8(ascii: "\n")), end - start) else { return nil }
                    return base.distance(to: UnsafeRawPointer(hit))
                }
                let stop = newline ?? end
                append(start..<stop)
                start = newline.map { $0 + 1 } ?? end
                if newline != nil { return takeLine() }
                continue
            }
            if atEnd {
                return pendingLength > 0 ? takeLine() : nil
            }
            try fill()
        }
    }

    private func append(_ range: Range<Int>) {
        let room = Self.maximumLineLength - pending.count
        if pendingLength <= Self.maximumLineLength && room > 0 {
            pending.append(contentsOf: chunk[range.lowerBound..<min(range.upperBound, range.lowerBound + room)])
        }
        pendingLength += range.count
    }

    private func takeLine() -> LogLine {
        lineNumber += 1
        let keep = pendingLength <= Self.maximumLineLength
        let line = LogLine(number: lineNumber, bytes: keep ? pending : [], length: pendingLength)
        pending.removeAll(keepingCapacity: pending.capacity <= 64 * 1024)
        pendingLength = 0
        return line
    }

    private func fill() throws(LogReadError) {
        guard let file else { atEnd = true; return }
        let count = chunk.withUnsafeMutableBytes { gzread(file, $0.baseAddress, UInt32($0.count)) }
        // gzread hands out what it inflated before a problem and reports the problem on a later call.
        var code: Int32 = 0
        let message = count > 0 ? nil : gzerror(file, &code)
        if count < 0 || (code != Z_OK && code != Z_STREAM_END) {
            atEnd = true
            let reason: String
            if code == Z_ERRNO {
                reason = String(cString: strerror(errno))
            } else if code == Z_BUF_ERROR {
                reason = "compressed data ends early (file cut short or still being written)"
            } else {
                reason = "not readable as gzip: " + (message.map { String(cString: $0) } ?? "zlib error \(code)")
            }
            throw LogReadError(file: path, afterLine: lineNumber, reason: reason)
        }
        start = 0
        end = Int(count)
        if count == 0 { atEnd = true }
    }
}
