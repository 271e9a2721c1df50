import BridgeIO
#if canImport(Glibc)
import Glibc
#endif

/// The demo's few file operations: a private work directory, small text files, and removing the
/// directory again.
enum DemoFiles {
    /// A new 0700 directory `tls-bridge-demo-XXXXXX` under $TMPDIR (or /tmp).
    static func makeWorkDirectory() throws(DemoFailure) -> String {
        var base = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
        if base.isEmpty { base = "/tmp" }
        while base.count > 1 && base.hasSuffix("/") { base.removeLast() }
        var template = Array("\(base)/tls-bridge-demo-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        guard let made else {
            throw DemoFailure("could not create a work directory under \(base): \(String(cString: strerror(errno)))"
                + " (set TMPDIR to a writable directory)")
        }
        return String(cString: made)
    }

    /// The whole file as UTF-8 text (invalid sequences repaired), or nil if it cannot be read.
    static func read(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count > 0 {
                bytes += buffer[0..<count]
            } else if count < 0 && errno == EINTR {
                continue
            } else {
                break
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Writes `text` to a new file (replacing one that is there) with `mode`.
    static func write(_ text: String, to path: String, mode: mode_t = 0o644) throws(DemoFailure) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else { throw DemoFailure("could not write \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        guard writeAll(Array(text.utf8), to: fd) else {
            throw DemoFailure("could not write \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// Removes `path` and everything under it, never following a symbolic link out of it.
    static func removeTree(_ path: String) {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        guard info.st_mode & S_IFMT == S_IFDIR else {
            unlink(path)
            return
        }
        if let directory = opendir(path) {
            var names: [String] = []
            while let entry = readdir(directory) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) {
                    String(cString: $0.bindMemory(to: CChar.self).baseAddress!)
                }
                if name != "." && name != ".." { names.append(name) }
            }
            closedir(directory)
            for name in names { removeTree(path + "/" + name) }
        }
        rmdir(path)
    }

    /// `text` as a TOML basic string, quotes included.
    static func tomlString(_ text: String) -> String {
        var quoted = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": quoted += "\\\""
            case "\\": quoted += "\\\\"
            case "\n": quoted += "\\n"
            case "\t": quoted += "\\t"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7f {
                    let hex = String(scalar.value, radix: 16, uppercase: true)
                    quoted += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    quoted.unicodeScalars.append(scalar)
                }
            }
        }
        return quoted + "\""
    }
}
