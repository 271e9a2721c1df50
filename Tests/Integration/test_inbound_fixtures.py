"""The peers of the inbound tests behave as those tests assume (no bridge involved).

The legacy backend really is TLS 1.0-only (and needs security level 0 from its client), its certificate is the
one whose SHA-256 the tests pin, the PROXY header reader keeps exactly what was sent and nothing more, the
gateway clients (Python ssl and curl) verify the merchant's public name, 127.0.0.2 is usable as a second
loopback source address.
"""

from __future__ import annotations

import hashlib
import socket
import ssl
import struct

import pytest

from support.inbound import (BACKEND_NAME, MARKER, PROXY_V2_SIGNATURE, HttpBackend, ack_for,
                             can_bind, curl_post, fingerprint, form_body, gateway_context, http_request,
                             notify_like_context, post, read_response)
from support.legacy import LEGACY_CIPHERS
from support.servers import generated_chunks

MIB = 1024 * 1024


def legacy_client(cafile=None, *, seclevel0: bool = True, version=ssl.TLSVersion.TLSv1) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ctx.maximum_version = version
    if seclevel0:
        ctx.set_ciphers(LEGACY_CIPHERS)
    if cafile:
        ctx.load_verify_locations(str(cafile))
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def backend_addr(server) -> tuple[str, int]:
    return ("127.0.0.1", server.port)


def test_form_body_has_the_marker_and_the_size():
    body = form_body(4096)
    assert len(body) == 4096 and MARKER.encode() in body
    assert ack_for(body).endswith(b"marker-seen\n")


def test_plain_backend_acks_a_form_and_echoes_1_mib(backend_server):
    server = backend_server()
    body = form_body(3000)
    with socket.create_connection(backend_addr(server), timeout=10) as s:
        s.sendall(http_request("/notify", body))
        resp = read_response(s)
    assert resp.status == 200 and resp.body == ack_for(body)
    payload = b"".join(generated_chunks(3, MIB))
    with socket.create_connection(backend_addr(server), timeout=10) as s:
        s.sendall(http_request("/echo", payload))
        resp = read_response(s)
    assert hashlib.sha256(resp.body).digest() == hashlib.sha256(payload).digest()
    conns = server.wait_finished(2)
    assert conns[0].request_line == "POST /notify HTTP/1.1" and conns[0].proxy_header is None
    assert conns[0].first_bytes.startswith(b"POST /notify")
    assert conns[1].body_sha256 == hashlib.sha256(payload).hexdigest() and conns[1].error is None


def test_legacy_backend_speaks_tls10_only_with_the_pinned_certificate(backend_server, inbound_pki):
    server = backend_server("pin")
    with legacy_client().wrap_socket(socket.create_connection(backend_addr(server), timeout=10)) as s:
        assert s.version() == "TLSv1"
        der = s.getpeercert(binary_form=True)
        digest = hashlib.sha256(der).hexdigest().upper()
        assert ":".join(digest[i:i + 2] for i in range(0, 64, 2)) == fingerprint(inbound_pki.backend_self_signed)
        assert fingerprint(inbound_pki.backend_self_signed) != fingerprint(inbound_pki.backend_other_self_signed)
        s.sendall(http_request("/notify", b"a=1"))
        assert read_response(s).body == ack_for(b"a=1")
    with pytest.raises(OSError):  # a TLS 1.2 client is refused: the server is TLS 1.0 only
        legacy_client(version=ssl.TLSVersion.TLSv1_2).wrap_socket(
            socket.create_connection(backend_addr(server), timeout=10))
    with pytest.raises(OSError):  # TLS 1.0 at OpenSSL 3's default security level fails
        legacy_client(seclevel0=False).wrap_socket(socket.create_connection(backend_addr(server), timeout=10))
    conns = server.wait_finished(3)
    assert conns[0].tls_version == "TLSv1" and conns[0].body == b"a=1"
    assert conns[1].handshake_error and conns[2].handshake_error, conns


def test_legacy_backend_ca_variant_verifies_as_merchant_local(backend_server, inbound_pki):
    server = backend_server("ca")
    ctx = legacy_client(inbound_pki.backend_ca)
    with ctx.wrap_socket(socket.create_connection(backend_addr(server), timeout=10),
                         server_hostname=BACKEND_NAME) as s:
        assert s.version() == "TLSv1"
    with pytest.raises(ssl.SSLCertVerificationError):
        legacy_client(inbound_pki.backend_ca).wrap_socket(socket.create_connection(backend_addr(server), timeout=10),
                                                          server_hostname="other.local")
    with pytest.raises(ssl.SSLCertVerificationError):  # the pinned self-signed server is not under Backend CA
        pinned = backend_server("pin")
        legacy_client(inbound_pki.backend_ca).wrap_socket(socket.create_connection(backend_addr(pinned), timeout=10),
                                                          server_hostname=BACKEND_NAME)
    assert server.wait_finished(1)[0].sni == BACKEND_NAME


@pytest.mark.parametrize("tls", [None, "pin"])
def test_proxy_v1_header_is_read_exactly_and_the_request_follows(backend_server, tls):
    server = backend_server(tls)
    line = b"PROXY TCP4 127.0.0.1 127.0.0.1 40000 8443\r\n"
    raw = socket.create_connection(backend_addr(server), timeout=10)
    raw.sendall(line)
    s = legacy_client().wrap_socket(raw) if tls else raw
    with s:
        s.sendall(http_request("/notify", b"x=1"))
        assert read_response(s).body == ack_for(b"x=1")
    conn = server.wait_finished(1)[0]
    assert conn.proxy_header == line and conn.first_bytes.startswith(b"POST /notify"), conn


def test_proxy_v2_header_is_read_exactly(backend_server):
    server = backend_server()
    block = (PROXY_V2_SIGNATURE + bytes([0x21, 0x11]) + struct.pack("!H", 12) + socket.inet_aton("127.0.0.1")
             + socket.inet_aton("127.0.0.1") + struct.pack("!HH", 40000, 8443))
    with socket.create_connection(backend_addr(server), timeout=10) as s:
        s.sendall(block + http_request("/notify", b"y=2"))
        assert read_response(s).body == ack_for(b"y=2")
    conn = server.wait_finished(1)[0]
    assert conn.proxy_header == block and conn.request_line.startswith("POST /notify"), conn


def test_gateway_clients_verify_the_merchant_public_name(inbound_pki, tmp_path):
    stand_in = HttpBackend(notify_like_context(inbound_pki), name="notify-stand-in").start()
    try:
        address = ("127.0.0.1", stand_in.port)
        resp, s = post(address, gateway_context(inbound_pki, "TLSv1.2"), "/notify", form_body())
        assert resp.status == 200 and resp.body == ack_for(form_body())
        body = tmp_path / "form.txt"
        body.write_bytes(form_body(5000))
        code, err = curl_post(stand_in.port, inbound_pki, body, tmp_path / "out")
        assert code == "200", err
        assert (tmp_path / "out").read_bytes() == ack_for(form_body(5000))
        with pytest.raises(OSError):  # a TLS 1.0 gateway client is refused by a TLS 1.2+ server
            post(address, gateway_context(inbound_pki, "TLSv1"), "/notify", b"z")
        with pytest.raises(ssl.SSLCertVerificationError):  # the name is checked, not only the chain
            ctx = gateway_context(inbound_pki, "TLSv1.2")
            with socket.create_connection(address, timeout=10) as raw:
                ctx.wrap_socket(raw, server_hostname="wrong.merchant.test")
        conns = stand_in.wait_finished(4)
        assert conns[0].tls_version == "TLSv1.2"
        assert conns[1].tls_version in ("TLSv1.2", "TLSv1.3") and conns[1].request_line == "POST /notify HTTP/1.1"
    finally:
        stand_in.stop()


def test_loopback_127_0_0_2_is_usable_as_a_source_address(backend_server):
    if not can_bind("127.0.0.2"):
        pytest.skip("127.0.0.2 is not bindable here")
    server = backend_server()
    with socket.create_connection(backend_addr(server), timeout=10, source_address=("127.0.0.2", 0)) as s:
        s.sendall(http_request("/notify", b"q"))
        read_response(s)
    assert server.wait_finished(1)[0].peer[0] == "127.0.0.2"
