"""The admin endpoint: /healthz (shallow and deep) and /metrics in Prometheus text format, whose
counters match the session records of the same run."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from support.bridge import free_port, recv_exact, wait_closed


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=15) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def admin_bridge(bridge, upstream_address):
    port = free_port()
    b = bridge(upstream_address, start=False)
    b.config["admin"] = {"listen": f"127.0.0.1:{port}"}
    b.start()
    return b, port


def test_metrics_parse_and_match_the_session_records(upstream, bridge):
    server = upstream()
    b, port = admin_bridge(bridge, server.address)
    for payload in (b"one", b"three"):
        with b.connect() as s:
            s.sendall(b"ECHO %d\n" % len(payload) + payload)
            assert recv_exact(s, len(payload)) == payload
    records = b.wait_records(2)
    status, text = get(port, "/metrics")
    assert status == 200
    families = {family.name: family for family in text_string_to_metric_families(text)}
    sessions = {tuple(sorted(sample.labels.items())): sample.value
                for sample in families["tls_bridge_sessions"].samples if sample.name == "tls_bridge_sessions_total"}
    expected: dict = {}
    for record in records:
        key = tuple(sorted({"listener": record["listener"], "downstream_protocol": record["downstream"]["protocol"],
                            "result": "ok" if record["error"] is None else record["close"]}.items()))
        expected[key] = expected.get(key, 0) + 1
    assert sessions == expected
    carried = {sample.labels["direction"]: sample.value for sample in families["tls_bridge_bytes"].samples}
    assert carried == {"up": sum(r["bytes"]["up"] for r in records), "down": sum(r["bytes"]["down"] for r in records)}
    handshakes = [s for s in families["tls_bridge_upstream_handshake_seconds"].samples if s.name.endswith("_count")]
    assert handshakes[0].value == 2
    active = families["tls_bridge_sessions_active"].samples[0].value
    assert active == 0


def test_healthz_is_ok_and_deep_healthz_reports_an_upstream_that_is_down(upstream, bridge):
    from support.servers import closed_port
    server = upstream()
    b, port = admin_bridge(bridge, server.address)
    assert get(port, "/healthz") == (200, "ok\n")
    status, body = get(port, "/healthz?deep=1")
    assert status == 200 and "answered a TLS handshake" in body, body

    down, down_port = admin_bridge(bridge, f"127.0.0.1:{closed_port()}")
    status, body = get(down_port, "/healthz?deep=1")
    assert status == 503 and "gw" in body and "refused" in body.lower(), body
    assert get(down_port, "/nope")[0] == 404


def test_a_failed_upstream_handshake_is_counted_by_reason(upstream, bridge):
    import ssl
    legacy = upstream(min_version=ssl.TLSVersion.TLSv1, max_version=ssl.TLSVersion.TLSv1, threaded=True)
    b, port = admin_bridge(bridge, legacy.address)
    with b.connect() as s:
        s.sendall(b"ECHO 4\nping")
        data, _ = wait_closed(s, 10)
        assert data == b""
    b.wait_record()
    _, text = get(port, "/metrics")
    failures = [s for f in text_string_to_metric_families(text) if f.name == "tls_bridge_upstream_handshake_failures"
                for s in f.samples]
    assert [(s.labels, s.value) for s in failures if s.value] == [({"upstream": "gw", "reason": "protocol_version"}, 1.0)], failures
    # every reason of every configured upstream is there from the start, at 0, so that an alert on
    # increase() sees the first failure of each
    assert {s.labels["reason"] for s in failures} == {"certificate_verify", "closed", "handshake_failure", "other",
                                                      "protocol_version", "timeout"}, failures


def test_a_public_admin_address_needs_the_unsafe_flag(cli, pki, tmp_path):
    from support.bridge import base_config, to_toml
    cfg = base_config(pki, tmp_path, "127.0.0.1:4433")
    cfg["admin"] = {"listen": "0.0.0.0:9180"}
    path = tmp_path / "admin.toml"
    path.write_text(to_toml(cfg))
    result = cli("check", "--config", str(path))
    assert result.returncode != 0 and "admin.listen" in result.stderr, result.stderr


def session_counts(text: str) -> dict:
    families = {family.name: family for family in text_string_to_metric_families(text)}
    return {tuple(sorted(sample.labels.items())): sample.value
            for sample in families["tls_bridge_sessions"].samples if sample.name == "tls_bridge_sessions_total"}


def expected_counts(records: list[dict]) -> dict:
    expected: dict = {}
    for record in records:
        key = tuple(sorted({"listener": record["listener"], "downstream_protocol": record["downstream"]["protocol"],
                            "result": "ok" if record["error"] is None else record["close"]}.items()))
        expected[key] = expected.get(key, 0) + 1
    return expected


def test_connections_refused_at_accept_are_counted_with_their_close_reason(upstream, bridge):
    """max_sessions and allow_sources refusals never become sessions, but /metrics counts them as
    `result="limit"` / `result="refused"`, the record's close value, as `report` does."""
    server = upstream()
    port = free_port()
    b = bridge(server.address, start=False, workers=1, limits={"max_sessions": 1})
    guarded = dict(b.config["listener"][0], name="guarded", listen=f"127.0.0.1:{free_port()}",
                   allow_sources=["192.0.2.0/24"])
    b.config["listener"].append(guarded)
    b.config["admin"] = {"listen": f"127.0.0.1:{port}"}
    b.start()
    with b.connect() as held:
        held.sendall(b"ECHO\nheld")
        assert recv_exact(held, 4) == b"held"
        with b.connect() as extra:  # past max_sessions = 1
            assert wait_closed(extra, 10)[0] == b""
        guarded_port = int(guarded["listen"].rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", guarded_port), timeout=10) as outsider:
            assert wait_closed(outsider, 10)[0] == b""
        refusals = b.wait_records(2)
        assert sorted(r["close"] for r in refusals) == ["limit", "refused"], refusals
        counts = session_counts(get(port, "/metrics")[1])
        assert counts == expected_counts(refusals), counts
        assert counts[(("downstream_protocol", "plain"), ("listener", "plain"), ("result", "limit"))] == 1
        assert counts[(("downstream_protocol", "plain"), ("listener", "guarded"), ("result", "refused"))] == 1
    records = b.wait_records(3)
    assert session_counts(get(port, "/metrics")[1]) == expected_counts(records)
