#if canImport(Glibc)
import Glibc
#endif

/// Writes every byte of `bytes` to a blocking descriptor (a file, a pipe, a terminal), retrying
/// short writes and writes interrupted by a signal. Returns false on any other error, with `errno`
/// still saying which. Not for the event loop's non-blocking sockets: those go through
/// `BufferedStream`.
@discardableResult
public func writeAll(_ bytes: [UInt8], to descriptor: Int32) -> Bool {
    bytes.withUnsafeBytes { buffer in
        var offset = 0
        while offset < buffer.count {
            let written = write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                return false
            }
            offset += written
        }
        return true
    }
}
