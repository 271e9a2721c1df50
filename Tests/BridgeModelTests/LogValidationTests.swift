import Foundation
import Testing
@testable import BridgeModel

@Suite("Log validation")
struct LogValidationTests {
    @Test("stdout and stderr are destinations, not file names", arguments: [("stdout", LogDestination.stdout), ("stderr", .stderr)])
    func standardStreams(text: String, destination: LogDestination) throws {
        let config = try ConfigLoader.parse("[log]\nsessions = \"\(text)\"\n" + minimalConfig, baseDirectory: "/nonexistent")
        #expect(config.log.sessions == destination)
    }

    @Test("a session log path resolves against the base directory and may not exist yet")
    func relativeLogFile() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try FileManager.default.createDirectory(atPath: directory.path + "/log", withIntermediateDirectories: true)
        let config = try ConfigLoader.parse("[log]\nsessions = \"log/sessions.jsonl\"\n" + minimalConfig,
                                            baseDirectory: directory.path)
        #expect(config.log.sessions == .file(ConfigFiles.absoluteBase(directory.path) + "/log/sessions.jsonl"))
    }

    @Test("a session log in a missing directory is refused with the directory")
    func missingLogDirectory() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let text = try #require(message(for: "log.sessions", in: "[log]\nsessions = \"nope/s.jsonl\"\n" + minimalConfig,
                                        baseDirectory: directory.path))
        #expect(text.contains(ConfigFiles.absoluteBase(directory.path) + "/nope does not exist"))
    }

    @Test("an unknown level lists the accepted levels")
    func unknownLevel() {
        #expect(message(for: "log.level", in: "[log]\nlevel = \"verbose\"\n" + minimalConfig) ==
            "\"verbose\" is not a log level; use one of \"trace\", \"debug\", \"info\", \"notice\", \"warning\", \"error\", \"critical\"")
    }
}
