import BridgeModel
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The session log: one JSON object per line, appended when a session ends.
///
/// Shared by all workers. Each record goes out in a single `write(2)` on an `O_APPEND` descriptor,
/// so lines from different threads never interleave. Records carry metadata only (see
/// `SessionRecord`); nothing here ever sees payload bytes.
public final class SessionLog: Sendable {
    private let fd: Int32
    private let ownsDescriptor: Bool

    /// Opens the destination. A file is created 0640 if missing and appended to.
    public init(_ destination: LogDestination) throws(ConfigError) {
        switch destination {
        case .stdout:
            fd = STDOUT_FILENO
            ownsDescriptor = false
        case .stderr:
            fd = STDERR_FILENO
            ownsDescriptor = false
        case .file(let path):
            let opened = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
            guard opened >= 0 else {
                throw ConfigError(key: "log.sessions", message: "cannot open \(path) for appending: \(String(cString: strerror(errno)))")
            }
            fd = opened
            ownsDescriptor = true
        }
    }

    deinit {
        if ownsDescriptor { close(fd) }
    }

    /// Appends one encoded record and a newline.
    func append(_ line: [UInt8]) {
        line.withUnsafeBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    return
                }
                offset += written
            }
        }
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
