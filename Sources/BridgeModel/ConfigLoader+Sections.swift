/// The singleton tables: `[log]`, `[limits]` and `[dns]`. A missing table or key keeps the
/// default documented on the model type.
extension ConfigLoader {
    /// The accepted `buffer_size` range: below 16 KiB a single TLS record does not fit, above 64 MiB
    /// one slow peer can hold a worrying share of memory.
    static let bufferSizeRange = (16 * 1024)...(64 * 1024 * 1024)

    static func readLog(_ reader: TableReader, base: String) -> LogConfig {
        reader.rejectUnknownKeys(known: ["sessions", "level", "chain"])
        var log = LogConfig()
        log.chain = reader.bool("chain") ?? false
        if let sessions = reader.nonEmptyString("sessions", ifEmpty: "use \"stdout\", \"stderr\" or a file path") {
            switch sessions {
            case "stdout": log.sessions = .stdout
            case "stderr": log.sessions = .stderr
            default:
                let resolved = ConfigFiles.resolve(sessions, against: base)
                if let problem = ConfigFiles.problemAppending(resolved) {
                    reader.diagnostics.add(reader.key("sessions"), "cannot append session records: \(problem)")
                }
                log.sessions = .file(resolved)
            }
        }
        if let level = reader.string("level") {
            if let parsed = LogLevel(rawValue: level) {
                log.level = parsed
            } else {
                let accepted = LogLevel.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
                reader.diagnostics.add(reader.key("level"), "\"\(level)\" is not a log level; use one of \(accepted)")
            }
        }
        return log
    }

    static func readLimits(_ reader: TableReader) -> LimitsConfig {
        reader.rejectUnknownKeys(known: ["connect_timeout", "handshake_timeout", "header_timeout", "idle_timeout", "half_close_timeout", "drain_timeout", "max_sessions", "max_sessions_per_source",
                                         "buffer_size"])
        var limits = LimitsConfig()
        if let value = reader.duration("connect_timeout") { limits.connectTimeout = value }
        if let value = reader.duration("handshake_timeout") { limits.handshakeTimeout = value }
        if let value = reader.duration("header_timeout") { limits.headerTimeout = value }
        if let value = reader.duration("idle_timeout") { limits.idleTimeout = value }
        if let value = reader.duration("drain_timeout") { limits.drainTimeout = value }
        if let value = reader.duration("half_close_timeout") { limits.halfCloseTimeout = value }
        if let value = reader.integer("max_sessions", atLeast: 1) { limits.maxSessions = value }
        if let value = reader.integer("max_sessions_per_source", atLeast: 0) { limits.maxSessionsPerSource = value }
        if let value = reader.byteSize("buffer_size", in: bufferSizeRange) { limits.bufferSize = value }
        return limits
    }

    static func readDNS(_ reader: TableReader) -> DNSConfig {
        reader.rejectUnknownKeys(known: ["nameservers", "timeout"])
        var dns = DNSConfig()
        if let nameservers = reader.stringArray("nameservers") {
            for nameserver in nameservers where !isNameServerAddress(nameserver) {
                reader.diagnostics.add(reader.key("nameservers"), "\"\(nameserver)\" is not an IP address or IP:port"
                    + " (IPv6 with a port as \"[2001:db8::53]:53\"); name servers must be IP literals")
            }
            dns.nameservers = nameservers
        }
        if let value = reader.duration("timeout") { dns.timeout = value }
        return dns
    }

    /// `"IP"`, `"IPv4:port"`, `"[IPv6]:port"` or a bare IPv6 literal, as evdns accepts them.
    static func isNameServerAddress(_ text: String) -> Bool {
        if isIPLiteral(text) { return true }
        guard let hostPort = parseHostPort(text) else { return false }
        return isIPLiteral(hostPort.host)
    }

    /// `[admin]`: `listen` for the health and metrics endpoint.
    static func readAdmin(_ reader: TableReader) -> AdminConfig {
        reader.rejectUnknownKeys(known: ["listen", "unsafe_listen_public"])
        guard let text = reader.string("listen") else { return AdminConfig() }
        guard let listen = parseHostPort(text), isIPLiteral(listen.host) || listen.host.lowercased() == "localhost" else {
            reader.diagnostics.add(reader.key("listen"), "\"\(text)\" is not IP:port; write e.g. \"127.0.0.1:9180\"")
            return AdminConfig()
        }
        if !isLoopback(listen.host), !(reader.bool("unsafe_listen_public") ?? false) {
            reader.diagnostics.add(reader.key("listen"), "\(listen) is not a loopback address; metrics reveal traffic and"
                + " certificate details. Listen on 127.0.0.1, or set unsafe_listen_public = true behind a firewall")
        }
        return AdminConfig(listen: listen)
    }
}
