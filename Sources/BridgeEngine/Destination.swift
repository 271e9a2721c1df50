import BridgeIO
import BridgeModel

/// Where a session goes: toward the gateway, or (inbound) to one of the merchant's servers.
enum Destination {
    case upstream(UpstreamTLSContext)
    case backend(BackendRuntime)

    var name: String {
        switch self {
        case .upstream(let context): context.config.name
        case .backend(let backend): backend.config.name
        }
    }

    var address: HostPort {
        switch self {
        case .upstream(let context): context.config.address
        case .backend(let backend): backend.config.address
        }
    }

    /// The name sent as SNI and verified, for the record (nil when none).
    var serverName: String? {
        switch self {
        case .upstream(let context): context.nameIsIPLiteral ? nil : context.config.verifiedName
        case .backend(let backend): backend.tls == nil ? nil : backend.config.serverName
        }
    }

    var clientCertificateSubject: String? {
        switch self {
        case .upstream(let context): context.clientCertificateSubject
        case .backend: nil
        }
    }
}
