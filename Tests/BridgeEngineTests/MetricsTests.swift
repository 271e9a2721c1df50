@testable import BridgeEngine
import BridgeModel
import Testing

/// What `/metrics` exports for the alert rules in deploy/prometheus/: the series an alert waits to
/// see increase exist at 0 from the start, refusals are counted by the limit that refused them,
/// sessions by the merchant's address and the protocol it spoke (bounded), and the gateway's
/// certificate expiry as last verified.
@Suite("Metrics")
struct MetricsTests {
    private func record(_ address: String, spoke: String?, offered: String? = nil, direction: String = "outbound",
                        close: SessionRecord.Close = .downstreamEOF) -> SessionRecord {
        SessionRecord(time: "2026-01-01T00:00:00.000Z", session: "s", direction: direction, listener: "plain",
                      downstream: .init(address: address, protocol: spoke,
                                        offered: offered.map { .init(maxVersion: $0, sni: nil, ciphers: []) }),
                      upstream: .init(name: "gw"), phase: .open, close: close)
    }

    private func lines(_ text: String, _ prefix: String) -> [String] {
        text.split(separator: "\n").map(String.init).filter { $0.hasPrefix(prefix) }
    }

    @Test func aFreshBridgeShowsTheLimitAndEveryWatchedCounterAtZero() {
        let text = Metrics().render(active: 0, maxSessions: 4096, upstreams: ["gw", "backup"], certificates: [])
        #expect(lines(text, "tls_bridge_max_sessions ") == ["tls_bridge_max_sessions 4096"])
        #expect(lines(text, "tls_bridge_limit_refusals_total{") == [
            "tls_bridge_limit_refusals_total{limit=\"max_sessions\"} 0",
            "tls_bridge_limit_refusals_total{limit=\"max_sessions_per_source\"} 0",
        ])
        let failures = lines(text, "tls_bridge_upstream_handshake_failures_total{")
        #expect(failures.count == 12, "six reasons for each of the two upstreams")
        #expect(failures.contains("tls_bridge_upstream_handshake_failures_total{upstream=\"gw\",reason=\"certificate_verify\"} 0"))
        #expect(failures.allSatisfy { $0.hasSuffix(" 0") })
        #expect(text.contains("# TYPE tls_bridge_limit_refusals_total counter\n"))
        #expect(text.contains("# TYPE tls_bridge_downstream_sessions_total counter\n"))
    }

    @Test func aRefusalIsCountedUnderTheLimitThatRefusedIt() {
        let counter = SessionCounter()
        let source: [UInt8] = [10, 0, 0, 5]
        #expect(counter.reserve(limit: 2, source: source, perSourceLimit: 1) == nil)
        let perSource = counter.reserve(limit: 2, source: source, perSourceLimit: 1)
        #expect(perSource == LimitRefusal(limit: .maxSessionsPerSource, value: 1))
        #expect(perSource?.message == "max_sessions_per_source (1) sessions from this address are open")
        #expect(counter.reserve(limit: 2, source: [10, 0, 0, 6], perSourceLimit: 1) == nil)
        let total = counter.reserve(limit: 2, source: [10, 0, 0, 7], perSourceLimit: 1)
        #expect(total == LimitRefusal(limit: .maxSessions, value: 2))
        #expect(total?.message == "max_sessions (2) sessions are open")

        let metrics = Metrics()
        metrics.refused(by: .maxSessions)
        metrics.refused(by: .maxSessions)
        metrics.refused(by: .maxSessionsPerSource)
        let text = metrics.render(active: 2, maxSessions: 2, upstreams: [], certificates: [])
        #expect(lines(text, "tls_bridge_limit_refusals_total{") == [
            "tls_bridge_limit_refusals_total{limit=\"max_sessions\"} 2",
            "tls_bridge_limit_refusals_total{limit=\"max_sessions_per_source\"} 1",
        ])
    }

    @Test func outboundSessionsAreCountedByTheMerchantsAddressAndWhatItSpoke() {
        let metrics = Metrics()
        metrics.observe(record("10.0.0.5:40000", spoke: "TLSv1"))
        metrics.observe(record("10.0.0.5:40001", spoke: "TLSv1"))
        metrics.observe(record("10.0.0.5:40002", spoke: "plain"))
        metrics.observe(record("[2001:db8::1]:443", spoke: "TLSv1.2"))
        // A refused legacy handshake: what it offered, as `report` counts it.
        metrics.observe(record("10.0.0.6:40000", spoke: nil, offered: "TLSv1.1", close: .downstreamError))
        metrics.observe(record("10.0.0.7:40000", spoke: nil, close: .downstreamError))
        // Inbound: the gateway calling the merchant is not a merchant source.
        metrics.observe(record("192.0.2.10:50000", spoke: "TLSv1.3", direction: "inbound"))
        let text = metrics.render(active: 0, maxSessions: 10, upstreams: [], certificates: [])
        #expect(lines(text, "tls_bridge_downstream_sessions_total{") == [
            "tls_bridge_downstream_sessions_total{source=\"10.0.0.5\",downstream_protocol=\"TLSv1\"} 2",
            "tls_bridge_downstream_sessions_total{source=\"10.0.0.5\",downstream_protocol=\"plain\"} 1",
            "tls_bridge_downstream_sessions_total{source=\"10.0.0.6\",downstream_protocol=\"TLSv1.1\"} 1",
            "tls_bridge_downstream_sessions_total{source=\"10.0.0.7\",downstream_protocol=\"none\"} 1",
            "tls_bridge_downstream_sessions_total{source=\"2001:db8::1\",downstream_protocol=\"TLSv1.2\"} 1",
        ])
    }

    @Test func sourcesPastTheLimitAreCountedAsOtherWhileKnownOnesKeepTheirName() {
        let metrics = Metrics()
        for index in 0..<Metrics.sourceLimit {
            metrics.observe(record("10.1.\(index / 256).\(index % 256):1000", spoke: "TLSv1.2"))
        }
        metrics.observe(record("10.9.9.9:1000", spoke: "TLSv1"))
        metrics.observe(record("10.9.9.8:1000", spoke: "TLSv1"))
        metrics.observe(record("10.1.0.0:2000", spoke: "TLSv1"))
        let text = metrics.render(active: 0, maxSessions: 10, upstreams: [], certificates: [])
        let series = lines(text, "tls_bridge_downstream_sessions_total{")
        #expect(series.count == Metrics.sourceLimit + 2)
        #expect(series.contains("tls_bridge_downstream_sessions_total{source=\"other\",downstream_protocol=\"TLSv1\"} 2"))
        #expect(series.contains("tls_bridge_downstream_sessions_total{source=\"10.1.0.0\",downstream_protocol=\"TLSv1\"} 1"))
        #expect(!text.contains("10.9.9.9"))
    }

    @Test func theGatewaysCertificateIsTheOneLastVerified() {
        let metrics = Metrics()
        #expect(metrics.verifiedUpstreamCertificates().isEmpty, "nothing before the first handshake")
        metrics.upstreamVerified("gw", subject: "CN=gateway.test", expiresAt: 1_900_000_000)
        metrics.upstreamVerified("gw", subject: "CN=gateway.test,O=renewed", expiresAt: 1_930_000_000)
        #expect(metrics.verifiedUpstreamCertificates() == ["gw": .init(subject: "CN=gateway.test,O=renewed",
                                                                         expiresAt: 1_930_000_000)])
        let text = metrics.render(active: 0, maxSessions: 10, upstreams: ["gw"],
                                  certificates: [("upstream", "gw", "CN=gateway.test,O=renewed", 1_930_000_000)])
        #expect(lines(text, "tls_bridge_certificate_expiry_timestamp_seconds{") == [
            "tls_bridge_certificate_expiry_timestamp_seconds{kind=\"upstream\",name=\"gw\",subject=\"CN=gateway.test,O=renewed\"} 1930000000",
        ])
    }
}
