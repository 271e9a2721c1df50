import Testing
@testable import BridgeReport

/// `time` fields and `--since` values: RFC 3339 in all its spellings, bare dates only where allowed.
@Suite("Record times")
struct RecordTimeTests {
    @Test func aRecordTimeIsMillisecondsSinceTheEpoch() {
        #expect(RecordTime.parse("1970-01-01T00:00:00Z")?.millisecondsSinceEpoch == 0)
        #expect(RecordTime.parse("2026-11-27T12:23:36.055Z")?.millisecondsSinceEpoch == 1_795_782_216_055)
        #expect(RecordTime.parse("2024-02-29T00:00:00.5Z")?.millisecondsSinceEpoch == 1_709_164_800_500)
        #expect(RecordTime.parse("2024-02-29t00:00:00.123456z")?.millisecondsSinceEpoch == 1_709_164_800_123)
    }

    @Test func anOffsetIsTheSameInstantInUTC() {
        #expect(RecordTime.parse("2026-11-27T21:00:00+09:00") == RecordTime.parse("2026-11-27T12:00:00Z"))
        #expect(RecordTime.parse("2026-11-27T07:00:00-05:00") == RecordTime.parse("2026-11-27T12:00:00Z"))
        #expect(RecordTime.parse("2026-11-27 12:00:00Z") == RecordTime.parse("2026-11-27T12:00:00Z"))
    }

    @Test func aBareDateIsMidnightUTCOnlyWhereAllowed() {
        #expect(RecordTime.parse("2026-11-27", allowDateOnly: true) == RecordTime.parse("2026-11-27T00:00:00Z"))
        #expect(RecordTime.parse("2026-11-27") == nil)
    }

    @Test(arguments: ["", "2026-11-27T12:00:00", "2026-13-01T00:00:00Z", "2026-02-29T00:00:00Z", "2026-11-27T24:00:00Z",
                      "2026-11-27T12:00:00.Z", "2026-11-27T12:00:00+0900", "yesterday", "2026-11-27T12:00:00Z trailing"])
    func somethingElseIsRejected(_ text: String) {
        #expect(RecordTime.parse(text, allowDateOnly: true) == nil)
    }
}
