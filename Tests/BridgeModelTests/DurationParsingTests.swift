import Testing
@testable import BridgeModel

@Suite("parseDuration")
struct DurationParsingTests {
    @Test("accepts a number with ms, s, m or h", arguments: [
        ("500ms", Duration.milliseconds(500)),
        ("10s", .seconds(10)),
        ("1.5s", .milliseconds(1500)),
        ("5m", .seconds(300)),
        ("1h", .seconds(3600)),
        ("0.25h", .seconds(900)),
        ("300s", .seconds(300)),
        ("0.001s", .milliseconds(1)),
    ])
    func acceptsUnits(text: String, expected: Duration) {
        #expect(parseDuration(text) == expected)
    }

    @Test("rejects zero, signs, missing or unknown units and stray characters", arguments: [
        "0s", "0ms", "0.0s", "-5s", "+5s", "10", "s", "ms", "1.s", ".5s", "1..5s", "10 s", " 10s", "10s ",
        "10sec", "10S", "1d", "1e3s", "ten s", "", "1,5s", "1234567890s",
    ])
    func rejectsMalformed(text: String) {
        #expect(parseDuration(text) == nil)
    }

    @Test("keeps fractions exact instead of rounding through floating point")
    func fractionsAreExact() {
        #expect(parseDuration("0.1s") == .milliseconds(100))
        #expect(parseDuration("2.5ms") == .microseconds(2500))
        #expect(parseDuration("999999999h") == .seconds(999_999_999 * 3600))
    }
}
