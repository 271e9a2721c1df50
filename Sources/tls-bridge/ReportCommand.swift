import ArgumentParser
import BridgeIO
import BridgeReport
#if canImport(Glibc)
import Glibc
#endif

/// `tls-bridge report`: the session logs as audit evidence (every outbound session reached the gateway
/// over verified TLS ≥ 1.2) and as a migration list (which merchant systems still speak TLS 1.0/1.1 or
/// plain), or with `--verify` a check of the logs' tamper-evidence chain.
///
/// Streams: memory depends on the number of distinct listeners, sources, reasons and certificates,
/// not on the size of the logs.
struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Summarise session logs (plain or gzip) for an assessor, or verify their hash chain.",
        discussion: """
        Report: sessions by listener, downstream protocol and result; merchant systems still on TLS 1.0/1.1 \
        or plain (first/last seen); the upstream evidence (share of outbound sessions with TLS >= 1.2 and a \
        verified gateway certificate, every exception, every refused upstream with its reason); failures by \
        phase and reason; certificates seen. Lines that are not session records are counted and listed, \
        never fatal. Exit status 1 if a file could not be read to its end.

        --verify checks the chain written with [log] chain = true: each record's "prev" is the SHA-256 of \
        the line before it ("genesis" starts a chain). Give rotated files oldest first, e.g. \
        sessions.jsonl.2.gz sessions.jsonl.1 sessions.jsonl; they are read as one chain. Prints \
        "intact (N records)", or the first file:line where a link fails and how; exit status 1 if broken. \
        A "genesis" in the middle is listed as a restart, not a break.

        Detected: a record edited, deleted or inserted anywhere before the last record. Not detected: \
        records cut from the end of the log, or every record rewritten from some point on, by anyone who \
        can write the log (SHA-256 needs no key). Ship the log off-host as it is written, or keep the last \
        hash this prints somewhere else and check later that a record's "prev" still carries it.
        """
    )

    @Option(help: ArgumentHelp("Only records at or after TIME: RFC 3339 (2026-11-27T09:00:00+09:00) or a date (2026-11-27, midnight UTC).",
                               valueName: "TIME"))
    var since: String?

    @Flag(help: "Print one JSON document with sorted keys (stable for scripts) instead of tables.")
    var json = false

    @Flag(help: "Verify the tamper-evidence chain across the files, in the order given, instead of reporting.")
    var verify = false

    @Argument(help: ArgumentHelp("Session logs, plain or gzip (rotated files oldest first for --verify).", valueName: "FILE"))
    var files: [String]

    mutating func validate() throws {
        guard !files.isEmpty else {
            throw ValidationError("give at least one session log FILE")
        }
        if verify && since != nil {
            throw ValidationError("--since cannot be combined with --verify: the chain is checked from its first record")
        }
        if let since, RecordTime.parse(since, allowDateOnly: true) == nil {
            throw ValidationError("--since \"\(since)\" is not RFC 3339 (2026-11-27T09:00:00Z, 2026-11-27T09:00:00+09:00) "
                                  + "or a date (2026-11-27)")
        }
    }

    func run() throws {
        if verify {
            let result = LogChain.verify(files: files)
            emit(json ? result.json() : result.text())
            if !result.intact { throw ExitCode(1) }
            return
        }
        let builder = ReportBuilder(options: ReportOptions(since: since.flatMap { RecordTime.parse($0, allowDateOnly: true) },
                                                           sinceText: since))
        var unreadable: [LogReadError] = []
        for file in files {
            if let error = builder.read(file: file) { unreadable.append(error) }
        }
        let report = builder.finish()
        emit(json ? report.json() : report.text())
        for error in unreadable {
            emit("tls-bridge report: \(error)\n", to: STDERR_FILENO)
        }
        if !unreadable.isEmpty { throw ExitCode(1) }
    }

    private func emit(_ text: String, to descriptor: Int32 = STDOUT_FILENO) {
        writeAll(Array(text.utf8), to: descriptor)
    }
}
