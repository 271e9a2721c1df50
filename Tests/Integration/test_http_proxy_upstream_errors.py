"""accept = "http-proxy", absolute-form, when the gateway side fails: a gateway that only speaks TLS 1.0 is refused
(never downgraded) and the merchant gets 502 whose body says it is a TLS protocol problem; a gateway that accepts
TCP and never answers the handshake gives 504 after handshake_timeout; a closed port gives 502 or 504. Each answer
is the bridge's own (short text/plain, Connection: close) and the record has the status and the reason."""

from __future__ import annotations

import ssl
import time

from support.legacy import SANDBOX
from support.proxy import assert_bridge_error, bridge_answer, check_proxy_record, request_bytes
from support.servers import closed_port


def get(b):
    return bridge_answer(b, request_bytes("GET", f"http://{SANDBOX}/pay?x=1", [("Host", SANDBOX)]), timeout=15)


def test_tls10_only_gateway_gives_502_naming_the_tls_problem(proxy_bridge, upstream):
    legacy_gw = upstream(threaded=True, min_version=ssl.TLSVersion.TLSv1, max_version=ssl.TLSVersion.TLSv1,
                         name="gw")
    b = proxy_bridge(legacy_gw)
    resp, closed = get(b)
    assert_bridge_error(resp, closed, 502)
    text = resp.text.lower()
    assert "tls" in text and ("protocol" in text or "version" in text), f"the 502 body does not say why: {resp.text!r}"
    conns = legacy_gw.wait_finished(1)
    assert len(conns) == 1 and conns[0].tls_version is None, "the bridge completed a TLS 1.0 handshake upstream"
    record = b.wait_record()
    check_proxy_record(record)
    assert record["downstream"]["http_status"] == 502, record
    assert (record["downstream"]["request_host"] or "").lower() == SANDBOX, record
    assert record["upstream"]["name"] == "gw" and record["upstream"]["protocol"] is None, record
    assert record["phase"] == "handshake" and record["error"], record
    assert "protocol" in record["error"].lower() or "version" in record["error"].lower(), record


def test_silent_gateway_gives_504_after_the_handshake_timeout(proxy_bridge, upstream):
    silent = upstream(tls=False, name="gw")
    b = proxy_bridge(silent, limits={"handshake_timeout": "1s"})
    start = time.monotonic()
    resp, closed = get(b)
    elapsed = time.monotonic() - start
    assert_bridge_error(resp, closed, 504)
    assert 0.8 <= elapsed <= 5.0, f"504 after {elapsed:.2f} s with handshake_timeout = 1s"
    assert len(silent.wait_connections(1)) == 1
    record = b.wait_record()
    check_proxy_record(record)
    assert record["downstream"]["http_status"] == 504, record
    assert record["close"] == "handshake_timeout" and record["phase"] == "handshake", record


def test_closed_gateway_port_gives_a_gateway_error(proxy_bridge):
    b = proxy_bridge(f"127.0.0.1:{closed_port()}")
    resp, closed = get(b)
    assert_bridge_error(resp, closed, (502, 504))
    record = b.wait_record()
    check_proxy_record(record)
    assert record["downstream"]["http_status"] == resp.status and record["phase"] == "connect", record


def test_upstream_failure_in_a_connect_tunnel_closes_the_merchants_tls(proxy_bridge, upstream, legacy_pki):
    """After `200 Connection established` the merchant talks TLS to the bridge; a refused gateway then ends that
    session (no HTTP status can be sent inside it) and the record says why."""
    from support.proxy import connect_tunnel, legacy_tunnel_context
    legacy_gw = upstream(threaded=True, min_version=ssl.TLSVersion.TLSv1, max_version=ssl.TLSVersion.TLSv1,
                         name="gw")
    b = proxy_bridge(legacy_gw)
    tls, resp = connect_tunnel(b, f"{SANDBOX}:443", ctx=legacy_tunnel_context(legacy_pki))
    with tls:
        tls.settimeout(10)
        try:
            tls.sendall(request_bytes("GET", "/pay", [("Host", SANDBOX)]))
            data = tls.recv(100)
        except (ssl.SSLError, OSError):
            data = b""
    assert data == b"", f"a refused gateway session delivered {data!r}"
    record = b.wait_record()
    check_proxy_record(record)
    assert record["downstream"]["connect"] == f"{SANDBOX}:443" and record["downstream"]["http_status"] == 200, record
    assert record["phase"] == "handshake" and record["upstream"]["protocol"] is None and record["error"], record
