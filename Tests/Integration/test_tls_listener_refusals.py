"""A failed downstream handshake on an accept = "tls" listener is logged with what the client offered and a
plain-language hint, never opens a gateway connection, and leaves the listener serving: a TLS 1.0 client below
the default floor, a NULL-cipher-only client, a 3DES-only client (hand-built ClientHello; Java when present),
an SSLv3-only client, plain HTTP sent to a TLS port, a client that never finishes its handshake."""

from __future__ import annotations

import socket
import time

import pytest

from support.bridge import wait_closed
from support.legacy import (LEGACY_CIPHERS, SANDBOX, alerts, assert_no_upstream_connection, check_tls_record,
                            client_context, client_hello, contains, echo_over, java_available, java_client,
                            offered_names, record_text, s_client, send_raw, tls_connect, tls_listener, tls_records)

TLS_RSA_WITH_3DES_EDE_CBC_SHA = 0x000A
FOURTEEN_SUITES = {  # code point → OpenSSL name; the last two are not in the first 12
    0x002F: "AES128-SHA", 0x0035: "AES256-SHA", 0xC013: "ECDHE-RSA-AES128-SHA", 0xC014: "ECDHE-RSA-AES256-SHA",
    0x009C: "AES128-GCM-SHA256", 0x009D: "AES256-GCM-SHA384", 0xC02F: "ECDHE-RSA-AES128-GCM-SHA256",
    0xC030: "ECDHE-RSA-AES256-GCM-SHA384", 0x003C: "AES128-SHA256", 0x003D: "AES256-SHA256",
    0xC027: "ECDHE-RSA-AES128-SHA256", 0xC028: "ECDHE-RSA-AES256-SHA384", 0x000A: "3DES", 0x0005: "RC4",
}


def failed_record(b, gw) -> dict:
    record = b.wait_record()
    check_tls_record(record)
    assert record["close"] == "downstream_error", record
    assert record["phase"] == "downstream_handshake", record
    assert record["bytes"] == {"up": 0, "down": 0}, record
    assert record["upstream"]["protocol"] is None, record
    assert record["error"], record
    assert_no_upstream_connection(gw)
    return record


def still_serving(b, legacy_pki, version: str = "TLSv1.2") -> None:
    ctx = client_context(version, cafile=legacy_pki.listener_ca,
                         ciphers=LEGACY_CIPHERS if version in ("TLSv1", "TLSv1.1") else None)
    with tls_connect(b, ctx, SANDBOX) as s:
        assert echo_over(s) == b"ping"
    last = b.wait_records(2)[-1]
    assert last["error"] is None and last["downstream"]["protocol"] == version, last


@pytest.fixture
def gw(upstream):
    return upstream(name="gw")


def default_floor_bridge(bridge, legacy_pki, gw):
    """A tls listener without min_version: TLS 1.2 is its floor."""
    return bridge(gw.address, listener=tls_listener(legacy_pki))


def legacy_bridge(bridge, legacy_pki, gw, **keys):
    return bridge(gw.address, listener=tls_listener(legacy_pki, min_version="TLS1.0", **keys))


def test_tls10_client_below_the_default_floor_is_refused_with_a_version_hint(bridge, legacy_pki, gw):
    b = default_floor_bridge(bridge, legacy_pki, gw)
    with pytest.raises((OSError, ConnectionError)):  # ssl.SSLError is an OSError
        tls_connect(b, client_context("TLSv1"), SANDBOX)
    record = failed_record(b, gw)
    offered = record["downstream"]["offered"]
    assert offered is not None and offered["max_version"] == "TLSv1", record["downstream"]
    assert offered["sni"] == SANDBOX, offered
    assert offered["ciphers"], offered
    assert contains(record["hint"], "TLSv1", "min_version"), record["hint"]
    still_serving(b, legacy_pki)


def test_tls11_s_client_below_the_default_floor_gets_a_version_hint(bridge, legacy_pki, gw):
    b = default_floor_bridge(bridge, legacy_pki, gw)
    result = s_client(b.listen[1], "-tls1_1", "-cipher", LEGACY_CIPHERS, "-servername", SANDBOX, quiet=False)
    assert b"protocol version" in result.stdout + result.stderr, (result.stdout + result.stderr)[-1500:]
    record = failed_record(b, gw)
    assert record["downstream"]["offered"]["max_version"] == "TLSv1.1", record["downstream"]
    assert contains(record["hint"], "TLSv1.1", "min_version"), record["hint"]


def test_null_cipher_only_client_is_refused_with_its_offer_logged(bridge, legacy_pki, gw):
    b = legacy_bridge(bridge, legacy_pki, gw)
    with pytest.raises(OSError, match="(?i)handshake failure"):
        tls_connect(b, client_context("TLSv1.2", ciphers="NULL-SHA256@SECLEVEL=0"), SANDBOX)
    record = failed_record(b, gw)
    assert any("NULL-SHA256" in c for c in offered_names(record)), record["downstream"]
    assert record["downstream"]["offered"]["max_version"] == "TLSv1.2", record["downstream"]
    assert record["hint"], f"no hint for a cipher mismatch: {record}"
    still_serving(b, legacy_pki, "TLSv1")


def test_3des_only_client_hello_gets_a_hint_to_use_the_plain_listener(bridge, legacy_pki, gw):
    b = legacy_bridge(bridge, legacy_pki, gw)
    reply = send_raw(b.listen, client_hello([TLS_RSA_WITH_3DES_EDE_CBC_SHA], sni=SANDBOX), timeout=5)
    assert alerts(reply), f"expected a TLS alert, got {reply[:64]!r}"
    assert not any(ctype == 22 for ctype, _ in tls_records(reply)), "no ServerHello for a 3DES-only offer"
    record = failed_record(b, gw)
    offered = record["downstream"]["offered"]
    assert offered["max_version"] == "TLSv1" and offered["sni"] == SANDBOX, offered
    assert any(c.upper().startswith("0X000A") and "3DES" in c for c in offered["ciphers"]), offered
    assert contains(record["hint"], "3DES"), record["hint"]
    assert contains(record["hint"], "plain listener"), record["hint"]
    still_serving(b, legacy_pki)


@pytest.mark.skipif(not java_available(), reason="no java/keytool on PATH: no real 3DES-capable client")
def test_java_3des_only_client_gets_the_same_hint(bridge, legacy_pki, gw, tmp_path):
    b = legacy_bridge(bridge, legacy_pki, gw)
    out = java_client(tmp_path / "java", b.listen[1], SANDBOX, legacy_pki.listener_ca, protocol="TLSv1",
                      cipher_suite="SSL_RSA_WITH_3DES_EDE_CBC_SHA")
    assert "handshake_error" in out, out
    record = failed_record(b, gw)
    assert any("3DES" in c for c in offered_names(record)), record["downstream"]
    assert contains(record["hint"], "3DES") and contains(record["hint"], "plain listener"), record["hint"]


def test_sslv3_only_client_is_refused_and_the_listener_keeps_serving(bridge, legacy_pki, gw):
    b = legacy_bridge(bridge, legacy_pki, gw)
    reply = send_raw(b.listen, client_hello([0x002F], version=0x0300, record_version=0x0300), timeout=5)
    assert not any(ctype == 22 for ctype, _ in tls_records(reply)), "no ServerHello for SSLv3"
    record = failed_record(b, gw)
    text = record_text(record)
    assert any(contains(text, word) for word in ("SSLv3", "version", "protocol")), record
    still_serving(b, legacy_pki, "TLSv1")


def test_plain_http_sent_to_a_tls_listener_is_logged_helpfully(bridge, legacy_pki, gw):
    b = legacy_bridge(bridge, legacy_pki, gw)
    send_raw(b.listen, b"GET / HTTP/1.0\r\nHost: sandbox.paygent.test\r\n\r\n", timeout=5)
    record = failed_record(b, gw)
    assert contains(record_text(record), "http"), f"the record does not say plain HTTP arrived: {record}"
    assert record["downstream"]["offered"] is None, "no ClientHello was read"
    still_serving(b, legacy_pki)


def test_silent_client_hits_the_handshake_timeout_without_dialling(bridge, legacy_pki, gw):
    b = bridge(gw.address, listener=tls_listener(legacy_pki, min_version="TLS1.0"),
               limits={"handshake_timeout": "1s"})
    with socket.create_connection(b.listen, timeout=10) as s:
        _, waited = wait_closed(s, 10)
    assert 0.8 <= waited <= 3.0, f"closed after {waited:.2f} s, expected ~1 s"
    record = b.wait_record()
    check_tls_record(record)
    assert record["close"] == "handshake_timeout" and record["phase"] == "downstream_handshake", record
    assert record["downstream"]["offered"] is None, record
    assert_no_upstream_connection(gw)


def test_client_stalling_after_its_client_hello_hits_the_handshake_timeout(bridge, legacy_pki, gw):
    b = bridge(gw.address, listener=tls_listener(legacy_pki, min_version="TLS1.0"),
               limits={"handshake_timeout": "1s"})
    started = time.monotonic()
    reply = send_raw(b.listen, client_hello(list(FOURTEEN_SUITES), sni=SANDBOX), timeout=10)
    waited = time.monotonic() - started
    assert tls_records(reply) and tls_records(reply)[0][0] == 22, "the listener should have answered the hello"
    assert 0.8 <= waited <= 3.0, f"closed after {waited:.2f} s, expected ~1 s"
    record = b.wait_record()
    check_tls_record(record)
    assert record["close"] == "handshake_timeout" and record["phase"] == "downstream_handshake", record
    offered = record["downstream"]["offered"]
    assert offered and offered["sni"] == SANDBOX and offered["max_version"] == "TLSv1", record
    # the first 12 suites, in the client's order, by OpenSSL name
    assert offered["ciphers"] == list(FOURTEEN_SUITES.values())[:12], offered["ciphers"]
    assert_no_upstream_connection(gw)


def test_a_server_name_with_a_nul_byte_is_logged_whole_and_escaped(bridge, legacy_pki, gw):
    """OpenSSL refuses an SNI holding a NUL; the record shows every byte of it (escaped), not the part
    before the NUL, which would read as a routed name."""
    b = legacy_bridge(bridge, legacy_pki, gw)
    sent = SANDBOX + "\x00.evil.example\\x"
    reply = send_raw(b.listen, client_hello([0xC013, 0x002F], sni=sent), timeout=5)
    assert alerts(reply), f"expected a TLS alert, got {reply[:64]!r}"
    record = b.wait_record()
    assert record["phase"] == "downstream_handshake" and record["error"], record
    escaped = SANDBOX + "\\x00.evil.example\\\\x"
    assert record["downstream"]["offered"]["sni"] == escaped, record["downstream"]
    assert record["downstream"]["sni"] == escaped, record["downstream"]
    assert_no_upstream_connection(gw)
    still_serving(b, legacy_pki)
