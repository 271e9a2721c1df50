/// An optional field that JSON output always carries: `null` when absent. Synthesized `Codable`
/// leaves a nil optional out, but the session log, `report --json` and `verify-log --json` promise
/// one shape, every key present, so that scripts and SIEM parsers can rely on it.
@propertyWrapper
public struct NullIfAbsent<Value: Codable>: Codable {
    public var wrappedValue: Value?

    public init(wrappedValue: Value?) {
        self.wrappedValue = wrappedValue
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        wrappedValue = container.decodeNil() ? nil : try container.decode(Value.self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        if let wrappedValue { try container.encode(wrappedValue) } else { try container.encodeNil() }
    }
}

extension NullIfAbsent: Equatable where Value: Equatable {}
extension NullIfAbsent: Sendable where Value: Sendable {}

extension KeyedDecodingContainer {
    /// A missing key reads as absent, as it does for a plain optional (older logs, other writers).
    public func decode<Value>(_ type: NullIfAbsent<Value>.Type, forKey key: Key) throws -> NullIfAbsent<Value> {
        try decodeIfPresent(type, forKey: key) ?? NullIfAbsent(wrappedValue: nil)
    }
}
