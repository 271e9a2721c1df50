import BridgeIO
import BridgeModel
import Dispatch
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// The running bridge: binds every listener once per worker, starts one thread per worker, and
/// waits for a signal. SIGINT and SIGTERM stop it; every open session is closed and logged.
public enum Bridge {
    /// Runs until SIGINT or SIGTERM. Throws before anything is running if a listener cannot bind
    /// or a worker cannot start; each message names the key to fix.
    public static func run(runtime: BridgeRuntime) throws(ConfigErrors) {
        let config = runtime.config
        let logger = runtime.logger
        signal(SIGPIPE, SIG_IGN)
        Threading.enable()

        // Block the stop signals before any thread exists, so every thread inherits the mask and
        // only `sigwait` below ever sees them.
        var signals = sigset_t()
        sigemptyset(&signals)
        for signal in [SIGINT, SIGTERM, SIGHUP] { sigaddset(&signals, signal) }
        pthread_sigmask(SIG_BLOCK, &signals, nil)

        var sockets: [[ListeningSocket]] = []
        var errors: [ConfigError] = []
        for _ in 0..<config.workers {
            var forWorker: [ListeningSocket] = []
            for listener in config.listeners {
                do {
                    forWorker.append(try ListeningSocket.bind(listener))
                } catch {
                    errors.append(error)
                }
            }
            sockets.append(forWorker)
            if !errors.isEmpty { break }
        }
        guard errors.isEmpty else {
            sockets.joined().forEach { close($0.fd) }
            throw ConfigErrors(errors)
        }

        let launches = sockets.enumerated().map { WorkerLaunch(index: $0.offset, runtime: runtime, sockets: $0.element) }
        for launch in launches {
            launch.start()
        }
        let handles = launches.compactMap { launch -> StopHandle? in
            launch.ready.wait()
            if let error = launch.error { errors.append(error) }
            return launch.handle
        }
        guard errors.isEmpty else {
            handles.forEach { $0.requestStop() }
            launches.forEach { $0.join() }
            throw ConfigErrors(errors)
        }
        for listener in config.listeners {
            logger.notice("listening", metadata: [
                "listener": "\(listener.name)", "address": "\(listener.listen)", "accept": "\(listener.accept.rawValue)",
                "upstream": "\(listener.upstream ?? "-")", "routes": "\(listener.routes.count)", "workers": "\(config.workers)",
            ])
        }

        while true {
            var received: Int32 = 0
            sigwait(&signals, &received)
            if received == SIGHUP {
                logger.warning("SIGHUP received: reloading is not supported yet; restart tls-bridge to apply a new config")
                continue
            }
            logger.notice("stopping", metadata: ["signal": "\(received == SIGINT ? "SIGINT" : "SIGTERM")"])
            break
        }
        handles.forEach { $0.requestStop() }
        launches.forEach { $0.join() }
        logger.notice("stopped")
    }
}

/// Starts one worker on its own thread and hands its stop handle back to the main thread.
private final class WorkerLaunch: @unchecked Sendable {
    let index: Int
    let runtime: BridgeRuntime
    let sockets: [ListeningSocket]
    /// Signalled once the worker is running (or failed to start). `handle` and `error` are written
    /// by the worker thread before the signal and read by the main thread after it.
    let ready = DispatchSemaphore(value: 0)
    var handle: StopHandle?
    var error: ConfigError?
    private var thread = pthread_t()

    init(index: Int, runtime: BridgeRuntime, sockets: [ListeningSocket]) {
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
            worker = try Worker(index: index, runtime: runtime, sockets: sockets)
        } catch {
            sockets.forEach { close($0.fd) }
            self.error = error
            ready.signal()
            return
        }
        handle = worker.loop.makeStopHandle { [unowned worker] in worker.stop() }
        ready.signal()
        worker.run()
    }
}
