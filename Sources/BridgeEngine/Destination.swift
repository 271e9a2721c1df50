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

    /// The `[[upstream]]` name, or nil for a backend.
    var upstreamName: String? {
        if case .upstream(let context) = self { return context.config.name }
        return nil
    }

    /// The outbound proxy it is reached through, as configured (`via`), for the record.
    var via: HostPort? {
        if case .upstream(let context) = self { return context.config.via }
        return nil
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
