import Foundation

/// Paths named in a config: where they point, and whether the process can use them.
///
/// Checked when the config is loaded (and on every reload), so a missing certificate is an error
/// naming its key at start-up rather than a failed handshake at the first payment. Messages name
/// the resolved path and never include a file's contents.
enum ConfigFiles {
    /// `path` as an absolute, standardised path; relative paths are taken from `baseDirectory`.
    static func resolve(_ path: String, against baseDirectory: String) -> String {
        let base = URL(fileURLWithPath: baseDirectory, isDirectory: true)
        return URL(fileURLWithPath: path, relativeTo: base).standardizedFileURL.path
    }

    /// `baseDirectory` as an absolute path, the current directory when `nil`.
    static func absoluteBase(_ baseDirectory: String?) -> String {
        let current = FileManager.default.currentDirectoryPath
        guard let baseDirectory else { return current }
        return resolve(baseDirectory, against: current)
    }

    /// Why a file the bridge must read cannot be used, or `nil` when it can.
    static func problemReading(_ resolved: String) -> String? {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: resolved, isDirectory: &isDirectory) else {
            return "\(resolved) does not exist"
        }
        if isDirectory.boolValue { return "\(resolved) is a directory, not a file" }
        guard FileManager.default.isReadableFile(atPath: resolved) else {
            return "\(resolved) is not readable by this process; check its owner and mode"
        }
        return nil
    }

    /// Why a secret file's mode is too open (readable or writable by group or others), or nil.
    /// `holdsKey`: the file is not a key file by its config key but a private key was found in it.
    static func problemWithSecretMode(_ resolved: String, holdsKey: Bool = false) -> String? {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: resolved),
              let mode = (attributes[.posixPermissions] as? NSNumber)?.intValue else { return nil }
        guard mode & 0o077 != 0 else { return nil }
        let what = holdsKey ? "it holds a private key (a PEM \"PRIVATE KEY\" block)" : "it holds a secret"
        return "\(resolved) is readable by group or others (mode \(String(mode & 0o777, radix: 8))); \(what):"
            + " chmod 600 it (owned by the bridge's user), or set unsafe_key_permissions = true"
            + (holdsKey ? "; or keep the certificate alone in this file and the key in its own file" : "")
    }

    /// Does the file hold a PEM private key (`-----BEGIN ... PRIVATE KEY-----`: PKCS#8, RSA, EC,
    /// encrypted)? Reads the file (its first 16 MiB) in 64 KiB pieces, only to look for that
    /// marker; nothing is kept. (Not `FileManager.contents`: its buffers leaked under
    /// LeakSanitizer in the config fuzzer.)
    static func holdsPrivateKey(_ resolved: String) -> Bool {
        let marker = Array("PRIVATE KEY-----".utf8)
        let fd = open(resolved, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var window: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        var total = 0
        while total < 16 * 1024 * 1024 {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return false }
            total += count
            // Keep the tail of the previous piece, so a marker split across two reads is found.
            window = Array(window.suffix(marker.count - 1)) + chunk[..<count]
            if contains(window, marker) { return true }
        }
        return false
    }

    private static func contains(_ bytes: [UInt8], _ marker: [UInt8]) -> Bool {
        guard bytes.count >= marker.count else { return false }
        for start in 0...(bytes.count - marker.count) where bytes[start] == marker[0] {
            if bytes[start..<(start + marker.count)].elementsEqual(marker) { return true }
        }
        return false
    }

    /// Why a log file cannot be opened for appending, or `nil` when it can (or can be created).
    static func problemAppending(_ resolved: String) -> String? {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: resolved, isDirectory: &isDirectory) {
            if isDirectory.boolValue { return "\(resolved) is a directory, not a file" }
            return FileManager.default.isWritableFile(atPath: resolved)
                ? nil : "\(resolved) is not writable by this process; check its owner and mode"
        }
        let directory = (resolved as NSString).deletingLastPathComponent
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            return "the directory \(directory) does not exist; create it or choose another path"
        }
        return FileManager.default.isWritableFile(atPath: directory)
            ? nil : "the directory \(directory) is not writable by this process, so \(resolved) cannot be created"
    }
}
