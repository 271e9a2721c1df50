import Foundation
@testable import BridgeModel

/// A config with one upstream and one listener and nothing else: the smallest valid file, which
/// tests extend with the keys they exercise.
let minimalConfig = """
    [[upstream]]
    name = "sandbox"
    address = "sandbox.paygent.co.jp:443"

    [[listener]]
    name = "plain"
    listen = "127.0.0.1:8080"
    upstream = "sandbox"
    """

/// The errors `ConfigLoader.parse` reports for `toml`, or `[]` if it accepted it.
func configErrors(_ toml: String, baseDirectory: String? = nil) -> [ConfigError] {
    do {
        _ = try ConfigLoader.parse(toml, baseDirectory: baseDirectory)
        return []
    } catch {
        return error.errors
    }
}

/// The keys of the errors reported for `toml`.
func errorKeys(_ toml: String, baseDirectory: String? = nil) -> [String] {
    configErrors(toml, baseDirectory: baseDirectory).map(\.key)
}

/// The message of the only error reported under `key`, or `nil` if there is not exactly one.
func message(for key: String, in toml: String, baseDirectory: String? = nil) -> String? {
    let matching = configErrors(toml, baseDirectory: baseDirectory).filter { $0.key == key }
    return matching.count == 1 ? matching[0].message : nil
}

/// `minimalConfig` with `lines` added to its `[[upstream]]` entry.
func upstreamConfig(_ lines: String) -> String {
    """
    [[upstream]]
    name = "sandbox"
    address = "sandbox.paygent.co.jp:443"
    \(lines)

    [[listener]]
    name = "plain"
    listen = "127.0.0.1:8080"
    upstream = "sandbox"
    """
}

/// `minimalConfig`'s upstream with one listener made of `lines`.
func listenerConfig(_ lines: String) -> String {
    """
    [[upstream]]
    name = "sandbox"
    address = "sandbox.paygent.co.jp:443"

    [[listener]]
    \(lines)
    """
}

/// A fresh directory under the system temporary directory; call `remove()` when done (`defer`).
/// Tests never write anywhere else.
struct TemporaryDirectory {
    let path: String

    init() throws {
        path = NSTemporaryDirectory() + "tls-bridge-model-tests-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    /// Writes `contents` to `name` inside the directory and returns the full path.
    @discardableResult
    func write(_ name: String, _ contents: String = "placeholder\n", permissions: Int = 0o600) throws -> String {
        let file = (path as NSString).appendingPathComponent(name)
        try FileManager.default.createDirectory(atPath: (file as NSString).deletingLastPathComponent,
                                                withIntermediateDirectories: true)
        try contents.write(toFile: file, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: permissions], ofItemAtPath: file)
        return file
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// Whether this process ignores file permissions (root), which makes unreadable-file tests moot.
var runningAsRoot: Bool { getuid() == 0 }
