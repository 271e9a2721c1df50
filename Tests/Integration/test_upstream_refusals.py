"""An upstream that cannot be reached safely is refused, the merchant's connection is closed without data,
and the session record says why (close, phase, verify, error)."""

from __future__ import annotations

import ssl
import time

import pytest

from support.bridge import check_record_shape, recv_exact, wait_closed
from support.certs import GATEWAY_NAME
from support.servers import closed_port


def refused_session(b, *, timeout: float = 10.0) -> tuple[dict, float]:
    """Connect, offer a request, expect the bridge to close without sending anything; return (record, seconds)."""
    with b.connect() as s:
        s.sendall(b"ECHO 4\nping")
        data, waited = wait_closed(s, timeout)
    assert data == b"", f"a refused session must not deliver bytes, got {data[:80]!r}"
    record = b.wait_record()
    check_record_shape(record)
    return record, waited


def assert_no_tls_session(record: dict) -> None:
    assert record["upstream"]["protocol"] is None, record
    assert record["upstream"]["cipher"] is None, record
    assert record["bytes"] == {"up": 0, "down": 0}, record
    assert record["error"], record


def contains(text: str | None, *needles: str) -> bool:
    return text is not None and any(n.lower() in text.lower() for n in needles)


# --- protocol and cipher policy ---------------------------------------------------------------------------------

@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1], ids=["tls1.0", "tls1.1"])
def test_legacy_only_upstream_is_refused_with_protocol_version(upstream, bridge, version):
    server = upstream(min_version=version, max_version=version, threaded=True)
    b = bridge(server.address)
    record, _ = refused_session(b)
    assert_no_tls_session(record)
    assert record["close"] == "upstream_error"
    assert record["phase"] == "handshake"
    assert contains(record["error"], "protocol version"), record["error"]
    conn = server.wait_finished(1)[0]
    assert not conn.handshake_done, "the legacy server must never have completed a handshake"


def test_weak_cipher_only_upstream_is_refused_with_handshake_failure(upstream, bridge):
    server = upstream(max_version=ssl.TLSVersion.TLSv1_2, ciphers="NULL-SHA256@SECLEVEL=0", threaded=True)
    b = bridge(server.address)
    record, _ = refused_session(b)
    assert_no_tls_session(record)
    assert record["close"] == "upstream_error"
    assert record["phase"] == "handshake"
    assert contains(record["error"], "handshake failure"), record["error"]
    assert not server.wait_finished(1)[0].handshake_done


def test_tls12_upstream_is_refused_when_tls13_is_the_floor(upstream, bridge):
    server = upstream(max_version=ssl.TLSVersion.TLSv1_2, threaded=True)
    b = bridge(server.address, upstream={"min_version": "TLS1.3"})
    record, _ = refused_session(b)
    assert_no_tls_session(record)
    assert record["close"] == "upstream_error"
    assert record["phase"] == "handshake"
    assert contains(record["error"], "protocol version"), record["error"]


def test_tls12_upstream_is_accepted_at_the_default_floor(upstream, bridge):
    """Control for the refusals above: the same kind of peer works when policy allows it."""
    server = upstream(max_version=ssl.TLSVersion.TLSv1_2, threaded=True)
    b = bridge(server.address)
    with b.connect() as s:
        s.sendall(b"ECHO 4\nping")
        assert recv_exact(s, 4) == b"ping"
    record = b.wait_record()
    assert record["upstream"]["protocol"] == "TLSv1.2"
    assert record["error"] is None


def test_3des_only_upstream_is_refused(upstream, bridge):
    probe = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        probe.set_ciphers("DES-CBC3-SHA@SECLEVEL=0")
    except ssl.SSLError:
        pytest.skip("this OpenSSL has no 3DES (Debian builds with OPENSSL_NO_WEAK_SSL_CIPHERS): no OpenSSL-based "
                    "peer can offer DES-CBC3-SHA, so a 3DES-only gateway cannot be played here")
    server = upstream(max_version=ssl.TLSVersion.TLSv1_2, ciphers="DES-CBC3-SHA@SECLEVEL=0", threaded=True)
    b = bridge(server.address)
    record, _ = refused_session(b)
    assert_no_tls_session(record)
    assert record["phase"] == "handshake"
    assert contains(record["error"], "handshake failure"), record["error"]


# --- certificate verification ------------------------------------------------------------------------------------

@pytest.mark.parametrize("cert_attr, reason", [
    ("expired_cert", "certificate has expired"),
    ("wrong_name_cert", "hostname mismatch"),
    ("unknown_ca_cert", "unable to get local issuer certificate"),
    ("self_signed_cert", "self-signed certificate"),
], ids=["expired", "wrong-name", "unknown-ca", "self-signed"])
def test_unverifiable_gateway_certificate_is_refused_with_the_verify_reason(upstream, bridge, pki, cert_attr,
                                                                           reason):
    server = upstream(cert=getattr(pki, cert_attr))
    b = bridge(server.address)
    record, _ = refused_session(b)
    assert_no_tls_session(record)
    assert record["close"] == "upstream_error"
    assert record["phase"] == "handshake"
    assert contains(record["upstream"]["verify"], reason), record["upstream"]
    assert contains(record["error"], "certificate verify failed", reason), record["error"]
    conn = server.wait_finished(1)[0]
    assert not conn.handshake_done and conn.command is None, "nothing may reach an unverified gateway"


# --- transport failures -----------------------------------------------------------------------------------------------

def test_silent_upstream_hits_the_handshake_timeout(upstream, bridge):
    server = upstream(tls=False)
    b = bridge(server.address, limits={"handshake_timeout": "1s"})
    record, waited = refused_session(b, timeout=10)
    assert 0.8 <= waited <= 3.0, f"closed after {waited:.2f} s, expected ~1 s"
    assert_no_tls_session(record)
    assert record["close"] == "handshake_timeout"
    assert record["phase"] == "handshake"
    assert contains(record["error"], "timed out", "timeout"), record["error"]
    assert len(server.wait_connections(1)) == 1, "the bridge must have reached the silent server"


def test_closed_port_is_reported_as_refused(bridge):
    port = closed_port()
    b = bridge(f"127.0.0.1:{port}")
    record, waited = refused_session(b)
    assert waited < 3.0
    assert_no_tls_session(record)
    assert record["close"] == "upstream_error"
    assert record["phase"] == "connect"
    assert record["upstream"]["address"] == f"127.0.0.1:{port}"
    assert contains(record["error"], "refused"), record["error"]


def test_unresolvable_gateway_name_is_reported_with_the_host(bridge, dns_stub):
    stub = dns_stub({GATEWAY_NAME: "127.0.0.1"})
    b = bridge("nx.gateway.test:443", upstream={"server_name": None},
               dns={"nameservers": [stub.address], "timeout": "2s"})
    record, waited = refused_session(b)
    assert waited < 5.0
    assert_no_tls_session(record)
    assert record["close"] == "upstream_error"
    assert record["phase"] == "resolve"
    assert contains(record["error"], "nx.gateway.test"), record["error"]
    assert any(name == "nx.gateway.test" for name, _ in stub.queries), stub.queries


def test_dns_that_never_answers_hits_the_connect_timeout(bridge, dns_stub):
    stub = dns_stub({GATEWAY_NAME: "127.0.0.1"}, silent=True)
    b = bridge(f"{GATEWAY_NAME}:443", limits={"connect_timeout": "1s"},
               dns={"nameservers": [stub.address], "timeout": "2s"})
    record, waited = refused_session(b)
    assert 0.8 <= waited <= 3.0, f"closed after {waited:.2f} s, expected ~1 s"
    assert_no_tls_session(record)
    assert record["close"] == "connect_timeout"
    assert record["phase"] == "resolve"
    assert contains(record["error"], "timed out", "timeout"), record["error"]
    assert stub.queries, "the bridge never asked the configured name server"


def test_an_upstream_that_resolves_to_the_bridge_itself_is_refused_not_looped(bridge, pki):
    """The legacy-TLS set-up points the gateway's name at the bridge in the merchant's hosts file; if the
    bridge resolved the same way it would dial itself. It refuses instead, and says why."""
    from support.bridge import free_port
    port = free_port()
    b = bridge(f"127.0.0.1:{port}", listen_port=port)
    record, _ = refused_session(b)
    assert record["close"] == "upstream_error" and record["phase"] == "resolve", record
    assert contains(record["error"], "own listener", "nameservers"), record["error"]
    assert len(b.records()) == 1, "the bridge connected to itself"
