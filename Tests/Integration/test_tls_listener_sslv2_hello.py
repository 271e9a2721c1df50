"""An SSLv2-compatible ClientHello (3-byte cipher specs, no extensions), as Java 6u45 sends it, reaches a default
legacy `tls` listener: the bridge answers in TLS 1.0 with AES128-SHA, and the session record's
`downstream.offered` lists what the client offered, in its order (TLS suites by name, SSL 2.0 kinds as such),
with its version and no SNI. That field is the migration evidence for exactly these clients."""

from __future__ import annotations

import struct

import pytest

from support.legacy import assert_no_upstream_connection, check_tls_record, send_raw, tls_listener, tls_records

# Java 6u45's first record as testssl.sh 3.0.8 recorded it (/etc/testssl/client-simulation.txt, handshakebytes).
JAVA_6U45_HELLO = bytes.fromhex(
    "8065010301003c0000002000000401008000000500002f00003300003200000a0700c00000160000130000090600400000150000"
    "120000030200800000080000140000110000ff52173357f48ce6722f974dbb429b9279208d1cf5b9088947c9ba16d9ecbc0fa6")

# Its first 12 specs (what the record keeps): a TLS suite as (code point, OpenSSL name); an OpenSSL build
# without that suite (Debian has no RC4, 3DES or single DES) shows the code point instead. SSL 2.0 kinds as text.
EXPECTED_OFFER = [
    (0x0004, "RC4-MD5"), "SSLv2 0x010080 (SSL_CK_RC4_128_WITH_MD5, SSL 2.0 only)", (0x0005, "RC4-SHA"),
    (0x002F, "AES128-SHA"), (0x0033, "DHE-RSA-AES128-SHA"), (0x0032, "DHE-DSS-AES128-SHA"),
    (0x000A, "DES-CBC3-SHA"), "SSLv2 0x0700C0 (SSL_CK_DES_192_EDE3_CBC_WITH_MD5, SSL 2.0 only)",
    (0x0016, "DHE-RSA-DES-CBC3-SHA"), (0x0013, "DHE-DSS-DES-CBC3-SHA"), (0x0009, "DES-CBC-SHA"),
    "SSLv2 0x060040 (SSL_CK_DES_64_CBC_WITH_MD5, SSL 2.0 only)",
]
AES128_SHA = 0x002F
HANDSHAKE, SERVER_HELLO = 22, 2


def server_hello(reply: bytes) -> tuple[int, int]:
    """(version, cipher suite) of the ServerHello that opens `reply`."""
    records = tls_records(reply)
    assert records and records[0][0] == HANDSHAKE, f"no handshake record in the reply: {reply[:64]!r}"
    body = records[0][1]
    assert body[0] == SERVER_HELLO, f"first handshake message is type {body[0]}, not ServerHello"
    version = struct.unpack("!H", body[4:6])[0]
    session_id_length = body[38]
    suite = struct.unpack("!H", body[39 + session_id_length:41 + session_id_length])[0]
    return version, suite


def matches(entry: str, expected) -> bool:
    if isinstance(expected, str):
        return entry == expected
    code, name = expected
    return entry == name or entry.startswith(f"0x{code:04X} (")


@pytest.fixture
def gw(upstream):
    return upstream(name="gw")


def test_java6_sslv2_format_hello_is_served_and_recorded_with_its_offer(bridge, legacy_pki, gw):
    b = bridge(gw.address, listener=tls_listener(legacy_pki, min_version="TLS1.0"))
    # Read the ServerHello, then hang up: the raw client cannot finish the handshake, and the record of a
    # failed handshake carries `offered` just like a completed one.
    reply = send_raw(b.listen, JAVA_6U45_HELLO, timeout=5, records=1)
    assert server_hello(reply) == (0x0301, AES128_SHA)

    record = b.wait_record()
    check_tls_record(record)
    assert record["phase"] == "downstream_handshake", record
    offered = record["downstream"]["offered"]
    assert offered is not None, record["downstream"]
    assert offered["max_version"] == "TLSv1", offered
    assert offered["sni"] is None and record["downstream"]["sni"] is None, record["downstream"]
    assert len(offered["ciphers"]) == len(EXPECTED_OFFER), offered
    mismatched = [(entry, expected) for entry, expected in zip(offered["ciphers"], EXPECTED_OFFER)
                  if not matches(entry, expected)]
    assert not mismatched, f"offered ciphers differ from Java 6u45's specs: {mismatched}; all: {offered['ciphers']}"
    assert_no_upstream_connection(gw)
