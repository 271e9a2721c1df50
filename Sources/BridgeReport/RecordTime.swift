/// A point in time read from a session record's `time` field or from `report --since`.
///
/// Records carry RFC 3339 UTC with milliseconds (`2026-11-27T12:23:36.055Z`); `--since` also takes any
/// RFC 3339 offset or a bare date (`2026-11-27`, midnight UTC). Parsed by hand: Foundation's date
/// formatters are slow enough to dominate a gigabyte of records, and these strings have one grammar.
public struct RecordTime: Comparable, Hashable, Sendable {
    /// Milliseconds since 1970-01-01T00:00:00Z (fractions below a millisecond are dropped).
    public let millisecondsSinceEpoch: Int64

    public init(millisecondsSinceEpoch: Int64) {
        self.millisecondsSinceEpoch = millisecondsSinceEpoch
    }

    public static func < (lhs: RecordTime, rhs: RecordTime) -> Bool {
        lhs.millisecondsSinceEpoch < rhs.millisecondsSinceEpoch
    }

    /// Parses an RFC 3339 date-time (`T`, `t` or a space between date and time; `Z`, `z` or `±HH:MM`),
    /// or, with `allowDateOnly`, a bare `YYYY-MM-DD` meaning 00:00 UTC. `nil` for anything else.
    public static func parse(_ text: String, allowDateOnly: Bool = false) -> RecordTime? {
        var utf8 = Array(text.utf8)[...]
        guard let year = digits(&utf8, 4), take(&utf8, "-"), let month = digits(&utf8, 2), take(&utf8, "-"),
              let day = digits(&utf8, 2), (1...12).contains(month), (1...daysIn(month: month, year: year)).contains(day)
        else { return nil }
        let days = daysSinceEpoch(year: year, month: month, day: day)
        if utf8.isEmpty {
            return allowDateOnly ? RecordTime(millisecondsSinceEpoch: days * 86_400_000) : nil
        }
        guard let separator = utf8.popFirst(), separator == UInt8(ascii: "T") || separator == UInt8(ascii: "t")
                || separator == UInt8(ascii: " "),
              let hour = digits(&utf8, 2), take(&utf8, ":"), let minute = digits(&utf8, 2), take(&utf8, ":"),
              let second = digits(&utf8, 2), hour < 24, minute < 60, second <= 60
        else { return nil }
        var millis: Int64 = 0
        if take(&utf8, ".") {
            var count = 0
            while let byte = utf8.first, byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") {
                if count < 3 { millis = millis * 10 + Int64(byte - UInt8(ascii: "0")) }
                count += 1
                utf8.removeFirst()
            }
            guard count > 0 else { return nil }
            for _ in count..<max(count, 3) { millis *= 10 }
        }
        var offsetMinutes: Int64 = 0
        guard let zone = utf8.popFirst() else { return nil }
        switch zone {
        case UInt8(ascii: "Z"), UInt8(ascii: "z"):
            break
        case UInt8(ascii: "+"), UInt8(ascii: "-"):
            guard let hours = digits(&utf8, 2), take(&utf8, ":"), let minutes = digits(&utf8, 2), hours < 24, minutes < 60
            else { return nil }
            offsetMinutes = (hours * 60 + minutes) * (zone == UInt8(ascii: "+") ? 1 : -1)
        default:
            return nil
        }
        guard utf8.isEmpty else { return nil }
        let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offsetMinutes * 60
        return RecordTime(millisecondsSinceEpoch: seconds * 1000 + millis)
    }

    private static func take(_ bytes: inout ArraySlice<UInt8>, _ character: Unicode.Scalar) -> Bool {
        guard bytes.first == UInt8(ascii: character) else { return false }
        bytes.removeFirst()
        return true
    }

    private static func digits(_ bytes: inout ArraySlice<UInt8>, _ count: Int) -> Int64? {
        guard bytes.count >= count else { return nil }
        var value: Int64 = 0
        for _ in 0..<count {
            let byte = bytes.removeFirst()
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + Int64(byte - UInt8(ascii: "0"))
        }
        return value
    }

    private static func daysIn(month: Int64, year: Int64) -> Int64 {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Days from 1970-01-01 in the proleptic Gregorian calendar (the usual era-based civil-date formula).
    private static func daysSinceEpoch(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }
}
