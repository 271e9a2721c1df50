import BridgeIO
#if canImport(Glibc)
import Glibc
#endif

/// One run of the demo: the state that has to be cleaned up whatever happens.
public final class DemoRun {
    private let requestedPlainPort: UInt16
    private let requestedTLSPort: UInt16
    private let keep: Bool
    private var workspace: DemoWorkspace?
    private var gateway: DemoChild?
    private var bridge: DemoChild?

    /// Every wait is bounded by one of these.
    private let listenSeconds = 10.0
    private let requestSeconds = 15.0
    private let recordSeconds = 5.0

    public init(plainPort: UInt16, tlsPort: UInt16, keep: Bool) {
        requestedPlainPort = plainPort
        requestedTLSPort = tlsPort
        self.keep = keep
    }

    /// Runs the demo and returns the exit status. Children are stopped and the directory removed
    /// (unless --keep) on every path out.
    public func run() -> Int32 {
        let status: Int32
        do {
            status = try demonstrate()
        } catch {
            stopChildren()
            if workspace == nil {
                // Nothing started yet (a port is taken, say): an error like any other command's.
                demoWrite("tls-bridge demo: \(error.message)\n", to: STDERR_FILENO)
            } else {
                if let details = error.details { say(details) }
                say("")
                say("FAIL: \(error.message)")
                removeWorkspace(failed: true)
            }
            return 1
        }
        removeWorkspace(failed: status == 1)
        return status
    }

    private func demonstrate() throws(DemoFailure) -> Int32 {
        // Ports first: a taken one is the likeliest problem, and it is cheap to find before anything starts.
        let plainPort = try choosePort(requestedPlainPort, option: "--port-plain", role: "plain", avoiding: [])
        let tlsPort = try choosePort(requestedTLSPort, option: "--port-tls", role: "legacy TLS", avoiding: [plainPort])
        var gatewayPort = try DemoNetwork.freePort()
        while gatewayPort == plainPort || gatewayPort == tlsPort { gatewayPort = try DemoNetwork.freePort() }

        let workspace = DemoWorkspace(directory: try DemoFiles.makeWorkDirectory())
        self.workspace = workspace
        say("tls-bridge demo: the whole path on this machine, loopback only, nothing sent to any real gateway.")
        say("  work directory: \(workspace.directory)" + (keep ? " (kept: --keep)" : " (removed at the end; --keep keeps it)"))

        // Also finds a missing `openssl` command before anything is made or started.
        let client = DemoLegacyClient(workspace: workspace)
        let skipped = try client.unavailableReason()

        say("[1/6] throwaway certificates")
        for line in try workspace.makeCertificates() { say("      " + line) }
        try DemoSignals.checkInterrupted()

        say("[2/6] test gateway: openssl s_server on 127.0.0.1:\(gatewayPort), TLS 1.2 only, requires and verifies a client certificate")
        try workspace.writeWebRoot()
        gateway = try startGateway(workspace, port: gatewayPort)
        try waitListening(gateway!, ports: [gatewayPort], what: "the test gateway")

        let executable = Self.ownExecutable()
        say("[3/6] the bridge: \(executable) run --config \(workspace.config)")
        try workspace.writeConfig(gatewayPort: gatewayPort, plainPort: plainPort, tlsPort: tlsPort)
        bridge = try DemoChild.spawn(name: "tls-bridge run", executable: executable,
                                     arguments: ["run", "--config", workspace.config],
                                     stdoutPath: workspace.path("bridge.out"), stderrPath: workspace.path("bridge.err"))
        try waitListening(bridge!, ports: [plainPort, tlsPort], what: "the bridge")
        say("      listener plain       127.0.0.1:\(plainPort) → upstream demo-gateway (127.0.0.1:\(gatewayPort), verified as gateway.demo)")
        say("      listener legacy-tls  127.0.0.1:\(tlsPort) accepts TLS 1.0+, presents gateway.demo minted from the bridge CA")
        if requestedPlainPort == 0 || requestedTLSPort == 0 {
            say("      (free ports picked for the listeners; --port-plain PORT and --port-tls PORT choose them)")
        }

        let request = "GET \(DemoWorkspace.pagePath) HTTP/1.0\r\nHost: \(DemoWorkspace.gatewayName)\r\n"
            + "User-Agent: tls-bridge-demo\r\n\r\n"

        say("[4/6] plain HTTP request → 127.0.0.1:\(plainPort) (a merchant whose gateway URL now starts http://127.0.0.1:\(plainPort)/)")
        var plainProblems: [String] = []
        do {
            let answer = try DemoNetwork.exchange(port: plainPort, request: request, seconds: requestSeconds)
            plainProblems += describe(answer: answer)
        } catch {
            try DemoSignals.checkInterrupted()
            plainProblems.append(error.message)
            say("      " + error.message)
        }

        var legacyProblems: [String] = []
        if let skipped {
            say("[5/6] TLS 1.0 request: skipped, \(skipped)")
        } else {
            say("[5/6] TLS 1.0 request → 127.0.0.1:\(tlsPort) (a merchant that dials https://gateway.demo/ with TLS 1.0, hosts-file style)")
            say("      openssl " + client.arguments(port: tlsPort).map(Self.shellWord).joined(separator: " "))
            let result = try client.run(port: tlsPort, request: request, seconds: requestSeconds)
            try DemoSignals.checkInterrupted()
            say("      client: \(result.protocolVersion ?? "no TLS session"), \(result.cipher ?? "no cipher"),"
                + " bridge certificate verification \(result.verification ?? "not reached")")
            for line in result.errorLines.prefix(4) { say("      | " + line) }
            if result.protocolVersion != "TLSv1" {
                legacyProblems.append("the client did not complete a TLS 1.0 handshake with the legacy listener"
                    + (result.errorLines.first.map { ": \($0)" } ?? ""))
            }
            if result.verification != "OK" {
                legacyProblems.append("the client did not verify the bridge's certificate for gateway.demo"
                    + " (\(result.verification ?? "no verification result"))")
            }
            legacyProblems += describe(answer: result.answer)
        }

        let expected = skipped == nil ? ["plain", "legacy-tls"] : ["plain"]
        let records = DemoRecords.wait(for: expected, in: workspace.sessionLog, seconds: recordSeconds)
        try DemoSignals.checkInterrupted()

        say("[6/6] stopping: " + stopChildren().joined(separator: "; "))

        let parts: [(listener: String, downstream: String, label: String, problems: [String])] =
            [("plain", "plain", "plain", plainProblems)]
            + (skipped == nil ? [("legacy-tls", "TLSv1", "TLS 1.0", legacyProblems)] : [])
        var failures: [String] = []
        var summaries: [String] = []
        for (index, part) in parts.enumerated() {
            let record = records.first { $0.listener == part.listener }
            say("")
            say("session record \(index + 1) of \(parts.count): listener \(part.listener)")
            var problems = part.problems
            if let record {
                say(record.pretty)
                problems += record.problems(expectingDownstream: part.downstream)
                summaries.append(record.protocols)
            } else {
                say("(none: no record from listener \(part.listener) in \(workspace.sessionLog) within \(Int(recordSeconds)) s)")
                problems.append("no session record")
            }
            if !problems.isEmpty { failures.append("\(part.label): " + problems.joined(separator: "; ")) }
        }
        if let bridge, bridge.exitCode != 0 {
            say("")
            say("the bridge \(bridge.exitDescription) when stopped; its last output:")
            say(bridge.outputTail())
            failures.append("the bridge \(bridge.exitDescription) when stopped, not 0")
        }

        say("")
        if !failures.isEmpty {
            say("FAIL: " + failures.joined(separator: " | "))
            return 1
        }
        let proof = "gateway certificate verified, merchant client certificate presented"
        if let skipped {
            say("INCOMPLETE: the plain request passed (\(summaries.joined()), \(proof), answer received);"
                + " the TLS 1.0 request was skipped: \(skipped)")
            return 3
        }
        say("PASS: both requests reached the TLS 1.2-only gateway through the bridge (\(summaries.joined(separator: " and ")));"
            + " \(proof), answers received.")
        return 0
    }

    // MARK: - Steps

    /// The port to use: `requested`, checked to be free on 127.0.0.1, or a free one for 0.
    private func choosePort(_ requested: UInt16, option: String, role: String,
                            avoiding taken: [UInt16]) throws(DemoFailure) -> UInt16 {
        if requested == 0 {
            var port = try DemoNetwork.freePort()
            while taken.contains(port) { port = try DemoNetwork.freePort() }
            return port
        }
        guard let error = DemoNetwork.bindError(port: requested) else { return requested }
        switch error {
        case EADDRINUSE:
            throw DemoFailure("port \(requested) on 127.0.0.1 is already in use; the demo needs it for the bridge's \(role)"
                + " listener. Choose another with \(option) PORT, or \(option) 0 to pick a free one")
        case EACCES:
            throw DemoFailure("port \(requested) on 127.0.0.1 needs privileges to bind (the bridge's \(role) listener);"
                + " choose a port above 1023 with \(option) PORT, or \(option) 0 to pick a free one")
        default:
            throw DemoFailure("port \(requested) on 127.0.0.1 cannot be bound (\(String(cString: strerror(error))));"
                + " choose another with \(option) PORT, or \(option) 0 to pick a free one")
        }
    }

    /// openssl s_server, TLS 1.2 only, requiring a client certificate from the gateway CA and failing
    /// the handshake when it does not verify (-verify_return_error: without it s_server only logs the
    /// failure). -WWW serves files from the web root, which it takes from its working directory:
    /// `sh -c 'cd DIR && exec ...'` sets that and then becomes s_server, keeping the PID.
    private func startGateway(_ workspace: DemoWorkspace, port: UInt16) throws(DemoFailure) -> DemoChild {
        try DemoChild.spawn(name: "test gateway", executable: "/bin/sh",
                            arguments: ["-c", "cd -- \"$0\" && exec \"$@\"", workspace.webRoot,
                                        "openssl", "s_server", "-accept", "127.0.0.1:\(port)", "-tls1_2",
                                        "-cert", workspace.gatewayCertificate, "-key", workspace.gatewayKey,
                                        "-CAfile", workspace.gatewayCACertificate, "-Verify", "1",
                                        "-verify_return_error", "-WWW"],
                            stdoutPath: workspace.path("gateway.out"), stderrPath: workspace.path("gateway.err"))
    }

    /// Waits until `child` listens on every port (read from /proc/net/tcp, no connection made), or
    /// fails when it exits first or `listenSeconds` pass.
    private func waitListening(_ child: DemoChild, ports: [UInt16], what: String) throws(DemoFailure) {
        let deadline = DemoDeadline(seconds: listenSeconds)
        while !ports.allSatisfy(DemoNetwork.isListening) {
            try DemoSignals.checkInterrupted()
            if !child.isRunning {
                throw DemoFailure("\(what) \(child.exitDescription) before listening on"
                    + " \(ports.map { "127.0.0.1:\($0)" }.joined(separator: " and ")); its last output is above",
                    details: child.outputTail())
            }
            if deadline.passed {
                let missing = ports.filter { !DemoNetwork.isListening(port: $0) }
                throw DemoFailure("\(what) was not listening on \(missing.map { "127.0.0.1:\($0)" }.joined(separator: ", "))"
                    + " after \(Int(listenSeconds)) s; its last output is above", details: child.outputTail())
            }
            demoPause(milliseconds: 50)
        }
    }

    /// Shows an HTTP answer and returns what is wrong with it.
    private func describe(answer: [UInt8]) -> [String] {
        guard let response = DemoHTTPAnswer(answer) else {
            say("      no HTTP answer (\(answer.count) bytes)")
            return ["no HTTP answer came back (\(answer.count) bytes)"]
        }
        say("      answer: \(response.statusLine) — \(response.body.split(whereSeparator: \.isNewline).first ?? "")")
        var problems: [String] = []
        if !response.isOK { problems.append("the gateway answered \(response.statusLine)") }
        if response.body != DemoWorkspace.pageText {
            problems.append("the answer is not the test gateway's page")
        }
        return problems
    }

    // MARK: - Clean-up

    /// Stops the bridge (SIGTERM: it drains for up to drain_timeout = 2 s) and the gateway, by PID;
    /// SIGKILL for whichever is still there after its grace period. Returns how each ended.
    @discardableResult
    private func stopChildren() -> [String] {
        var lines: [String] = []
        if let bridge {
            lines.append("bridge \(bridge.stop(graceSeconds: 6))")
        }
        if let gateway {
            lines.append("test gateway \(gateway.stop(graceSeconds: 2))")
        }
        return lines
    }

    private func removeWorkspace(failed: Bool) {
        guard let workspace else { return }
        if keep {
            say("kept \(workspace.directory): demo.toml, sessions.jsonl, certificates, bridge.err, gateway.out")
        } else {
            DemoFiles.removeTree(workspace.directory)
            if failed { say("(removed \(workspace.directory); run with --keep to look at the files)") }
        }
    }

    deinit {
        // Belt and braces: nothing the demo started outlives it.
        stopChildren()
    }

    // MARK: - Helpers

    /// This binary: /proc/self/exe, or argv[0] where /proc is not mounted.
    static func ownExecutable() -> String {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let length = buffer.withUnsafeMutableBytes {
            readlink("/proc/self/exe", $0.baseAddress!.assumingMemoryBound(to: CChar.self), $0.count)
        }
        if length > 0 && length < buffer.count {
            return String(decoding: buffer[0..<length], as: UTF8.self)
        }
        return CommandLine.arguments[0]
    }

    /// `word` quoted for a POSIX shell when it needs it.
    static func shellWord(_ word: String) -> String {
        let plain = word.utf8.allSatisfy { byte in
            (0x30...0x39).contains(byte) || (0x41...0x5a).contains(byte) || (0x61...0x7a).contains(byte)
                || "-_./:=@,+".utf8.contains(byte)
        }
        return plain && !word.isEmpty ? word : "'" + word.split(separator: "'", omittingEmptySubsequences: false)
            .joined(separator: "'\\''") + "'"
    }

    /// One line to stdout, written at once (the children's output goes to files, so nothing interleaves).
    private func say(_ line: String) {
        demoWrite(line + "\n", to: STDOUT_FILENO)
    }
}

/// Writes all of `text` to `descriptor`, retrying short writes.
func demoWrite(_ text: String, to descriptor: Int32) {
    writeAll(Array(text.utf8), to: descriptor)
}
