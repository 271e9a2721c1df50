import BridgeIO
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Something in the demo went wrong; `message` is what the operator reads (already phrased for them),
/// on one line; `details` (a child's last output lines, say) is printed above it.
struct DemoFailure: Error {
    let message: String
    let details: String?
    init(_ message: String, details: String? = nil) {
        self.message = message
        self.details = details
    }
}

/// The signal (SIGINT, SIGTERM, SIGHUP) that asked the demo to stop, or 0. Set from a signal handler
/// (an atomic store is async-signal-safe); every wait in the demo looks at it, so an interrupted demo
/// still stops its children and removes its directory.
let demoInterruption = Atomic<Int32>(0)

public enum DemoSignals {
    public static func install() {
        for signal in [SIGINT, SIGTERM, SIGHUP] {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { demoInterruption.store($0, ordering: .relaxed) }
            sigemptyset(&action.sa_mask)
            action.sa_flags = 0
            sigaction(signal, &action, nil)
        }
    }

    /// Throws when a stop signal arrived.
    static func checkInterrupted() throws(DemoFailure) {
        let signal = demoInterruption.load(ordering: .relaxed)
        if signal != 0 {
            throw DemoFailure("interrupted by signal \(signal); stopping what the demo started")
        }
    }
}

/// A point in monotonic time some seconds from now; every wait in the demo has one.
struct DemoDeadline {
    private let end: ContinuousClock.Instant

    init(seconds: Double) {
        end = ContinuousClock.now.advanced(by: .milliseconds(Int(seconds * 1000)))
    }

    var passed: Bool { ContinuousClock.now >= end }
}

/// Sleeps `milliseconds` (a polling interval).
func demoPause(milliseconds: Int) {
    var request = timespec(tv_sec: milliseconds / 1000, tv_nsec: (milliseconds % 1000) * 1_000_000)
    var remaining = timespec()
    while nanosleep(&request, &remaining) == -1 && errno == EINTR {
        if demoInterruption.load(ordering: .relaxed) != 0 { return }
        request = remaining
    }
}

/// A child process the demo started, known by its PID. Its stdin, stdout and stderr are files, so
/// nothing it prints can block it or interleave with the demo's own output.
final class DemoChild {
    let name: String
    let pid: pid_t
    let stdoutPath: String
    let stderrPath: String
    /// The wait status once the child has been reaped.
    private(set) var status: Int32?

    private init(name: String, pid: pid_t, stdoutPath: String, stderrPath: String) {
        self.name = name
        self.pid = pid
        self.stdoutPath = stdoutPath
        self.stderrPath = stderrPath
    }

    /// Starts `executable` (looked up on PATH when it has no slash) with `arguments`, stdin from
    /// `stdinPath`, stdout and stderr to new files. Signal mask and the stop signals' dispositions are
    /// reset to the defaults in the child.
    static func spawn(name: String, executable: String, arguments: [String], stdinPath: String = "/dev/null",
                      stdoutPath: String, stderrPath: String) throws(DemoFailure) -> DemoChild {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, stdinPath, O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdoutPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, stderrPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)

        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let result = withChildSpawnAttributes { attributes in
            executable.contains("/")
                ? posix_spawn(&pid, executable, &actions, &attributes, argv, environ)
                : posix_spawnp(&pid, executable, &actions, &attributes, argv, environ)
        }
        guard result == 0 else {
            throw DemoFailure("could not start \(name) (\(executable)): \(String(cString: strerror(result)))"
                + (executable.contains("/") ? "" : "; is \(executable) installed and on PATH?"))
        }
        return DemoChild(name: name, pid: pid, stdoutPath: stdoutPath, stderrPath: stderrPath)
    }

    /// Reaps the child if it has exited; true while it is still running.
    var isRunning: Bool {
        guard status == nil else { return false }
        var value: Int32 = 0
        let result = waitpid(pid, &value, WNOHANG)
        if result == pid {
            status = value
            return false
        }
        if result == -1 && errno == ECHILD {
            status = -1
            return false
        }
        return true
    }

    /// Waits up to `seconds` for the child to exit on its own. Ignores stop signals (the caller
    /// decides); returns whether it exited.
    func waitForExit(seconds: Double, honouringInterrupt: Bool = false) -> Bool {
        let deadline = DemoDeadline(seconds: seconds)
        while isRunning {
            if deadline.passed { return false }
            if honouringInterrupt && demoInterruption.load(ordering: .relaxed) != 0 { return false }
            demoPause(milliseconds: 20)
        }
        return true
    }

    /// Stops the child by its PID: SIGTERM, then SIGKILL if it is still there after `graceSeconds`.
    /// Returns how it ended, for the demo's output.
    @discardableResult
    func stop(graceSeconds: Double) -> String {
        if !isRunning { return "had already \(exitDescription)" }
        kill(pid, SIGTERM)
        if waitForExit(seconds: graceSeconds) { return exitDescription }
        kill(pid, SIGKILL)
        _ = waitForExit(seconds: 5)
        return isRunning ? "did not stop even after SIGKILL (PID \(pid))" : "killed after \(graceSeconds) s"
    }

    /// The exit code, or nil while running or when a signal ended it.
    var exitCode: Int32? {
        guard let status, status != -1, status & 0x7f == 0 else { return nil }
        return (status >> 8) & 0xff
    }

    /// "exited 0", "exited 1", "ended by signal 15", "running".
    var exitDescription: String {
        guard let status else { return "running" }
        if status == -1 { return "exited (status unknown)" }
        if status & 0x7f == 0 { return "exited \((status >> 8) & 0xff)" }
        return "ended by signal \(status & 0x7f)"
    }

    /// The last `lines` lines of what the child wrote to stderr (and stdout when stderr is empty).
    func outputTail(lines: Int = 12) -> String {
        let text = [stderrPath, stdoutPath].lazy.compactMap { DemoFiles.read($0) }
            .first { $0.contains { !$0.isWhitespace } } ?? ""
        var all = text.split(separator: "\n", omittingEmptySubsequences: false)
        while let last = all.last, last.allSatisfy(\.isWhitespace) { all.removeLast() }
        if all.isEmpty { return "      | (\(name) wrote nothing)" }
        return all.suffix(lines).map { "      | " + $0 }.joined(separator: "\n")
    }
}
