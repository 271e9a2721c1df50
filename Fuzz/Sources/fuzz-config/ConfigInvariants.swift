import BridgeModel
import Foundation

/// One fuzz input, read as a config file. Whatever the bytes, the loader either returns a config
/// that keeps the upstream floor or throws errors an operator can act on; anything else (a crash in
/// the loader or in toml++ underneath it, an empty error, a weak upstream let through) is a crash
/// that libFuzzer reports with the input.
func fuzzConfig(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let text = String(decoding: UnsafeRawBufferPointer(start: data, count: size), as: UTF8.self)
    do {
        check(try ConfigLoader.parse(text, baseDirectory: fuzzBaseDirectory))
    } catch {
        // `parse` throws ConfigErrors only (typed throws), so `error` is one.
        require(!error.errors.isEmpty, "thrown without errors")
        for problem in error.errors {
            require(!problem.key.isEmpty, "error without a key: \(problem.message)")
            require(!problem.message.isBlank, "error without a message for \(problem.key)")
        }
    }
    return 0
}

func require(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError("invariant broken: \(message())") }
}

/// What an accepted config promises: the upstream floor holds, and listeners route only to entries
/// the file declares.
func check(_ config: Config) {
    let upstreams = Set(config.upstreams.map(\.name))
    let backends = Set(config.backends.map(\.name))
    require(upstreams.count == config.upstreams.count, "duplicate upstream names accepted")
    for upstream in config.upstreams {
        require(upstream.minVersion == .tls12 || upstream.minVersion == .tls13,
                "upstream \(upstream.name) min version \(upstream.minVersion.rawValue)")
        require(upstream.refusedCipherTokens.isEmpty,
                "upstream \(upstream.name) accepted refused cipher tokens \(upstream.refusedCipherTokens)")
        require(!upstream.name.isEmpty && !upstream.address.host.isEmpty, "upstream without name or host")
    }
    require(config.workers >= 1, "workers \(config.workers)")
    for listener in config.listeners {
        for target in [listener.upstream].compactMap({ $0 }) + Array(listener.routes.values) {
            require(upstreams.contains(target), "listener \(listener.name) routes to undeclared upstream \(target)")
        }
        if let backend = listener.backend {
            require(backends.contains(backend), "listener \(listener.name) delivers to undeclared backend \(backend)")
        }
    }
}

extension String {
    var isBlank: Bool { allSatisfy(\.isWhitespace) }
}

/// A directory holding (empty) files under the relative paths the seeds name: the loader checks only
/// that referenced files exist and are readable, so with these a valid seed parses all the way.
let fuzzBaseDirectory: String = {
    // One fixed directory, reused by every run (the files are empty and only ever created).
    let base = NSTemporaryDirectory() + "tls-bridge-fuzz-config-files"
    let files = [
        "certs/merchant-sandbox.pem", "certs/merchant-sandbox.key", "certs/merchant-sandbox.pass",
        "certs/merchant-production.pem", "certs/merchant-production.key", "ca/paygent-ca.pem",
        "ca/ca.pem", "ca/ca.key", "certs/listener.pem", "certs/listener.key", "certs/merchant-ca.pem",
        "certs/merchant-web-ca.pem", "certs/merchant-public.pem", "certs/merchant-public.key",
        "proxy-users.txt",
    ]
    for file in files {
        let path = base + "/" + file
        if FileManager.default.fileExists(atPath: path) { continue }
        try? FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent,
                                                 withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: path, contents: Data(), attributes: [.posixPermissions: 0o600])
    }
    return base
}()
