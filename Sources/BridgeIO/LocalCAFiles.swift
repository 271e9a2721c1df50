internal import BridgeModel
#if canImport(Glibc)
import Glibc
#endif

/// File handling for the local CA's PEM files: exact modes whatever the umask, no overwriting of a
/// CA, and no half-written certificate or key left behind when a write fails.
enum LocalCAFiles {
    /// `directory/name`, without a doubled slash.
    static func join(_ directory: String, _ name: String) -> String {
        directory.hasSuffix("/") ? directory + name : directory + "/" + name
    }

    /// Does anything (even a dangling symlink) exist at `path`?
    static func exists(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0
    }

    /// Creates `path` as a directory with mode 0700 when it does not exist yet (missing parents
    /// 0755, as `mkdir -p` would); an existing directory is used as it is.
    static func ensureDirectory(_ path: String, key: String) throws(ConfigError) {
        if mkdir(path, 0o700) == 0 { chmod(path, 0o700); return }
        var failure = errno
        if failure == ENOENT {
            var parent = ""
            for component in path.split(separator: "/").dropLast() {
                parent += (parent.isEmpty && !path.hasPrefix("/") ? "" : "/") + component
                _ = mkdir(parent, 0o755)
            }
            if mkdir(path, 0o700) == 0 { chmod(path, 0o700); return }
            failure = errno
        }
        var info = stat()
        if failure == EEXIST, stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR { return }
        if failure == EEXIST {
            throw ConfigError(key: key, message: "\(path) exists and is not a directory; choose a directory for the CA")
        }
        throw ConfigError(key: key, message: "\(path) cannot be created (\(errorText(failure))); create its parent directory or choose another path")
    }

    /// Creates a new file at `path` with exactly `mode`, failing if anything is already there, and
    /// fills it with `write`. On any failure the file is removed again.
    static func createNew(_ path: String, mode: mode_t, key: String, write: (Int32) -> Bool) throws(ConfigError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode)
        guard fd >= 0 else {
            let failure = errno
            let hint = failure == EEXIST ? "refusing to overwrite it" : "check the directory's permissions"
            throw ConfigError(key: key, message: "\(path) cannot be created (\(errorText(failure))); \(hint)")
        }
        try fill(fd, path: path, mode: mode, key: key, write: write, removeOnFailure: path)
    }

    /// Writes a temporary file beside `path` with exactly `mode` and returns its path; `commit` then
    /// moves it over `path` in one step (`rename`), so a reader sees either the old file or the whole
    /// new one. Staging every file of a set before committing any keeps a failed write from leaving
    /// a new key next to an old certificate.
    static func stage(_ path: String, mode: mode_t, key: String, write: (Int32) -> Bool) throws(ConfigError) -> String {
        var template = Array((path + ".tmp-XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else {
            let failure = errno
            let hint = failure == ENOENT ? "create the directory first" : "check the directory's permissions"
            throw ConfigError(key: key, message: "\(path) cannot be written (\(errorText(failure))); \(hint)")
        }
        let temporary = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        try fill(fd, path: path, mode: mode, key: key, write: write, removeOnFailure: temporary)
        return temporary
    }

    /// Moves a staged file over `path`.
    static func commit(_ temporary: String, to path: String, key: String) throws(ConfigError) {
        guard rename(temporary, path) == 0 else {
            let failure = errno
            unlink(temporary)
            throw ConfigError(key: key, message: "\(path) cannot be replaced (\(errorText(failure)))")
        }
    }

    /// Sets the mode (the umask must not widen or narrow it), writes, syncs and closes `fd`.
    private static func fill(_ fd: Int32, path: String, mode: mode_t, key: String, write: (Int32) -> Bool,
                             removeOnFailure: String) throws(ConfigError) {
        var failure: Int32 = 0
        if fchmod(fd, mode) != 0 { failure = errno }
        errno = 0
        if failure == 0, !write(fd) { failure = errno == 0 ? EIO : errno }
        if failure == 0, fsync(fd) != 0 { failure = errno }
        if close(fd) != 0, failure == 0 { failure = errno }
        if failure != 0 {
            unlink(removeOnFailure)
            throw ConfigError(key: key, message: "\(path) could not be written (\(errorText(failure)))")
        }
    }

    /// `strerror` text for an errno value.
    static func errorText(_ code: Int32) -> String {
        String(cString: strerror(code))
    }

    /// Seconds since the epoch as `2027-12-29 12:00:00 UTC`.
    static func utcDescription(_ epoch: Int64) -> String {
        var seconds = time_t(epoch)
        var parts = tm()
        guard gmtime_r(&seconds, &parts) != nil else { return "\(epoch) s after the epoch" }
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday)) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) UTC"
    }
}
