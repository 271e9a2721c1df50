"""The peers of the tls-listener tests behave as those tests assume (no bridge involved).

If one of these fails, the tls-listener tests that use that peer prove nothing: the legacy clients really
speak TLS 1.0/1.1, the hand-built ClientHello is one a real OpenSSL server parses, the refusal signs the
tests look for (alerts, "no peer certificate available") are what real peers produce.
"""

from __future__ import annotations

import hashlib
import ssl

import pytest

from support.certs import GATEWAY_NAME
from support.legacy import (LEGACY_CIPHERS, SANDBOX, UNROUTED, alerts, client_context, client_hello,
                            java_available, java_client, listener_like_context, run_tool, s_client,
                            send_raw, tls_records)
from support.servers import generated_chunks, generated_digest

TLS10 = dict(min_version=ssl.TLSVersion.TLSv1, max_version=ssl.TLSVersion.TLSv1)


def connect(server, ctx, sni=SANDBOX):
    import socket
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    return ctx.wrap_socket(raw, server_hostname=sni)


def test_hand_built_client_hello_gets_a_tls10_server_hello_from_openssl(upstream, legacy_pki):
    server = upstream(listener_like_context(legacy_pki), threaded=True)
    reply = send_raw(("127.0.0.1", server.port), client_hello([0x002F], sni=SANDBOX), timeout=5,
                     records=1)
    records = tls_records(reply)
    assert records and records[0][0] == 22, reply[:40]
    assert records[0][1][0] == 2, "first handshake message must be a ServerHello"
    assert records[0][1][4:6] == b"\x03\x01", "ServerHello must choose TLS 1.0"
    sid = records[0][1][38]
    assert records[0][1][39 + sid:41 + sid] == b"\x00\x2f", "ServerHello must choose AES128-SHA"
    rest = records[0][1][41 + sid + 1:]  # after the cipher suite and the compression method: extensions
    assert b"\x00\x00\x00\x00" in rest, "the server must acknowledge the server_name extension"


def test_3des_only_client_hello_gets_handshake_failure_from_openssl(upstream, legacy_pki):
    server = upstream(listener_like_context(legacy_pki), threaded=True)
    reply = send_raw(("127.0.0.1", server.port), client_hello([0x000A]), timeout=5)
    assert alerts(reply) == [40], reply
    assert "no shared cipher" in (server.wait_finished(1)[0].handshake_error or "").lower()


def test_sslv3_client_hello_gets_protocol_version_from_openssl(upstream, legacy_pki):
    server = upstream(listener_like_context(legacy_pki), threaded=True)
    reply = send_raw(("127.0.0.1", server.port),
                     client_hello([0x002F], version=0x0300, record_version=0x0300), timeout=5)
    assert alerts(reply) in ([40], [70]), reply
    error = server.wait_finished(1)[0].handshake_error or ""
    assert "unsupported protocol" in error.lower() or "version" in error.lower(), error


@pytest.mark.parametrize("flag, version", [("-tls1", "TLSv1"), ("-tls1_1", "TLSv1.1")])
def test_s_client_speaks_legacy_tls_and_carries_binary_both_ways(upstream, pki, flag, version):
    server = upstream(min_version=ssl.TLSVersion.TLSv1, max_version=ssl.TLSVersion.TLSv1_2)
    size, seed = 256 * 1024 + 3, 5
    payload = b"".join(generated_chunks(seed + 1, size))
    result = s_client(server.port, flag, "-cipher", LEGACY_CIPHERS, "-servername", GATEWAY_NAME,
                      stdin=f"DUPLEX {size} {size} {seed}\n".encode() + payload)
    assert hashlib.sha256(result.stdout).hexdigest() == generated_digest(seed, size), result.stderr[-500:]
    conn = server.wait_finished(1)[0]
    assert conn.tls_version == version
    assert conn.received_digest == hashlib.sha256(payload).hexdigest()


def test_s_client_reports_no_certificate_when_the_server_refuses_the_name(upstream, legacy_pki):
    server = upstream(listener_like_context(legacy_pki, known_names=(SANDBOX,)), threaded=True)
    result = s_client(server.port, "-tls1", "-cipher", LEGACY_CIPHERS, "-servername", UNROUTED, quiet=False)
    out = (result.stdout + result.stderr).decode(errors="replace")
    assert "no peer certificate available" in out
    assert "unrecognized name" in out.lower()


def test_curl_speaks_tls10_to_an_https_echo_server(upstream, pki, tmp_path):
    server = upstream(http=True, **TLS10)
    body = tmp_path / "body.bin"
    body.write_bytes(b"".join(generated_chunks(9, 100_000)))
    out = tmp_path / "out.bin"
    result = run_tool(["curl", "-sS", "--max-time", "15", "--tlsv1.0", "--tls-max", "1.0", "--ciphers",
                       LEGACY_CIPHERS, "--cacert", str(pki.ca), "--resolve", f"{GATEWAY_NAME}:{server.port}:127.0.0.1",
                       "-H", "Expect:", "--data-binary", f"@{body}", "-o", str(out), "-w", "%{http_code}",
                       f"https://{GATEWAY_NAME}:{server.port}/echo"])
    assert result.stdout == b"200", result.stderr
    assert out.read_bytes() == body.read_bytes()
    assert server.wait_finished(1)[0].tls_version == "TLSv1"


def test_python_client_keeps_the_case_of_the_server_name(upstream, legacy_pki):
    server = upstream(listener_like_context(legacy_pki), threaded=True)
    with connect(server, client_context("TLSv1"), sni="MODULE.Paygent.TEST") as s:
        s.sendall(b"ECHO 2\nok")
        assert s.recv(2) == b"ok"
    assert server.wait_finished(1)[0].sni == "MODULE.Paygent.TEST"


def test_python_client_offers_only_null_sha256_and_is_refused_by_a_default_server(upstream, legacy_pki):
    server = upstream(listener_like_context(legacy_pki), threaded=True)
    ctx = client_context("TLSv1.2", ciphers="NULL-SHA256@SECLEVEL=0")
    with pytest.raises(ssl.SSLError, match="(?i)handshake failure"):
        connect(server, ctx)


@pytest.mark.skipif(not java_available(), reason="no java/keytool on PATH")
def test_java_client_speaks_tls10_and_verifies_the_name(upstream, legacy_pki, tmp_path):
    server = upstream(listener_like_context(legacy_pki), threaded=True)
    out = java_client(tmp_path / "java", server.port, SANDBOX, legacy_pki.listener_ca)
    assert out.get("protocol") == "TLSv1" and out.get("echo") == "ping", out
    assert server.wait_finished(1)[0].tls_version == "TLSv1"
