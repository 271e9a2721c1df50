internal import COpenSSL

/// Why a stream failed, as data the engine can decide on, and as text for the record.
///
/// The engine never reads OpenSSL's wording to find out what happened: it asks `has(_:)` with a
/// `TLSFailure`, which compares OpenSSL's own reason codes (library SSL) or the socket's errno.
public struct StreamFailure: Sendable, Equatable, CustomStringConvertible {
    /// The socket error (errno), when the failure was one.
    public var socketError: Int32?
    /// `ERR_GET_REASON` of each SSL-library error OpenSSL queued, in order.
    var sslReasons: [Int32]
    /// What went wrong, for an operator: OpenSSL's reasons, or the socket error's text.
    public var text: String

    public var description: String { text }

    /// A failure with only a socket error.
    init(socketError: Int32) {
        self.socketError = socketError
        self.sslReasons = []
        self.text = errnoText(socketError)
    }

    init(text: String, sslReasons: [Int32] = [], socketError: Int32? = nil) {
        self.text = text
        self.sslReasons = sslReasons
        self.socketError = socketError
    }

    /// Did OpenSSL (or the socket) report this?
    public func has(_ failure: TLSFailure) -> Bool {
        switch failure {
        case .connectionReset:
            return socketError == ECONNRESET
        default:
            return sslReasons.contains(where: failure.sslReasonCodes.contains)
        }
    }
}

/// The causes of a failed handshake or connection that the engine tells apart (for the record's
/// `close` and `hint`, the answer to an http-proxy client, and the metrics' labels), each defined
/// once by OpenSSL's reason codes.
public enum TLSFailure: Sendable, CaseIterable {
    /// The peer and the bridge share no protocol version (an alert from the peer, or the peer's
    /// version refused here).
    case protocolVersion
    /// The peer's certificate did not verify.
    case certificateVerifyFailed
    /// No cipher suite in common, or the peer refused the handshake without saying more.
    case handshakeFailure
    /// The bridge shares no cipher suite with a client (server side).
    case noSharedCipher
    /// An `unrecognized_name` alert: the name sent as SNI is not served there.
    case unrecognizedName
    /// The server-name callback refused the handshake (here: an SNI that is not routed).
    case serverNameCallbackFailed
    /// The client sent no certificate although one is required.
    case clientCertificateMissing
    /// A plain HTTP request arrived where a TLS handshake was expected.
    case plainHTTP
    /// The bytes were not a TLS handshake at all (or SSL 2.0 only).
    case notTLS
    /// The client does not trust the bridge's certificate (its alert says so).
    case peerDistrustsCertificate
    /// The peer reset the connection.
    case connectionReset

    var sslReasonCodes: [Int32] {
        switch self {
        case .protocolVersion:
            [SSL_R_TLSV1_ALERT_PROTOCOL_VERSION, SSL_R_UNSUPPORTED_PROTOCOL, SSL_R_NO_PROTOCOLS_AVAILABLE,
             SSL_R_VERSION_TOO_LOW, SSL_R_VERSION_TOO_HIGH]
        case .certificateVerifyFailed:
            [SSL_R_CERTIFICATE_VERIFY_FAILED]
        case .handshakeFailure:
            [SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE, SSL_R_NO_SHARED_CIPHER, SSL_R_NO_CIPHERS_AVAILABLE,
             SSL_R_TLSV1_ALERT_INSUFFICIENT_SECURITY]
        case .noSharedCipher:
            [SSL_R_NO_SHARED_CIPHER]
        case .unrecognizedName:
            [SSL_R_TLSV1_UNRECOGNIZED_NAME]
        case .serverNameCallbackFailed:
            [SSL_R_CALLBACK_FAILED]
        case .clientCertificateMissing:
            [SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE, SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED]
        case .plainHTTP:
            [SSL_R_HTTP_REQUEST, SSL_R_HTTPS_PROXY_REQUEST]
        case .notTLS:
            [SSL_R_WRONG_VERSION_NUMBER, SSL_R_UNKNOWN_PROTOCOL, SSL_R_PACKET_LENGTH_TOO_LONG, SSL_R_RECORD_LENGTH_MISMATCH]
        case .peerDistrustsCertificate:
            [SSL_R_TLSV1_ALERT_UNKNOWN_CA, SSL_R_SSLV3_ALERT_BAD_CERTIFICATE, SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN,
             SSL_R_TLSV1_ALERT_DECRYPT_ERROR]
        case .connectionReset:
            []
        }
    }
}
