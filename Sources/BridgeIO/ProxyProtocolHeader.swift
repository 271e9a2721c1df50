public import BridgeModel

/// The PROXY protocol header a listener sends to its backend before any byte of the connection,
/// so the merchant's server sees the gateway's address instead of the bridge's. Chosen over
/// `X-Forwarded-For` because it needs no HTTP framing: the bridge stays a byte pipe, and it works
/// for any protocol the backend speaks (nginx, HAProxy and Apache's mod_remoteip read it).
public enum ProxyProtocolHeader {
    /// The header for a connection from `source` to `destination` (the listener's address).
    public static func bytes(_ version: ProxyProtocolVersion, source: SocketAddress, destination: SocketAddress) -> [UInt8] {
        switch version {
        case .v1: v1(source: source, destination: destination)
        case .v2: v2(source: source, destination: destination)
        }
    }

    private static func v1(source: SocketAddress, destination: SocketAddress) -> [UInt8] {
        guard source.isIPv6 == destination.isIPv6 else { return Array("PROXY UNKNOWN\r\n".utf8) }
        let family = source.isIPv6 ? "TCP6" : "TCP4"
        let line = "PROXY \(family) \(ipText(source)) \(ipText(destination)) \(source.port) \(destination.port)\r\n"
        return Array(line.utf8)
    }

    private static func v2(source: SocketAddress, destination: SocketAddress) -> [UInt8] {
        var header: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]
        header.append(0x21)  // version 2, command PROXY
        guard source.isIPv6 == destination.isIPv6 else {
            header += [0x00, 0x00, 0x00]  // AF_UNSPEC, no addresses
            return header
        }
        let addresses = source.ipBytes + destination.ipBytes
            + [UInt8(source.port >> 8), UInt8(source.port & 0xff), UInt8(destination.port >> 8), UInt8(destination.port & 0xff)]
        header.append(source.isIPv6 ? 0x21 : 0x11)  // TCP over IPv6 / IPv4
        header += [UInt8(addresses.count >> 8), UInt8(addresses.count & 0xff)]
        return header + addresses
    }

    /// The address without port or brackets.
    private static func ipText(_ address: SocketAddress) -> String {
        let text = address.description
        let withoutPort = text[..<(text.lastIndex(of: ":") ?? text.endIndex)]
        return String(withoutPort.trimmingPrefix("[").dropLast(withoutPort.hasSuffix("]") ? 1 : 0))
    }
}
