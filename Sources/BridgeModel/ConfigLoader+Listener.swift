/// `[[listener]]` entries: where merchants connect, and which upstream each listener feeds.
extension ConfigLoader {
    static let listenerKeys = ["name", "listen", "accept", "upstream", "routes", "backend", "allow_sources", "proxy_protocol",
                               "proxy_auth", "unsafe_listen_public", "client_address_header"] + tlsListenerKeys

    /// `declaresNone` is true when the file has no `listener` key or an empty list; a `listener`
    /// of the wrong type has already been reported and is not reported twice.
    static func readListeners(_ entries: [TableReader], upstreamNames: Set<String>, backendNames: Set<String>,
                              declaresNone: Bool,
                              base: String, diagnostics: ConfigDiagnostics) -> [ListenerConfig] {
        if declaresNone {
            diagnostics.add("listener", "no [[listener]] is configured, so the bridge would accept nothing; add one,"
                + " e.g. [[listener]] name = \"plain\", listen = \"127.0.0.1:8080\", upstream = \"paygent-sandbox\"")
        }
        var seen: [String: Int] = [:]
        var bound: [ListenKey: String] = [:]
        var listeners: [ListenerConfig] = []
        for (index, original) in entries.enumerated() {
            var entry = original
            let errorsBefore = diagnostics.errors.count
            let name = EntryNaming.claimName(&entry, section: "listener", position: index + 1, seen: &seen)
            entry.rejectUnknownKeys(known: listenerKeys)
            let listen = readListen(entry)
            if let listen {
                let key = ListenKey(listen)
                if let owner = bound[key] {
                    diagnostics.add(entry.key("listen"), "\(listen) is already the address of \(owner); each listener needs its own address")
                } else {
                    bound[key] = entry.path
                }
            }
            let accept = entry.string("accept").flatMap { text -> AcceptMode? in
                guard let mode = AcceptMode(rawValue: text) else {
                    diagnostics.add(entry.key("accept"), "\"\(text)\" is not an accept mode; accepted values: \"plain\", \"tls\", \"http-proxy\"")
                    return nil
                }
                return mode
            } ?? (entry.contains("accept") ? nil : .plain)
            let inbound = readInbound(entry, backendNames: backendNames)
            let upstream = readUpstreamReference(entry, required: accept == .plain && !entry.contains("backend"),
                                                 upstreamNames: upstreamNames)
            let routes = readRoutes(entry, upstreamNames: upstreamNames, allowPorts: accept == .httpProxy)
            var proxyAuthFile: String?
            let allowSources = readAllowSources(entry)
            var tls: DownstreamTLSConfig?
            switch accept {
            case .plain:
                if !routes.isEmpty {
                    diagnostics.add(entry.key("routes"), "routes by server name need accept = \"tls\": a plain connection names no server")
                }
                for key in tlsListenerKeys where entry.contains(key) {
                    diagnostics.add(entry.key(key), "only applies to accept = \"tls\" listeners; remove it or set accept = \"tls\"")
                }
            case .tls:
                if !entry.contains("upstream"), !entry.contains("routes"), !entry.contains("backend") {
                    diagnostics.add(entry.key("upstream"), "a tls listener needs a default upstream, [listener.routes], or both;"
                        + " e.g. upstream = \"paygent-sandbox\"")
                }
                tls = readDownstreamTLS(entry, routes: routes,
                                        hasDefaultRoute: entry.contains("upstream") || entry.contains("backend"), base: base)
            case .httpProxy:
                if entry.contains("upstream") {
                    diagnostics.add(entry.key("upstream"), "an http-proxy listener forwards only to the names in [listener.routes];"
                        + " a default upstream would make it an open proxy. Remove it and route each gateway name")
                }
                if routes.isEmpty && entry.section("routes")?.table.keys.isEmpty ?? true {
                    diagnostics.add(entry.key("routes"), "an http-proxy listener needs [listener.routes]: the gateway names it may"
                        + " forward to, e.g. \"sandbox.paygent.co.jp\" = \"paygent-sandbox\"")
                }
                tls = readDownstreamTLS(entry, routes: routes, hasDefaultRoute: false, base: base)
                proxyAuthFile = entry.readableFile("proxy_auth", base: base, secret: true)
            case nil:
                break
            }
            if accept != .httpProxy, entry.contains("proxy_auth") {
                diagnostics.add(entry.key("proxy_auth"), "only applies to accept = \"http-proxy\" listeners; remove it")
            }
            let unsafePublic = entry.bool("unsafe_listen_public") ?? false
            if let listen, !unsafePublic, !isLoopback(listen.host) {
                diagnostics.add(entry.key("listen"), "\(listen) is not a loopback address; anyone who can reach it is"
                    + " forwarded to the gateway under the merchant's client certificate. Listen on 127.0.0.1 or [::1],"
                    + " or set unsafe_listen_public = true if only trusted hosts can reach this address")
            }
            if let name, let listen, let accept, diagnostics.errors.count == errorsBefore {
                listeners.append(ListenerConfig(name: name, listen: listen, accept: accept, upstream: upstream,
                                                routes: routes, tls: tls, backend: inbound.backend,
                                                allowSources: allowSources, proxyProtocol: inbound.proxyProtocol,
                                                proxyAuthFile: proxyAuthFile, unsafeListenPublic: unsafePublic,
                                                clientAddressHeader: inbound.clientAddressHeader))
            }
        }
        return listeners
    }

    /// `backend` and `proxy_protocol`: an inbound listener delivers to one backend, never to an upstream.
    private static func readInbound(_ entry: TableReader, backendNames: Set<String>)
        -> (backend: String?, proxyProtocol: ProxyProtocolVersion?, clientAddressHeader: ClientAddressHeader?) {
        let backend = entry.string("backend").flatMap { target -> String? in
            guard backendNames.contains(target) else {
                var message = "\"\(target)\" does not name a [[backend]]"
                if let close = closestName(to: target, among: backendNames) { message += "; did you mean \"\(close)\"?" }
                entry.diagnostics.add(entry.key("backend"), message)
                return nil
            }
            return target
        }
        if entry.contains("backend") {
            if entry.string("accept") != AcceptMode.tls.rawValue {
                entry.diagnostics.add(entry.key("backend"), "inbound delivery needs accept = \"tls\": the gateway's notifications arrive over TLS")
            }
            for key in ["upstream", "routes"] where entry.contains(key) {
                entry.diagnostics.add(entry.key("backend"), "a listener delivers either to a backend (inbound) or to upstreams"
                    + " (outbound), not both; remove \(key) or backend")
            }
        }
        let proxyProtocol = entry.string("proxy_protocol").flatMap { text -> ProxyProtocolVersion? in
            guard let version = ProxyProtocolVersion(rawValue: text) else {
                entry.diagnostics.add(entry.key("proxy_protocol"), "\"\(text)\" is not a PROXY protocol version; use \"v1\" or \"v2\"")
                return nil
            }
            return version
        }
        if entry.contains("proxy_protocol") && !entry.contains("backend") {
            entry.diagnostics.add(entry.key("proxy_protocol"), "only applies to listeners with a backend: the gateway would not understand it")
        }
        // Allowed together with proxy_protocol: both carry the same address, at two layers (a load
        // balancer in front of the web server may read one, the application the other).
        let header = entry.string("client_address_header").flatMap { text -> ClientAddressHeader? in
            guard let header = ClientAddressHeader.allCases.first(where: { $0.rawValue.lowercased() == text.lowercased() }) else {
                entry.diagnostics.add(entry.key("client_address_header"), "\"\(text)\" is not a header the bridge sets; use"
                    + " \"X-Forwarded-For\" (Apache mod_remoteip or mod_rpaf, nginx realip, IIS), \"X-Real-IP\" or \"Forwarded\"")
                return nil
            }
            return header
        }
        if entry.contains("client_address_header") && !entry.contains("backend") {
            entry.diagnostics.add(entry.key("client_address_header"), "only applies to listeners with a backend: it tells the"
                + " merchant's web server where a notification came from")
        }
        return (backend, proxyProtocol, header)
    }

    /// `allow_sources`: CIDR ranges of peers allowed to connect.
    private static func readAllowSources(_ entry: TableReader) -> [AddressRange] {
        (entry.stringArray("allow_sources") ?? []).compactMap { text in
            let range = AddressRange(text)
            if range == nil {
                entry.diagnostics.add(entry.key("allow_sources"), "\"\(text)\" is not an address range; write e.g."
                    + " \"203.0.113.0/24\", \"127.0.0.1/32\" or \"::1/128\"")
            }
            return range
        }
    }

    /// `upstream`: the default route, which must name an `[[upstream]]`.
    private static func readUpstreamReference(_ entry: TableReader, required: Bool, upstreamNames: Set<String>) -> String? {
        let text = required ? entry.requiredString("upstream", example: "paygent-sandbox") : entry.string("upstream")
        return text.flatMap { target in
            checkUpstreamReference(target, key: entry.key("upstream"), upstreamNames: upstreamNames, entry: entry)
        }
    }

    /// `[listener.routes]`: server name → upstream name. Names are kept lowercased, as SNI compares.
    /// On http-proxy listeners a key may carry a port (`"name:8443"`) or be an IP literal.
    private static func readRoutes(_ entry: TableReader, upstreamNames: Set<String>, allowPorts: Bool) -> [String: String] {
        guard let routes = entry.section("routes") else { return [:] }
        var result: [String: String] = [:]
        for name in routes.table.keys.sorted() {
            let key = routes.key(name)
            if allowPorts {
                let hostPort = parseHostPort(name)
                let host = hostPort?.host ?? name
                guard hostPort != nil || !name.contains(":") || isIPLiteral(name),
                      isValidHostName(Substring(host)) || isIPLiteral(host) || ipAddressBytes(host) != nil else {
                    entry.diagnostics.add(key, "\"\(name)\" is not a host name or IP address with an optional port"
                        + " (1-65535); write e.g. \"sandbox.paygent.co.jp\" or \"module.paygent.co.jp:8443\"")
                    continue
                }
            } else if !isValidHostName(Substring(name)) {
                entry.diagnostics.add(key, "\"\(name)\" is not a server name; routes map DNS names as clients send them in SNI")
                continue
            }
            guard let target = routes.string(name),
                  let upstream = checkUpstreamReference(target, key: key, upstreamNames: upstreamNames, entry: entry) else { continue }
            if result[name.lowercased()] != nil {
                entry.diagnostics.add(key, "\"\(name)\" is routed twice (names compare case-insensitively); keep one")
            }
            result[name.lowercased()] = upstream
        }
        return result
    }

    private static func checkUpstreamReference(_ target: String, key: String, upstreamNames: Set<String>,
                                               entry: TableReader) -> String? {
        guard upstreamNames.contains(target) else {
            var message = "\"\(target)\" does not name an [[upstream]]"
            if let close = closestName(to: target, among: upstreamNames) { message += "; did you mean \"\(close)\"?" }
            entry.diagnostics.add(key, message)
            return nil
        }
        return target
    }

    /// `listen`: an IP literal (or `localhost`) with a port.
    private static func readListen(_ entry: TableReader) -> HostPort? {
        guard let text = entry.requiredString("listen", example: "127.0.0.1:8080") else { return nil }
        guard let hostPort = parseHostPort(text) else {
            entry.diagnostics.add(entry.key("listen"), "\"\(text)\" is not IP:port; write e.g. \"127.0.0.1:8080\" or \"[::1]:8080\"")
            return nil
        }
        guard isIPLiteral(hostPort.host) || hostPort.host.lowercased() == "localhost" else {
            entry.diagnostics.add(entry.key("listen"), "\"\(hostPort.host)\" is a name; listen on an IP address"
                + " (or localhost), e.g. \"127.0.0.1:\(hostPort.port)\"")
            return nil
        }
        return hostPort
    }

    private static func closestName(to target: String, among names: Set<String>) -> String? {
        var best: (name: String, distance: Int)?
        for name in names.sorted() {
            let distance = KeySuggestion.editDistance(target.lowercased(), name.lowercased())
            if distance <= 2, distance < best?.distance ?? Int.max { best = (name, distance) }
        }
        return best?.name
    }
}

/// A listening address compared by value, so `[::1]:8080` and `[0:0::1]:8080` are the same.
struct ListenKey: Hashable {
    let host: [UInt8]
    let name: String?
    let port: UInt16

    init(_ hostPort: HostPort) {
        let bytes = IPAddress.parse(Substring(hostPort.host))
        host = bytes ?? []
        name = bytes == nil ? hostPort.host.lowercased() : nil
        port = hostPort.port
    }
}
