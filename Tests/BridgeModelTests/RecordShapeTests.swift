import BridgeModel
import Foundation
import Testing

/// Every session record has the same keys: an absent value is written as `null`, never left out,
/// so a SIEM parser or a script can rely on the shape; a record from a writer that left keys out
/// still reads.
@Suite("Session record shape")
struct RecordShapeTests {
    private let bare = SessionRecord(time: "2026-12-03T00:00:00.000Z", session: "s1", listener: "plain",
                                     downstream: .init(address: "127.0.0.1:40000", protocol: nil),
                                     upstream: .init(name: nil), phase: "resolve", close: "refused")

    private func object(_ record: SessionRecord) throws -> [String: Any] {
        let data = try JSONEncoder().encode(record)
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    @Test func absentFieldsAreWrittenAsNull() throws {
        let record = try object(bare)
        let downstream = try #require(record["downstream"] as? [String: Any])
        let upstream = try #require(record["upstream"] as? [String: Any])
        #expect(downstream.keys.sorted() == ["address", "cipher", "client_cert", "connect", "http_status", "offered",
                                             "protocol", "request_host", "sni"])
        #expect(upstream.keys.sorted() == ["address", "cipher", "client_address_header", "client_cert", "close_notify", "handshake_ms", "name",
                                           "peer", "peer_issuer", "protocol", "resumed", "server_name", "spare_age_ms", "verify", "via"])
        #expect(downstream["sni"] is NSNull && upstream["name"] is NSNull && record["error"] is NSNull)
        // `prev` is the one key that is absent rather than null: it exists only in chained logs.
        #expect(record["prev"] == nil)
    }

    @Test func presentFieldsKeepTheirValues() throws {
        var record = bare
        record.downstream.offered = .init(maxVersion: "TLSv1", sni: nil, ciphers: ["AES128-SHA"])
        record.upstream.handshakeMs = 12
        let decoded = try JSONDecoder().decode(SessionRecord.self, from: JSONEncoder().encode(record))
        #expect(decoded == record)
        let offered = try #require(try object(record)["downstream"].flatMap { ($0 as? [String: Any])?["offered"] as? [String: Any] })
        #expect(offered["sni"] is NSNull && offered["max_version"] as? String == "TLSv1")
    }

    @Test func aRecordWithoutTheOptionalKeysStillReads() throws {
        let line = #"{"time":"t","session":"s","direction":"outbound","listener":"l","downstream":{"address":"a"},"#
            + #""upstream":{"resumed":false},"bytes":{"up":1,"down":2},"duration_ms":3,"phase":"open","close":"upstream_eof"}"#
        let record = try JSONDecoder().decode(SessionRecord.self, from: Data(line.utf8))
        #expect(record.downstream.sni == nil && record.upstream.name == nil && record.bytes.down == 2)
    }
}
