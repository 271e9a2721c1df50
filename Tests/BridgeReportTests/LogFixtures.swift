import BridgeModel
import CZlib
import Foundation
@testable import BridgeReport

/// A scratch directory under /tmp, removed by the test that made it.
struct ScratchDirectory {
    let path: String

    init() throws {
        path = NSTemporaryDirectory() + "bridge-report-tests-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func file(_ name: String) -> String { path + "/" + name }

    func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }

    /// Writes `lines` joined by newlines (and a final newline unless `finalNewline` is false).
    @discardableResult
    func write(_ name: String, lines: [String], finalNewline: Bool = true) throws -> String {
        let text = lines.joined(separator: "\n") + (finalNewline && !lines.isEmpty ? "\n" : "")
        try Data(text.utf8).write(to: URL(fileURLWithPath: file(name)))
        return file(name)
    }

    /// Writes `lines` gzip-compressed through zlib, as logrotate's `compress` does.
    @discardableResult
    func writeGzip(_ name: String, lines: [String]) throws -> String {
        let text = Array((lines.joined(separator: "\n") + "\n").utf8)
        guard let gz = gzopen(file(name), "wb") else { throw CocoaError(.fileWriteUnknown) }
        let written = text.withUnsafeBytes { gzwrite(gz, $0.baseAddress, UInt32($0.count)) }
        guard gzclose(gz) == Z_OK, written == text.count else { throw CocoaError(.fileWriteUnknown) }
        return file(name)
    }
}

/// Session records as the bridge writes them: sorted keys, no escaped slashes, one per line.
enum Records {
    static func line(_ record: SessionRecord) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try! encoder.encode(record), as: UTF8.self)
    }

    static func time(_ second: Int, day: Int = 27) -> String {
        String(format: "2026-11-%02dT12:%02d:%02d.000Z", day, second / 60 % 60, second % 60)
    }

    static let gateway = SessionRecord.Upstream(name: "gw", address: "192.0.2.10:443", serverName: "gateway.test",
                                                protocol: "TLSv1.2", cipher: "ECDHE-RSA-AES256-GCM-SHA384",
                                                peer: "CN=gateway.test", peerIssuer: "CN=Test CA", verify: "ok",
                                                clientCert: "CN=merchant-0001,O=Test Merchant", closeNotify: true)

    /// A carried session: `listener`, the merchant's `source` and `protocol`, TLS 1.2 verified upstream.
    static func ok(_ n: Int, listener: String = "plain", source: String = "10.0.0.5:40001", protocol: String = "plain",
                   upstream: SessionRecord.Upstream = gateway, day: Int = 27) -> SessionRecord {
        SessionRecord(time: time(n, day: day), session: "s-\(n)", listener: listener,
                      downstream: .init(address: source, protocol: `protocol`), upstream: upstream,
                      bytes: .init(up: 100, down: 2000), durationMs: 5, phase: "open", close: "upstream_eof")
    }

    /// The upstream's port was closed: refused in `connect`, nothing carried.
    static func connectRefused(_ n: Int, port: Int = 5999, source: String = "10.0.0.5:40002") -> SessionRecord {
        SessionRecord(time: time(n), session: "s-\(n)", listener: "plain",
                      downstream: .init(address: source, protocol: "plain"),
                      upstream: .init(name: "gw", address: "127.0.0.1:\(port)", serverName: "gateway.test"),
                      phase: "connect", close: "upstream_error",
                      error: "upstream 127.0.0.1:\(port): Connection refused")
    }

    /// The gateway's certificate failed verification: refused in `handshake`.
    static func untrusted(_ n: Int) -> SessionRecord {
        SessionRecord(time: time(n), session: "s-\(n)", listener: "plain",
                      downstream: .init(address: "10.0.0.5:40003", protocol: "plain"),
                      upstream: .init(name: "gw", address: "192.0.2.10:443", serverName: "gateway.test",
                                      verify: "certificate has expired"),
                      phase: "handshake", close: "upstream_error",
                      error: "upstream 192.0.2.10:443: certificate verify failed: certificate has expired")
    }

    /// A TLS 1.0 merchant refused by a listener's min_version; the upstream is never dialled.
    static func legacyHandshakeFailed(_ n: Int, source: String) -> SessionRecord {
        SessionRecord(time: time(n), session: "s-\(n)", listener: "legacy",
                      downstream: .init(address: source, protocol: nil,
                                        offered: .init(maxVersion: "TLSv1", sni: nil, ciphers: ["AES128-SHA"])),
                      upstream: .init(name: nil),
                      phase: "downstream_handshake", close: "downstream_error",
                      error: "TLS handshake with the merchant at \(source) failed: unsupported protocol",
                      hint: "use the plain listener")
    }
}
