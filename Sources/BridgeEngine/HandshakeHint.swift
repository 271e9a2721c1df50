import BridgeIO
import BridgeModel

/// Plain-language advice for a merchant TLS handshake that failed, from what the client offered
/// and what OpenSSL said. Written for the operator who reads the session record, not for the peer.
enum HandshakeHint {
    static func downstreamFailure(_ failure: StreamFailure?, offered: ClientHelloSummary?, listener: ListenerConfig) -> String? {
        func saw(_ cause: TLSFailure) -> Bool { failure?.has(cause) == true }
        let policy = listener.tls ?? DownstreamTLSConfig()
        guard let offered else {
            if saw(.plainHTTP) {
                return "the client sent plain HTTP to this TLS listener: use https:// here, or point http:// at a plain listener"
            }
            if saw(.notTLS) {
                return "the client did not start a TLS handshake (not TLS at all, or SSL 2.0): check that it dials with TLS,"
                    + " or point it at a plain listener"
            }
            return nil
        }
        if offered.maxVersionNumber < 0x0301 {
            return "the client offered only \(offered.maxVersion), which no OpenSSL 3 build can speak; point it at a plain listener"
        }
        if offered.maxVersionNumber < Int(DownstreamTLSContext.protocolNumber(policy.minVersion)) {
            if listener.backend != nil {
                return "the client offered at most \(offered.maxVersion), below min_version \"\(policy.minVersion.rawValue)\" of"
                    + " listener \(listener.name); it takes the gateway's notifications, which arrive over TLS 1.2 or newer,"
                    + " so this client is not the gateway or is misconfigured: keep min_version as it is"
            }
            return "the client offered at most \(offered.maxVersion) but listener \(listener.name) has min_version"
                + " \"\(policy.minVersion.rawValue)\"; set min_version = \"TLS1.0\" there if this client must be served"
        }
        if !offered.ciphers.isEmpty, offered.ciphers.allSatisfy({ $0.openSSLName == nil }) {
            if offered.ciphers.contains(where: \.isThreeDESOrRC4) {
                return "the client offered only 3DES/RC4 suites, and this OpenSSL build has neither (Debian builds without"
                    + " them); point this client at a plain listener instead"
            }
            return "none of the suites the client offered exists in this OpenSSL build; point it at a plain listener"
        }
        if saw(.noSharedCipher) {
            return "none of the client's suites is enabled on listener \(listener.name) (ciphers = \"\(policy.effectiveCiphers)\");"
                + " widen ciphers there, or point the client at a plain listener"
        }
        if saw(.clientCertificateMissing) {
            return "the client presented no certificate but require_client_cert is on: configure the merchant certificate"
                + " in the client's TLS settings"
        }
        if saw(.certificateVerifyFailed) {
            return "the client's certificate is not issued by client_ca of listener \(listener.name)"
        }
        if saw(.peerDistrustsCertificate) {
            return "the client does not trust the bridge's certificate: add the bridge's CA (ca.pem from"
                + " `tls-bridge ca init`) to the client's CA bundle, and dial a name from the listener's routes"
        }
        return nil
    }
}
