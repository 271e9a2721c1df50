/// Parses a positive duration written as a decimal number and a unit: `"500ms"`, `"10s"`, `"1.5s"`,
/// `"5m"`, `"1h"`.
///
/// Returns `nil` for anything else, including zero, negative values, missing or unknown units,
/// whitespace, and more than nine digits on either side of the point (which keeps the arithmetic
/// exact and far from overflow). Config timeouts and the engine's own defaults share this syntax.
public func parseDuration(_ text: String) -> Duration? {
    guard let duration = parseNonNegativeDuration(text), duration > .zero else { return nil }
    return duration
}

/// The syntax of `parseDuration` without the positivity check, so that the loader can tell
/// "not a duration" apart from "zero".
func parseNonNegativeDuration(_ text: String) -> Duration? {
    let units: [(suffix: String, unit: Duration)] = [
        ("ms", .milliseconds(1)), ("s", .seconds(1)), ("m", .seconds(60)), ("h", .seconds(3600)),
    ]
    // "ms" comes before "m" and "s" so that the longest suffix wins.
    guard let (suffix, unit) = units.first(where: { text.hasSuffix($0.suffix) }) else { return nil }
    let number = text.dropLast(suffix.count)
    let parts = number.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
    guard let wholeText = parts.first, isDecimalDigits(wholeText), wholeText.count <= 9,
          let whole = Int(wholeText) else { return nil }
    var duration = unit * whole
    if parts.count == 2 {
        let fractionText = parts[1]
        guard isDecimalDigits(fractionText), fractionText.count <= 9, let fraction = Int(fractionText) else {
            return nil
        }
        var scale = 1
        for _ in 0..<fractionText.count { scale *= 10 }
        duration += unit * fraction / scale
    }
    return duration
}

/// Non-empty and only ASCII digits (`Int(_:)` alone would also accept a sign).
func isDecimalDigits(_ text: Substring) -> Bool {
    !text.isEmpty && text.allSatisfy { $0.isASCII && $0.isNumber }
}
