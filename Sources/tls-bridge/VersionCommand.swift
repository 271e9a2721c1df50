import ArgumentParser
import BridgeIO

/// `tls-bridge version`: this build and the C libraries it is running with.
struct VersionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "version",
        abstract: "Print the tls-bridge, libevent and OpenSSL versions."
    )

    func run() {
        print("tls-bridge \(BuildInfo.version)")
        print("libevent \(LibraryVersions.libevent)")
        print(LibraryVersions.openSSL)
    }
}
