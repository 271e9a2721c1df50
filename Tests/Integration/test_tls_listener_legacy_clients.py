"""accept = "tls": real TLS 1.0/1.1 merchant clients (Python ssl, openssl s_client, curl) reach a TLS-1.2-only
gateway that requires the merchant's client certificate; 1 MiB arrives intact both ways; the record shows the
legacy protocol downstream and TLS 1.2 upstream. The upstream is dialled only after the downstream handshake.
"""

from __future__ import annotations

import hashlib
import socket
import ssl
import time

import pytest

from support.certs import MERCHANT_CN
from support.legacy import (LEGACY_CIPHERS, SANDBOX, check_tls_record, client_context, duplex_over, echo_over,
                            merchant_upstream, run_tool, s_client, tls_listener)
from support.servers import generated_chunks, generated_digest

MIB = 1024 * 1024


@pytest.fixture
def gateway(upstream):
    """A TLS-1.2-only gateway that requires the merchant's client certificate (asyncio: speaks DUPLEX)."""
    return upstream(client_auth="required", max_version=ssl.TLSVersion.TLSv1_2, name="gw")


def legacy_bridge(bridge, pki, legacy_pki, address, **listener_keys):
    keys = dict(min_version="TLS1.0", routes={SANDBOX: "gw"})
    keys.update(listener_keys)
    return bridge(address, upstream=merchant_upstream(pki), listener=tls_listener(legacy_pki, **keys))


def assert_legacy_session_record(record: dict, *, downstream: str, sni: str | None = SANDBOX) -> None:
    check_tls_record(record)
    assert record["listener"] == "legacy", record
    assert record["error"] is None and record["hint"] is None, record
    assert record["close"] in ("upstream_eof", "downstream_eof"), record
    ds = record["downstream"]
    assert ds["protocol"] == downstream, ds
    assert ds["cipher"], ds
    assert ds["sni"] == sni, ds
    assert ds["client_cert"] is None, ds
    up = record["upstream"]
    assert up["name"] == "gw", up
    assert up["protocol"] == "TLSv1.2", up
    assert f"CN={MERCHANT_CN}" in (up["client_cert"] or ""), up
    # the ClientHello was read, so the offer is recorded for a successful session too
    assert ds["offered"] is not None, f"downstream.offered is null after a read ClientHello: {ds}"
    assert ds["offered"]["max_version"] == downstream and ds["offered"]["sni"] == sni, ds


@pytest.mark.parametrize("version", ["TLSv1", "TLSv1.1"])
def test_python_legacy_client_reaches_a_tls12_gateway_with_the_merchant_certificate(bridge, pki, legacy_pki,
                                                                                     gateway, version):
    b = legacy_bridge(bridge, pki, legacy_pki, gateway.address)
    size, seed = MIB, 11
    with client_context(version, cafile=legacy_pki.listener_ca).wrap_socket(
            socket.create_connection(b.listen, timeout=20), server_hostname=SANDBOX) as s:
        assert s.version() == version
        cipher = s.cipher()[0]
        sent, received, got = duplex_over(s, size, seed)
    conn = gateway.wait_finished(1)[0]
    assert conn.tls_version == "TLSv1.2" and conn.client_cn == MERCHANT_CN, conn
    assert conn.received_digest == sent, "merchant → gateway bytes differ"
    assert got == size and received == conn.sent_digest == generated_digest(seed, size), "gateway → merchant differ"
    record = b.wait_record()
    assert_legacy_session_record(record, downstream=version)
    assert record["downstream"]["cipher"] == cipher, (record["downstream"], cipher)
    assert record["bytes"] == {"up": len(f"DUPLEX {size} {size} {seed}\n") + size, "down": size}, record["bytes"]


@pytest.mark.parametrize("flag, version", [("-tls1", "TLSv1"), ("-tls1_1", "TLSv1.1")])
def test_openssl_s_client_legacy_session_carries_1_mib_both_ways(bridge, pki, legacy_pki, gateway, flag, version):
    b = legacy_bridge(bridge, pki, legacy_pki, gateway.address)
    size, seed = MIB, 12
    payload = b"".join(generated_chunks(seed + 1, size))
    result = s_client(b.listen[1], flag, "-cipher", LEGACY_CIPHERS, "-servername", SANDBOX,
                      "-CAfile", str(legacy_pki.listener_ca), "-verify_return_error",
                      stdin=f"DUPLEX {size} {size} {seed}\n".encode() + payload)
    assert len(result.stdout) == size, (len(result.stdout), result.stderr[-800:])
    assert hashlib.sha256(result.stdout).hexdigest() == generated_digest(seed, size)
    conn = gateway.wait_finished(1)[0]
    assert conn.received_digest == hashlib.sha256(payload).hexdigest()
    assert conn.tls_version == "TLSv1.2" and conn.client_cn == MERCHANT_CN
    assert_legacy_session_record(b.wait_record(), downstream=version)


@pytest.mark.parametrize("flags, version", [(["--tlsv1.0", "--tls-max", "1.0"], "TLSv1"),
                                            (["--tlsv1.1", "--tls-max", "1.1"], "TLSv1.1")], ids=["1.0", "1.1"])
def test_curl_legacy_https_post_reaches_the_gateway(bridge, pki, legacy_pki, upstream, tmp_path, flags, version):
    gateway = upstream(http=True, client_auth="required", max_version=ssl.TLSVersion.TLSv1_2, name="gw")
    b = legacy_bridge(bridge, pki, legacy_pki, gateway.address)
    port = b.listen[1]
    body = tmp_path / "body.bin"
    body.write_bytes(b"".join(generated_chunks(13, MIB)))
    out = tmp_path / "out.bin"
    result = run_tool(["curl", "-sS", "--max-time", "20", *flags, "--ciphers", LEGACY_CIPHERS,
                       "--cacert", str(legacy_pki.listener_ca), "--resolve", f"{SANDBOX}:{port}:127.0.0.1",
                       "-H", "Expect:", "--data-binary", f"@{body}", "-o", str(out), "-w", "%{http_code}",
                       f"https://{SANDBOX}:{port}/echo"], timeout=30)
    assert result.stdout == b"200", (result.stdout, result.stderr)
    assert out.read_bytes() == body.read_bytes(), "the echoed body differs"
    conn = gateway.wait_finished(1)[0]
    assert conn.command == "POST /echo" and conn.received_digest == hashlib.sha256(body.read_bytes()).hexdigest()
    assert conn.tls_version == "TLSv1.2" and conn.client_cn == MERCHANT_CN
    assert_legacy_session_record(b.wait_record(), downstream=version)


@pytest.mark.parametrize("version", ["TLSv1.2", "TLSv1.3"])
def test_modern_clients_are_served_by_a_legacy_listener_too(bridge, pki, legacy_pki, gateway, version):
    b = legacy_bridge(bridge, pki, legacy_pki, gateway.address)
    ctx = client_context(version, cafile=legacy_pki.listener_ca, ciphers=None)
    with ctx.wrap_socket(socket.create_connection(b.listen, timeout=20), server_hostname=SANDBOX) as s:
        assert echo_over(s) == b"ping"
    record = b.wait_record()
    check_tls_record(record)
    assert record["downstream"]["protocol"] == version, record["downstream"]
    assert record["upstream"]["protocol"] == "TLSv1.2" and record["error"] is None, record


@pytest.mark.parametrize("keys, version, expected", [
    ({"ciphers": "AES128-SHA:@SECLEVEL=0"}, "TLSv1", "AES128-SHA"),
    ({"ciphers": "ECDHE-RSA-AES256-SHA:@SECLEVEL=0"}, "TLSv1.1", "ECDHE-RSA-AES256-SHA"),
    ({"ciphersuites": "TLS_AES_128_GCM_SHA256"}, "TLSv1.3", "TLS_AES_128_GCM_SHA256"),
], ids=["tls1.0-aes128-sha", "tls1.1-ecdhe-aes256-sha", "tls1.3-aes128-gcm"])
def test_configured_cipher_lists_are_what_the_listener_negotiates(bridge, pki, legacy_pki, gateway, keys, version,
                                                                  expected):
    b = legacy_bridge(bridge, pki, legacy_pki, gateway.address, **keys)
    ctx = client_context(version, cafile=legacy_pki.listener_ca,
                         ciphers=None if version == "TLSv1.3" else LEGACY_CIPHERS)
    with ctx.wrap_socket(socket.create_connection(b.listen, timeout=20), server_hostname=SANDBOX) as s:
        assert s.cipher()[0] == expected, s.cipher()
        assert echo_over(s) == b"ping"
    record = b.wait_record()
    assert record["downstream"]["cipher"] == expected and record["downstream"]["protocol"] == version, record


def test_max_version_caps_the_listener(bridge, pki, legacy_pki, gateway):
    b = legacy_bridge(bridge, pki, legacy_pki, gateway.address, max_version="TLS1.1")
    ctx = client_context("TLSv1", max_version="TLSv1.3", cafile=legacy_pki.listener_ca)
    with ctx.wrap_socket(socket.create_connection(b.listen, timeout=20), server_hostname=SANDBOX) as s:
        assert s.version() == "TLSv1.1", "a client offering up to TLS 1.3 must be held to max_version"
        assert echo_over(s) == b"ping"
    with pytest.raises(OSError, match="(?i)protocol"):  # the listener answers TLS 1.1, the client refuses it
        client_context("TLSv1.2", cafile=legacy_pki.listener_ca, ciphers=None).wrap_socket(
            socket.create_connection(b.listen, timeout=20), server_hostname=SANDBOX)
    records = b.wait_records(2)
    first = next(r for r in records if r["error"] is None)
    second = next(r for r in records if r is not first)
    assert first["downstream"]["protocol"] == "TLSv1.1" and first["upstream"]["protocol"] == "TLSv1.2", first
    assert second["close"] == "downstream_error" and second["phase"] == "downstream_handshake", second
    assert len(gateway.connections) == 1, "only the accepted session may reach the gateway"


def test_gateway_is_dialled_only_after_the_downstream_handshake(bridge, pki, legacy_pki, gateway):
    b = legacy_bridge(bridge, pki, legacy_pki, gateway.address)
    raw = socket.create_connection(b.listen, timeout=20)
    try:
        time.sleep(0.7)  # TCP accepted, no ClientHello yet
        assert gateway.connections == [], "the bridge dialled the gateway before the merchant's handshake"
        with client_context("TLSv1", cafile=legacy_pki.listener_ca).wrap_socket(raw, server_hostname=SANDBOX) as s:
            assert echo_over(s) == b"ping"
    finally:
        raw.close()
    assert len(gateway.wait_finished(1)) == 1
    record = b.wait_record()
    assert record["downstream"]["protocol"] == "TLSv1" and record["error"] is None, record


def test_plain_listener_records_carry_the_new_keys_as_null(bridge, upstream):
    server = upstream()
    b = bridge(server.address)
    with b.connect() as s:
        s.sendall(b"ECHO 4\nping")
        assert s.recv(4) == b"ping"
    record = b.wait_record()
    check_tls_record(record)
    ds = record["downstream"]
    assert ds["protocol"] == "plain", ds
    assert ds["cipher"] is None and ds["sni"] is None and ds["client_cert"] is None and ds["offered"] is None, ds
    assert record["hint"] is None and record["upstream"]["name"] == "gw", record


def test_tls_listener_on_ipv6_loopback(bridge, pki, legacy_pki, gateway):
    try:
        socket.socket(socket.AF_INET6).close()
        probe = socket.socket(socket.AF_INET6)
        probe.bind(("::1", 0))
        probe.close()
    except OSError:
        pytest.skip("no IPv6 loopback here")
    probe = socket.socket(socket.AF_INET6)
    probe.bind(("::1", 0))
    port = probe.getsockname()[1]
    probe.close()
    b = legacy_bridge(bridge, pki, legacy_pki, gateway.address, listen=f"[::1]:{port}")
    raw = socket.create_connection(("::1", port), timeout=20)
    with client_context("TLSv1", cafile=legacy_pki.listener_ca).wrap_socket(raw, server_hostname=SANDBOX) as s:
        assert echo_over(s) == b"ping"
    record = b.wait_record()
    assert record["downstream"]["address"].startswith("[::1]:"), record["downstream"]
    assert record["downstream"]["protocol"] == "TLSv1" and record["error"] is None, record


@pytest.mark.soak
def test_soak_300_concurrent_tls10_sessions_and_64_mib_each_way(bridge, pki, legacy_pki, gateway):
    from concurrent.futures import ThreadPoolExecutor

    b = legacy_bridge(bridge, pki, legacy_pki, gateway.address)

    def one(i: int) -> bytes:
        ctx = client_context("TLSv1", cafile=legacy_pki.listener_ca)
        with ctx.wrap_socket(socket.create_connection(b.listen, timeout=60), server_hostname=SANDBOX) as s:
            return echo_over(s, b"%06d" % i * 100)

    with ThreadPoolExecutor(max_workers=100) as pool:
        results = list(pool.map(one, range(300), timeout=300))
    assert results == [b"%06d" % i * 100 for i in range(300)]
    size, seed = 64 * MIB, 99
    with client_context("TLSv1", cafile=legacy_pki.listener_ca).wrap_socket(
            socket.create_connection(b.listen, timeout=60), server_hostname=SANDBOX) as s:
        sent, received, got = duplex_over(s, size, seed)
    assert got == size and received == generated_digest(seed, size)
    records = b.wait_records(301, timeout=60)
    assert all(r["error"] is None and r["downstream"]["protocol"] == "TLSv1" for r in records)
    assert any(r["bytes"]["down"] == size for r in records)
    assert gateway.wait_finished(301, timeout=60)[-1].received_digest == sent
