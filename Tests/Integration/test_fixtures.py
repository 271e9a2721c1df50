"""The test peers themselves behave as the bridge tests assume (no bridge involved).

If one of these fails, the bridge tests that use that peer prove nothing.
"""

from __future__ import annotations

import hashlib
import socket
import ssl
import struct

import pytest

from support.certs import GATEWAY_NAME, MERCHANT_CN
from support.servers import generated_chunks, generated_digest


def client_context(pki, *, min_version=ssl.TLSVersion.TLSv1_2, max_version=None, cert=None, key=None,
                   password=None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(str(pki.ca))
    ctx.minimum_version = min_version
    if max_version:
        ctx.maximum_version = max_version
    if cert:
        ctx.load_cert_chain(str(cert), str(key) if key else None, password=password)
    return ctx


def tls_connect(server, ctx, name=GATEWAY_NAME) -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    return ctx.wrap_socket(raw, server_hostname=name)


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1], ids=["tls1.0", "tls1.1"])
def test_legacy_server_refuses_a_tls12_client(upstream, pki, version):
    server = upstream(min_version=version, max_version=version, threaded=True)
    with pytest.raises(ssl.SSLError, match="(?i)protocol version"):
        tls_connect(server, client_context(pki))


def test_legacy_server_speaks_tls10_at_security_level_0(upstream, pki):
    server = upstream(min_version=ssl.TLSVersion.TLSv1, max_version=ssl.TLSVersion.TLSv1)
    ctx = client_context(pki, min_version=ssl.TLSVersion.TLSv1, max_version=ssl.TLSVersion.TLSv1)
    ctx.set_ciphers("DEFAULT@SECLEVEL=0")
    with tls_connect(server, ctx) as s:
        assert s.version() == "TLSv1"


def test_null_cipher_server_refuses_a_default_client(upstream, pki):
    server = upstream(max_version=ssl.TLSVersion.TLSv1_2, ciphers="NULL-SHA256@SECLEVEL=0", threaded=True)
    with pytest.raises(ssl.SSLError, match="(?i)handshake failure"):
        tls_connect(server, client_context(pki))


@pytest.mark.parametrize("cert_attr, reason", [
    ("expired_cert", "certificate has expired"),
    ("wrong_name_cert", "hostname mismatch"),
    ("unknown_ca_cert", "unable to get local issuer certificate"),
    ("self_signed_cert", "self-signed certificate"),
])
def test_bad_gateway_certificates_fail_verification(upstream, pki, cert_attr, reason):
    server = upstream(cert=getattr(pki, cert_attr))
    with pytest.raises(ssl.SSLCertVerificationError) as info:
        tls_connect(server, client_context(pki))
    assert reason in info.value.verify_message.lower()


def test_client_auth_server_rejects_a_client_without_certificate(upstream, pki):
    server = upstream(client_auth="required", max_version=ssl.TLSVersion.TLSv1_2, threaded=True)
    with pytest.raises((ssl.SSLError, ConnectionError)):
        with tls_connect(server, client_context(pki)) as s:
            s.sendall(b"ECHO\n")
            s.recv(1)
    conn = server.wait_finished(1)[0]
    assert conn.handshake_error is not None and conn.client_cn is None


def test_client_auth_server_sees_the_merchant_cn_with_an_encrypted_key(upstream, pki):
    server = upstream(client_auth="required")
    password = pki.client_key_password_file.read_text().strip()
    ctx = client_context(pki, cert=pki.client_cert, key=pki.client_key_encrypted, password=password)
    with tls_connect(server, ctx) as s:
        s.sendall(b"ECHO\nping")
        assert s.recv(4) == b"ping"
    assert server.wait_connections(1)[0].client_cn == MERCHANT_CN


def test_duplex_protocol_round_trips_with_matching_digests(upstream, pki):
    server = upstream()
    size, seed = 3 * 1024 * 1024 + 17, 42
    payload = b"".join(generated_chunks(7, size))
    with tls_connect(server, client_context(pki)) as s:
        s.sendall(f"DUPLEX {size} {size} {seed}\n".encode())
        # An SSLSocket must not be used from two threads at once: send, then read (the server reads and
        # writes concurrently, so this cannot deadlock).
        s.sendall(payload)
        received = hashlib.sha256()
        got = 0
        while True:
            data = s.recv(1 << 20)
            if not data:
                break
            received.update(data)
            got += len(data)
    conn = server.wait_finished(1)[0]
    assert got == size
    assert received.hexdigest() == conn.sent_digest == generated_digest(seed, size)
    assert conn.received_digest == hashlib.sha256(payload).hexdigest()


def _dns_query(port: int, name: str, qtype: int = 1, timeout: float = 1.0) -> bytes | None:
    q = struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
    q += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0" + struct.pack("!HH", qtype, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(q, ("127.0.0.1", port))
        try:
            return s.recv(512)
        except socket.timeout:
            return None


def test_dns_stub_answers_a_records_case_insensitively_and_nxdomain_otherwise(dns_stub):
    stub = dns_stub({GATEWAY_NAME: "127.0.0.1"})
    reply = _dns_query(stub.port, "GaTeWaY.tEsT")
    assert reply is not None and reply[3] & 0x0F == 0 and struct.unpack("!H", reply[6:8])[0] == 1
    assert b"GaTeWaY" in reply and reply.endswith(socket.inet_aton("127.0.0.1"))
    nx = _dns_query(stub.port, "nx.gateway.test")
    assert nx is not None and nx[3] & 0x0F == 3
    assert stub.queries == [("gateway.test", 1), ("nx.gateway.test", 1)]


def test_silent_dns_stub_never_answers(dns_stub):
    stub = dns_stub({GATEWAY_NAME: "127.0.0.1"}, silent=True)
    assert _dns_query(stub.port, GATEWAY_NAME, timeout=0.5) is None
    assert stub.queries == [("gateway.test", 1)]


def test_silent_tcp_server_never_answers_a_client_hello(upstream, pki):
    server = upstream(tls=False)
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    ctx = client_context(pki)
    s = ctx.wrap_socket(raw, server_hostname=GATEWAY_NAME, do_handshake_on_connect=False)
    s.settimeout(0.5)
    with pytest.raises(socket.timeout):
        s.do_handshake()
    s.close()
