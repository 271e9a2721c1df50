import Testing
@testable import BridgeModel

@Suite("Limits validation")
struct LimitsValidationTests {
    static func limits(_ line: String) -> String { "[limits]\n\(line)\n" + minimalConfig }

    @Test("durations that do not parse say how to write one", arguments: ["connect_timeout", "handshake_timeout", "idle_timeout"])
    func malformedDuration(key: String) {
        #expect(message(for: "limits.\(key)", in: Self.limits("\(key) = \"ten seconds\"")) ==
            "\"ten seconds\" is not a duration; write a number and a unit: \"500ms\", \"10s\", \"1.5s\", \"5m\", \"1h\"")
    }

    @Test("zero durations are refused", arguments: ["0s", "0ms", "0.0h"])
    func zeroDuration(text: String) {
        #expect(message(for: "limits.idle_timeout", in: Self.limits("idle_timeout = \"\(text)\"")) == "must be greater than zero")
    }

    @Test("max_sessions must be at least 1", arguments: [0, -1])
    func maxSessions(value: Int) {
        #expect(message(for: "limits.max_sessions", in: Self.limits("max_sessions = \(value)")) == "\(value) is less than 1")
    }

    @Test("buffer_size accepts bytes and binary units", arguments: [
        ("16384", 16384), ("\"64KiB\"", 65536), ("\"1MiB\"", 1_048_576), ("\"64MiB\"", 67_108_864), ("\"20000\"", 20000),
    ])
    func bufferSizeAccepted(value: String, bytes: Int) throws {
        let config = try ConfigLoader.parse(Self.limits("buffer_size = \(value)"), baseDirectory: nil)
        #expect(config.limits.bufferSize == bytes)
    }

    @Test("buffer_size outside 16 KiB...64 MiB is refused with the range", arguments: ["16383", "\"65MiB\"", "0", "-1"])
    func bufferSizeOutOfRange(value: String) {
        #expect(message(for: "limits.buffer_size", in: Self.limits("buffer_size = \(value)"))?
            .hasSuffix("is outside 16 KiB...64 MiB") == true)
    }

    @Test("decimal and unknown size units are refused", arguments: ["\"64KB\"", "\"1MB\"", "\"1.5MiB\"", "\"64 KiB\"", "\"lots\""])
    func bufferSizeUnits(value: String) {
        #expect(message(for: "limits.buffer_size", in: Self.limits("buffer_size = \(value)"))?.contains("KiB/MiB") == true)
    }
}
