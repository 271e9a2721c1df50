/// `[[listener]]` entries: where merchants connect, and which upstream each listener feeds.
extension ConfigLoader {
    static let listenerKeys = ["name", "listen", "accept", "upstream", "unsafe_listen_public"]

    /// `declaresNone` is true when the file has no `listener` key or an empty list; a `listener`
    /// of the wrong type has already been reported and is not reported twice.
    static func readListeners(_ entries: [TableReader], upstreamNames: Set<String>, declaresNone: Bool,
                              diagnostics: ConfigDiagnostics) -> [ListenerConfig] {
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
                    diagnostics.add(entry.key("accept"), "\"\(text)\" is not an accept mode; accepted values: \"plain\"")
                    return nil
                }
                return mode
            }
            let upstream = entry.requiredString("upstream", example: "paygent-sandbox").flatMap { target -> String? in
                guard upstreamNames.contains(target) else {
                    var message = "\"\(target)\" does not name an [[upstream]]"
                    if let close = closestName(to: target, among: upstreamNames) { message += "; did you mean \"\(close)\"?" }
                    diagnostics.add(entry.key("upstream"), message)
                    return nil
                }
                return target
            }
            let unsafePublic = entry.bool("unsafe_listen_public") ?? false
            if let listen, !unsafePublic, !isLoopback(listen.host) {
                diagnostics.add(entry.key("listen"), "\(listen) is not a loopback address; anyone who can reach it is"
                    + " forwarded to the gateway under the merchant's client certificate. Listen on 127.0.0.1 or [::1],"
                    + " or set unsafe_listen_public = true if only trusted hosts can reach this address")
            }
            if let name, let listen, let upstream, diagnostics.errors.count == errorsBefore {
                listeners.append(ListenerConfig(name: name, listen: listen, accept: accept ?? .plain, upstream: upstream,
                                                unsafeListenPublic: unsafePublic))
            }
        }
        return listeners
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
