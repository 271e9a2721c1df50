internal import CBridgeShims
#if canImport(Glibc)
import Glibc
#endif

/// Calls `body` with `posix_spawn` attributes for a child of the bridge: the signals the bridge
/// blocks or ignores (SIGINT, SIGTERM and SIGHUP wait for its signal thread; SIGPIPE is ignored)
/// are unblocked and back to their defaults in the child, so the child stops like any process.
public func withChildSpawnAttributes<Result>(_ body: (inout Glibc.posix_spawnattr_t) -> Result) -> Result {
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var noSignals = sigset_t()
    sigemptyset(&noSignals)
    var defaults = sigset_t()
    sigemptyset(&defaults)
    for signal in [SIGINT, SIGTERM, SIGHUP, SIGPIPE] { sigaddset(&defaults, signal) }
    posix_spawnattr_setsigmask(&attributes, &noSignals)
    posix_spawnattr_setsigdefault(&attributes, &defaults)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
    return body(&attributes)
}

/// Adds "close every descriptor from `lowest` up in the child" to `actions`, so that no listening or
/// session socket reaches a child whatever its close-on-exec flag. Returns 0 or an errno.
public func addCloseFrom(_ lowest: Int32, to actions: inout Glibc.posix_spawn_file_actions_t) -> Int32 {
    tb_spawn_file_actions_addclosefrom(&actions, lowest)
}
