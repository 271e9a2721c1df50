import BridgeIO
import BridgeModel
import Dispatch
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// The running bridge: binds every listener once per worker, starts one thread per worker, and
/// then waits for signals on the main thread. SIGHUP reloads the configuration; SIGINT and SIGTERM
/// drain open sessions (up to `drain_timeout`) and stop.
public enum Bridge {
    /// Builds the next runtime from the config file, for a reload. Throws every problem found.
    public typealias Reloader = () throws(ConfigErrors) -> BridgeRuntime

    /// Runs until SIGINT or SIGTERM. Throws before anything is running if a listener cannot bind
    /// or a worker cannot start; each message names the key to fix.
    public static func run(runtime: BridgeRuntime, notifier: ServiceNotifier = ServiceNotifier(),
                           reload: Reloader) throws(ConfigErrors) {
        signal(SIGPIPE, SIG_IGN)
        Threading.enable()
        let descriptors = FileDescriptorLimit.raise()
        let neededPerSession = 2
        // Each worker's spare pools may grow to `mostSpares` connections per upstream at a high call rate.
        let spares = runtime.config.workers * runtime.config.upstreams.filter { $0.preconnect > 0 }.count * SparePool.mostSpares
        if descriptors < runtime.config.limits.maxSessions * neededPerSession + spares + 64 {
            runtime.logger.warning("the open-file limit is low for max_sessions; raise LimitNOFILE / ulimit -n",
                                   metadata: ["limit": "\(descriptors)", "max_sessions": "\(runtime.config.limits.maxSessions)"])
        }
        // Block the signals before any thread exists, so every thread inherits the mask and only
        // `sigwait` below ever sees them.
        var signals = sigset_t()
        sigemptyset(&signals)
        for signal in [SIGINT, SIGTERM, SIGHUP] { sigaddset(&signals, signal) }
        pthread_sigmask(SIG_BLOCK, &signals, nil)

        let sockets = try bindListeners(runtime.config.listeners, workers: runtime.config.workers)
        let watchdog = Watchdog.fromEnvironment(workers: sockets.count, notifier: notifier)
        let admin = try runtime.config.admin.listen.map { address throws(ConfigErrors) in
            try AdminServer(address: address, runtime: runtime, watchdog: watchdog)
        }
        try PrivilegeDrop.apply(user: runtime.config.user, group: runtime.config.group)
        let launches = sockets.enumerated().map {
            WorkerLaunch(index: $0.offset, runtime: runtime, sockets: $0.element, watchdog: watchdog)
        }
        launches.forEach { $0.start() }
        var errors: [ConfigError] = []
        for launch in launches {
            launch.ready.wait()
            if let error = launch.error { errors.append(error) }
        }
        guard errors.isEmpty else {
            launches.forEach { $0.mailbox.post(.drain) }
            launches.forEach { $0.join() }
            throw ConfigErrors(errors)
        }
        logListening(runtime)
        admin?.start()
        notifier.ready(status: "bridging: \(runtime.config.listeners.count) listeners, \(runtime.config.workers) workers")

        var current = runtime
        while true {
            var received: Int32 = 0
            sigwait(&signals, &received)
            guard received == SIGHUP else {
                runtime.logger.notice("stopping: draining open sessions",
                                      metadata: ["signal": "\(received == SIGINT ? "SIGINT" : "SIGTERM")",
                                                 "drain_timeout": "\(current.config.limits.drainTimeout)"])
                notifier.stopping(status: "draining open sessions")
                break
            }
            notifier.reloading()
            current = reloaded(current, launches: launches, reload: reload, notifier: notifier)
            admin?.update(current)
        }
        launches.forEach { $0.mailbox.post(.drain) }
        waitForWorkers(launches, signals: signals)
        admin?.stop()
        runtime.logger.notice("stopped")
    }

    /// Binds each listener once per worker (SO_REUSEPORT). All or nothing.
    private static func bindListeners(_ listeners: [ListenerConfig], workers: Int) throws(ConfigErrors) -> [[ListeningSocket]] {
        var sockets: [[ListeningSocket]] = []
        for _ in 0..<workers {
            var forWorker: [ListeningSocket] = []
            for listener in listeners {
                do {
                    forWorker.append(try ListeningSocket.bind(listener))
                } catch {
                    (sockets.joined() + forWorker).forEach { close($0.fd) }
                    throw ConfigErrors([error])
                }
            }
            sockets.append(forWorker)
        }
        return sockets
    }

    /// SIGHUP: build the new configuration off to the side; swap it in only if all of it works.
    private static func reloaded(_ current: BridgeRuntime, launches: [WorkerLaunch], reload: Reloader,
                                 notifier: ServiceNotifier) -> BridgeRuntime {
        let logger = current.logger
        let next: BridgeRuntime
        do {
            next = try reload()
        } catch {
            current.metrics.reloaded(success: false)
            logger.error("reload failed; the running configuration stays in force",
                         metadata: ["errors": "\(error.errors.map(\.description).joined(separator: "; "))"])
            notifier.ready(status: "reload failed, still running the previous configuration: \(error.errors.first?.description ?? "")")
            return current
        }
        if next.config.workers != current.config.workers {
            logger.warning("workers changed in the config; the worker count applies after a restart",
                           metadata: ["running": "\(current.config.workers)", "configured": "\(next.config.workers)"])
        }
        let running = Set(current.config.listeners.map(\.listen))
        let added = next.config.listeners.filter { !running.contains($0.listen) }
        let sockets: [[ListeningSocket]]
        do {
            sockets = try bindListeners(added, workers: launches.count)
        } catch {
            current.metrics.reloaded(success: false)
            logger.error("reload failed: a new listener cannot bind; the running configuration stays in force",
                         metadata: ["errors": "\(error.errors.map(\.description).joined(separator: "; "))"])
            notifier.ready(status: "reload failed: \(error.errors.first?.description ?? "")")
            return current
        }
        for (launch, newSockets) in zip(launches, sockets) {
            launch.mailbox.post(.reload(next, newSockets: newSockets))
        }
        next.metrics.reloaded(success: true)
        logger.notice("reloaded", metadata: ["listeners": "\(next.config.listeners.count)", "added": "\(added.count)",
                                             "removed": "\(running.subtracting(next.config.listeners.map(\.listen)).count)"])
        logListening(next)
        notifier.ready(status: "reloaded: \(next.config.listeners.count) listeners")
        return next
    }

    /// Joins the workers; a second stop signal meanwhile closes the remaining sessions at once.
    private static func waitForWorkers(_ launches: [WorkerLaunch], signals: sigset_t) {
        let finished = DispatchSemaphore(value: 0)
        let joiner = JoinThread(launches: launches, finished: finished)
        joiner.start()
        var signals = signals
        while finished.wait(timeout: .now() + .milliseconds(200)) == .timedOut {
            var pending = sigset_t()
            sigpending(&pending)
            if sigismember(&pending, SIGTERM) == 1 || sigismember(&pending, SIGINT) == 1 {
                var received: Int32 = 0
                sigwait(&signals, &received)
                launches.forEach { $0.mailbox.post(.drain) }
            }
        }
        joiner.join()
    }

    private static func logListening(_ runtime: BridgeRuntime) {
        for listener in runtime.config.listeners {
            runtime.logger.notice("listening", metadata: [
                "listener": "\(listener.name)", "address": "\(listener.listen)", "accept": "\(listener.accept.rawValue)",
                "upstream": "\(listener.upstream ?? listener.backend ?? "-")", "routes": "\(listener.routes.count)",
                "workers": "\(runtime.config.workers)",
            ])
        }
    }
}

/// Joins worker threads off the main thread, so the main thread can keep watching for signals.
private final class JoinThread: @unchecked Sendable {
    private let launches: [WorkerLaunch]
    private let finished: DispatchSemaphore
    private var thread = pthread_t()

    init(launches: [WorkerLaunch], finished: DispatchSemaphore) {
        self.launches = launches
        self.finished = finished
    }

    func start() {
        pthread_create(&thread, nil, { context in
            let joiner = Unmanaged<JoinThread>.fromOpaque(context!).takeRetainedValue()
            joiner.launches.forEach { $0.join() }
            joiner.finished.signal()
            return nil
        }, Unmanaged.passRetained(self).toOpaque())
    }

    func join() {
        pthread_join(thread, nil)
    }
}

/// Starts one worker on its own thread and gives the main thread its mailbox.
private final class WorkerLaunch: @unchecked Sendable {
    let index: Int
    let runtime: BridgeRuntime
    let sockets: [ListeningSocket]
    let mailbox = WorkerMailbox()
    let watchdog: Watchdog?
    /// Signalled once the worker is running (or failed to start). `error` is written by the worker
    /// thread before the signal and read by the main thread after it.
    let ready = DispatchSemaphore(value: 0)
    var error: ConfigError?
    private var thread = pthread_t()

    init(index: Int, runtime: BridgeRuntime, sockets: [ListeningSocket], watchdog: Watchdog?) {
        self.watchdog = watchdog
        self.index = index
        self.runtime = runtime
        self.sockets = sockets
    }

    func start() {
        let context = Unmanaged.passRetained(self).toOpaque()
        pthread_create(&thread, nil, { context in
            let launch = Unmanaged<WorkerLaunch>.fromOpaque(context!).takeRetainedValue()
            launch.runWorker()
            return nil
        }, context)
    }

    func join() {
        pthread_join(thread, nil)
    }

    private func runWorker() {
        let worker: Worker
        do {
            worker = try Worker(index: index, runtime: runtime, sockets: sockets, watchdog: watchdog)
        } catch {
            sockets.forEach { close($0.fd) }
            self.error = error
            ready.signal()
            return
        }
        let mailbox = self.mailbox
        mailbox.attach(worker.loop.makeWakeHandle { [unowned worker] in worker.handle(mailbox.take()) })
        ready.signal()
        worker.run()
    }
}
