import BridgeIO
import BridgeModel
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Parses and validates configuration text in a child process, for a reload of the running bridge.
///
/// toml++ (under TOMLKit) aborts on some malformed inputs instead of reporting them, and TOMLKit
/// leaks memory on every parse. So a running bridge never parses TOML itself: it re-executes its
/// own binary (`/proc/self/exe`, which still works after the file on disk was replaced) with the
/// hidden `reload-check` subcommand, writes the text to its stdin and reads back a
/// `ConfigCheckReport` as JSON. A crash, a hang (killed after the time limit) or a garbled answer
/// become a `config` error, and the running configuration stays.
///
/// The caller reads the file once and passes the same text here, so what was checked is what is
/// used: there is no second read of a file that may have changed in between. Blocks the calling
/// thread for at most the time limit; never call it on an event loop.
public enum IsolatedConfigCheck {
    /// The hidden subcommand the child runs.
    public static let subcommand = "reload-check"
    /// How long the child may take before it is killed.
    public static let defaultTimeoutMilliseconds = 15_000
    /// Caps on what is read back (a validated config is a few KiB of JSON).
    private static let maximumOutput = 32 * 1024 * 1024
    private static let maximumErrorOutput = 64 * 1024

    /// The `Config` the child built from `text`, or every problem it found, or why the check
    /// itself failed (under the key `config`).
    /// `configPath` only names the file in messages.
    public static func check(text: String, baseDirectory: String, configPath: String, executable: String = "/proc/self/exe",
                             timeoutMilliseconds: Int = defaultTimeoutMilliseconds) throws(ConfigErrors) -> Config {
        let outcome: ChildOutcome
        do {
            outcome = try runChild(executable, arguments: [subcommand, "--base-directory", baseDirectory],
                                   input: Array(text.utf8), timeoutMilliseconds: timeoutMilliseconds)
        } catch {
            throw failure("could not start the process that checks the new config: \(error.reason)")
        }
        let firstErrorLine = String(decoding: outcome.errorOutput, as: UTF8.self)
            .split(separator: "\n").first.map { String($0.prefix(400)) }
        let detail = firstErrorLine.map { " (it said: \($0))" } ?? ""
        if outcome.timedOut {
            throw failure("checking the new config did not finish within \(timeoutMilliseconds / 1000) s; the checking"
                + " process was killed\(detail)")
        }
        if let signal = outcome.signal {
            let name = strsignal(signal).map { String(cString: $0) } ?? "signal \(signal)"
            throw failure("the config parser crashed (signal \(signal), \(name)) while checking the new config\(detail);"
                + " `tls-bridge check --config \(configPath)` shows the same; fix the file's syntax")
        }
        guard outcome.exitCode == 0 || outcome.exitCode == 1,
              let report = ConfigCheckReport.decoded(from: Data(outcome.output)) else {
            throw failure("the process that checks the new config gave no usable answer (exit code"
                + " \(outcome.exitCode.map(String.init) ?? "?"))\(detail)")
        }
        if let config = report.config { return config }
        throw ConfigErrors(report.errors)
    }

    private static func failure(_ message: String) -> ConfigErrors {
        ConfigErrors([ConfigError(key: "config", message: message)])
    }

    /// How the child ended and what it wrote.
    private struct ChildOutcome {
        var output: [UInt8] = []
        var errorOutput: [UInt8] = []
        var exitCode: Int32?
        var signal: Int32?
        var timedOut = false
    }

    private struct SpawnError: Error {
        var reason: String
    }

    /// Starts `executable` with `input` on stdin, reads stdout and stderr until both end or the
    /// time limit passes (then kills it), and reaps it.
    private static func runChild(_ executable: String, arguments: [String], input: [UInt8],
                                 timeoutMilliseconds: Int) throws(SpawnError) -> ChildOutcome {
        var stdinPipe: [Int32] = [-1, -1], stdoutPipe: [Int32] = [-1, -1], stderrPipe: [Int32] = [-1, -1]
        guard pipe(&stdinPipe) == 0 else { throw SpawnError(reason: "pipe: \(String(cString: strerror(errno)))") }
        guard pipe(&stdoutPipe) == 0 else {
            stdinPipe.forEach { close($0) }
            throw SpawnError(reason: "pipe: \(String(cString: strerror(errno)))")
        }
        guard pipe(&stderrPipe) == 0 else {
            (stdinPipe + stdoutPipe).forEach { close($0) }
            throw SpawnError(reason: "pipe: \(String(cString: strerror(errno)))")
        }
        // Only this (main) thread ever starts processes, so setting the flag after pipe() races nothing.
        for fd in stdinPipe + stdoutPipe + stderrPipe { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, stdinPipe[0], 0)
        posix_spawn_file_actions_adddup2(&actions, stdoutPipe[1], 1)
        posix_spawn_file_actions_adddup2(&actions, stderrPipe[1], 2)
        // Listening and session sockets stay with the bridge, whatever their close-on-exec flag.
        _ = addCloseFrom(3, to: &actions)

        // A crash should end the child at once: no Swift backtrace (slow, and long on stderr).
        var environment = currentEnvironment().filter { !$0.hasPrefix("SWIFT_BACKTRACE=") }
        environment.append("SWIFT_BACKTRACE=enable=no")
        let argv: [UnsafeMutablePointer<CChar>?] = (["tls-bridge"] + arguments).map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup($0) } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        // The bridge blocks its stop signals and ignores SIGPIPE; the child starts with defaults.
        let spawned = withChildSpawnAttributes { posix_spawn(&pid, executable, &actions, &$0, argv, envp) }
        close(stdinPipe[0])
        close(stdoutPipe[1])
        close(stderrPipe[1])
        guard spawned == 0 else {
            [stdinPipe[1], stdoutPipe[0], stderrPipe[0]].forEach { close($0) }
            throw SpawnError(reason: "\(executable): \(String(cString: strerror(spawned)))")
        }

        var outcome = ChildOutcome()
        let deadline = monotonicMilliseconds() + Int64(timeoutMilliseconds)
        exchange(input: input, stdin: stdinPipe[1], stdout: stdoutPipe[0], stderr: stderrPipe[0],
                 deadline: deadline, outcome: &outcome)
        var status: Int32 = 0
        while waitpid(pid, &status, WNOHANG) == 0 {
            if monotonicMilliseconds() >= deadline {
                outcome.timedOut = true
                kill(pid, SIGKILL)
                waitpid(pid, &status, 0)
                break
            }
            usleep(2_000)
        }
        let termination = status & 0x7f
        if termination == 0 {
            outcome.exitCode = (status >> 8) & 0xff
        } else if termination != 0x7f && !outcome.timedOut {
            outcome.signal = termination
        }
        return outcome
    }

    /// Feeds `input` to the child and collects its output, with `poll`, until both outputs ended
    /// or the deadline passed. Closes the three descriptors.
    private static func exchange(input: [UInt8], stdin: Int32, stdout: Int32, stderr: Int32, deadline: Int64,
                                 outcome: inout ChildOutcome) {
        var stdinFD: Int32? = stdin, stdoutFD: Int32? = stdout, stderrFD: Int32? = stderr
        for fd in [stdin, stdout, stderr] { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
        defer { [stdinFD, stdoutFD, stderrFD].compactMap { $0 }.forEach { close($0) } }
        var written = 0
        if input.isEmpty, let fd = stdinFD {
            close(fd)
            stdinFD = nil
        }
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while stdoutFD != nil || stderrFD != nil {
            let remaining = deadline - monotonicMilliseconds()
            guard remaining > 0 else {
                outcome.timedOut = true
                return
            }
            var fds: [pollfd] = []
            if let fd = stdinFD { fds.append(pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)) }
            if let fd = stdoutFD { fds.append(pollfd(fd: fd, events: Int16(POLLIN), revents: 0)) }
            if let fd = stderrFD { fds.append(pollfd(fd: fd, events: Int16(POLLIN), revents: 0)) }
            guard poll(&fds, nfds_t(fds.count), Int32(min(remaining, 1000))) >= 0 || errno == EINTR else { return }
            for entry in fds where entry.revents != 0 {
                if entry.fd == stdinFD {
                    let count = input[written...].withUnsafeBytes { write(entry.fd, $0.baseAddress, $0.count) }
                    if count > 0 { written += count }
                    if written == input.count || (count < 0 && errno != EAGAIN && errno != EINTR) {
                        close(entry.fd)
                        stdinFD = nil
                    }
                    continue
                }
                let count = buffer.withUnsafeMutableBytes { read(entry.fd, $0.baseAddress, $0.count) }
                if count < 0 && (errno == EAGAIN || errno == EINTR) { continue }
                if entry.fd == stdoutFD {
                    if count > 0 && outcome.output.count < maximumOutput {
                        outcome.output += buffer[..<count]
                    } else if count <= 0 {
                        close(entry.fd)
                        stdoutFD = nil
                    }
                } else if entry.fd == stderrFD {
                    if count > 0 && outcome.errorOutput.count < maximumErrorOutput {
                        outcome.errorOutput += buffer[..<count]
                    } else if count <= 0 {
                        close(entry.fd)
                        stderrFD = nil
                    }
                }
            }
        }
    }

    private static func currentEnvironment() -> [String] {
        var result: [String] = []
        var pointer = environ
        while let entry = pointer.pointee {
            result.append(String(cString: entry))
            pointer += 1
        }
        return result
    }

    private static func monotonicMilliseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
    }
}
