import BridgeModel
#if canImport(Glibc)
import Glibc
#endif

/// Becomes `user` (and `group`) after a start as root: every port is bound, every key and
/// certificate read, the session log open. From then on a bug cannot read other secrets or bind
/// other ports. A reload later reads the config and certificates as that user.
enum PrivilegeDrop {
    static func apply(user: String?, group: String?) throws(ConfigErrors) {
        guard let user else { return }
        guard let account = getpwnam(user) else {
            throw ConfigErrors([ConfigError(key: "user", message: "no user \"\(user)\" on this system; create it or fix the name")])
        }
        var gid = account.pointee.pw_gid
        let uid = account.pointee.pw_uid
        if let group {
            guard let entry = getgrnam(group) else {
                throw ConfigErrors([ConfigError(key: "group", message: "no group \"\(group)\" on this system")])
            }
            gid = entry.pointee.gr_gid
        }
        if geteuid() != 0 {
            guard geteuid() == uid else {
                throw ConfigErrors([ConfigError(key: "user", message: "switching to \"\(user)\" needs tls-bridge to start as root;"
                    + " start it as root (it drops to \(user) after binding) or remove user")])
            }
            return
        }
        guard setgroups(0, nil) == 0, setgid(gid) == 0, setuid(uid) == 0 else {
            throw ConfigErrors([ConfigError(key: "user", message: "could not switch to \(user): \(String(cString: strerror(errno)))")])
        }
        // Make sure there is no way back.
        guard setuid(0) != 0 else {
            throw ConfigErrors([ConfigError(key: "user", message: "root privileges could be regained after switching to \(user)")])
        }
    }
}
