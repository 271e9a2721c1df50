import BridgeHTTP
import BridgeModel
import Foundation

/// The merchant's outbound HTTP proxy that an upstream is reached through (`via`), and the Basic
/// credentials for it (`via_credentials`), read once per configuration generation. The bridge asks
/// it for a `CONNECT` tunnel to the gateway and runs its own TLS 1.2+ handshake inside: the proxy
/// sees the gateway's name and port, never a byte of the payment.
public struct OutboundProxy: Sendable {
    /// The proxy, as configured.
    public let address: HostPort
    /// The `Proxy-Authorization` value (`Basic …`), or nil without `via_credentials`. Never logged.
    private let authorization: String?

    /// The longest answer head to `CONNECT` the bridge reads; a proxy that sends more is broken.
    static let maximumAnswerHeadBytes = 16 * 1024

    /// `credentialsFile`: one `user:password` line (blank lines and `#` comments skipped).
    public init(address: HostPort, credentialsFile: String?, key: String) throws(ConfigError) {
        self.address = address
        guard let credentialsFile else {
            authorization = nil
            return
        }
        let pairs = try ProxyCredentials.readPairs(path: credentialsFile, key: key)
        guard pairs.count == 1, let pair = pairs.first else {
            throw ConfigError(key: key, message: "\(credentialsFile) must hold exactly one user:password line"
                + " (found \(pairs.count))")
        }
        authorization = "Basic " + Data("\(pair.user):\(pair.password)".utf8).base64EncodedString()
    }

    /// Does the bridge send credentials?
    public var sendsCredentials: Bool { authorization != nil }

    /// The request for a tunnel to `target`.
    func connectRequest(to target: HostPort) -> [UInt8] {
        var head = "CONNECT \(target) HTTP/1.1\r\nHost: \(target)\r\n"
        if let authorization { head += "Proxy-Authorization: \(authorization)\r\n" }
        return Array((head + "\r\n").utf8)
    }

    /// What an answer to `CONNECT` means for the dial.
    enum Answer: Equatable {
        /// Not complete yet.
        case incomplete
        /// An interim (1xx) head of `headLength` bytes: skip it, the real answer follows.
        case interim(headLength: Int)
        /// A 2xx: the tunnel is open after `headLength` bytes.
        case tunnel(headLength: Int)
        /// Anything else, worded for the record (the caller names the proxy first).
        case refused(String)
    }

    /// A 407 in words an operator can act on. The bridge speaks Basic only: a proxy that offers only
    /// other schemes (NTLM and Negotiate are common on Windows networks) must be told apart from one
    /// that turned down the configured credentials, or the operator would hunt for a typo that is
    /// not there.
    private func authenticationRefusal(_ head: ResponseHead, status: String, target: HostPort) -> String {
        let challenges = head.headerValues("Proxy-Authenticate")
        let offered = challenges.isEmpty ? "" : " (\(challenges.joined(separator: ", ")))"
        let schemes = challenges.compactMap { $0.split(separator: " ", maxSplits: 1).first.map(String.init) }
        if !schemes.isEmpty, !schemes.contains(where: { $0.lowercased() == "basic" }) {
            return "wants \(schemes.joined(separator: " or ")) authentication for CONNECT \(target): \(status)\(offered);"
                + " the bridge speaks only Basic (via_credentials): have the proxy accept Basic, or let the"
                + " bridge's address through without authentication"
        }
        return sendsCredentials
            ? "rejected the credentials in via_credentials for CONNECT \(target): \(status)\(offered)"
            : "wants credentials\(offered) for CONNECT \(target): \(status); set via_credentials"
    }

    /// Reads the proxy's answer to `CONNECT target` from `bytes` (what has arrived so far).
    func answer(_ bytes: UnsafeRawBufferPointer, target: HostPort) -> Answer {
        switch ResponseParser.parse(bytes, limit: Self.maximumAnswerHeadBytes) {
        case .incomplete:
            return .incomplete
        case .invalid where bytes.count >= Self.maximumAnswerHeadBytes:
            return .refused("sent an answer head to CONNECT \(target) over \(Self.maximumAnswerHeadBytes / 1024) KiB")
        case .invalid(let error):
            return .refused("sent an answer to CONNECT \(target) that is not HTTP (\(error.reason))")
        case .complete(let head):
            let status = "\(head.status)\(head.reason.isEmpty ? "" : " \(head.reason)")"
            switch head.status {
            case 100..<200:
                return .interim(headLength: head.headLength)
            case 200..<300:
                // Any 2xx opens the tunnel (RFC 9110 §9.3.6); a length header on it means nothing.
                return .tunnel(headLength: head.headLength)
            case 407:
                return .refused(authenticationRefusal(head, status: status, target: target))
            case 403:
                return .refused("refused CONNECT \(target): \(status)")
            default:
                return .refused("answered CONNECT \(target) with \(status)")
            }
        }
    }
}
