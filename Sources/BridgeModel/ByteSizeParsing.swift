/// Parses a byte count written as plain digits or with a binary unit: `"65536"`, `"64KiB"`, `"1MiB"`.
///
/// Only binary units are accepted: `KB` and `MB` are ambiguous between 1000 and 1024, and a buffer
/// limit that is off by 2% without anyone noticing is worse than an error. Returns `nil` for
/// anything else.
func parseByteSize(_ text: String) -> Int? {
    let units: [(suffix: String, multiplier: Int)] = [("KiB", 1024), ("MiB", 1024 * 1024), ("GiB", 1024 * 1024 * 1024)]
    var digits = Substring(text)
    var multiplier = 1
    if let unit = units.first(where: { text.hasSuffix($0.suffix) }) {
        digits = digits.dropLast(unit.suffix.count)
        multiplier = unit.multiplier
    }
    guard isDecimalDigits(digits), digits.count <= 12, let value = Int(digits) else { return nil }
    return value * multiplier
}
