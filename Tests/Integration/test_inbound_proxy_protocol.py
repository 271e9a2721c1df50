"""proxy_protocol on the notify listener: the merchant's server receives a PROXY header carrying the gateway's
address before anything else — v1 `PROXY TCP4 <src> <dst> <src port> <dst port>\\r\\n`, v2 the binary block
(signature, 0x21 PROXY, 0x11 TCP over IPv4, addresses and ports) — then the HTTP bytes, unchanged. Toward a
TLS backend the header precedes the TLS handshake."""

from __future__ import annotations

import socket
import struct

import pytest

from support.inbound import (PROXY_V2_SIGNATURE, ack_for, can_bind, form_body, gateway_connect, gateway_context,
                             http_request, legacy_backend, plain_backend, read_response)


def notify_from(b, ipki, *, source: str | None = None) -> tuple[int, bytes]:
    """One notification; returns the gateway's TCP source port and the body sent."""
    body = form_body(3000)
    with gateway_connect(b.listen, gateway_context(ipki, "TLSv1.2"), source=source) as s:
        port = s.getsockname()[1]
        s.sendall(http_request("/notify", body))
        assert read_response(s).body == ack_for(body)
    return port, body


def delivered_after_header(server, body: bytes):
    conn = server.wait_finished(1)[0]
    assert conn.error is None, conn.error
    assert conn.proxy_header is not None, f"no PROXY header; the backend saw first {conn.first_bytes!r}"
    assert conn.first_bytes.startswith(b"POST /notify HTTP/1.1\r\n"), \
        f"the HTTP request must follow the header directly: {conn.first_bytes!r}"
    assert conn.body == body
    return conn


def test_v1_header_names_the_gateway_and_the_listener(notify_bridge, backend_server, inbound_pki):
    server = backend_server()
    b = notify_bridge(plain_backend(server.address), proxy_protocol="v1")
    client_port, body = notify_from(b, inbound_pki)
    conn = delivered_after_header(server, body)
    expected = f"PROXY TCP4 127.0.0.1 127.0.0.1 {client_port} {b.listen[1]}\r\n".encode()
    assert conn.proxy_header == expected, (conn.proxy_header, expected)
    record = b.wait_record()
    assert record["error"] is None and record["downstream"]["address"] == f"127.0.0.1:{client_port}", record


@pytest.mark.skipif(not can_bind("127.0.0.2"), reason="127.0.0.2 is not a usable source here")
def test_v1_header_carries_the_real_source_address(notify_bridge, backend_server, inbound_pki):
    server = backend_server()
    b = notify_bridge(plain_backend(server.address), proxy_protocol="v1")
    client_port, body = notify_from(b, inbound_pki, source="127.0.0.2")
    conn = delivered_after_header(server, body)
    assert conn.proxy_header == f"PROXY TCP4 127.0.0.2 127.0.0.1 {client_port} {b.listen[1]}\r\n".encode()


def test_v2_header_is_the_binary_block(notify_bridge, backend_server, inbound_pki):
    server = backend_server()
    b = notify_bridge(plain_backend(server.address), proxy_protocol="v2")
    client_port, body = notify_from(b, inbound_pki)
    header = delivered_after_header(server, body).proxy_header
    assert header[:12] == PROXY_V2_SIGNATURE, header[:12]
    assert header[12] == 0x21, f"version 2 / PROXY command expected, got {header[12]:#x}"
    assert header[13] == 0x11, f"TCP over IPv4 expected, got {header[13]:#x}"
    length = struct.unpack("!H", header[14:16])[0]
    assert length >= 12 and len(header) == 16 + length, (length, len(header))
    src, dst = socket.inet_ntoa(header[16:20]), socket.inet_ntoa(header[20:24])
    sport, dport = struct.unpack("!HH", header[24:28])
    assert (src, dst, sport, dport) == ("127.0.0.1", "127.0.0.1", client_port, b.listen[1]), \
        (src, dst, sport, dport)


def test_v1_header_precedes_the_tls_handshake_to_a_legacy_backend(notify_bridge, backend_server, inbound_pki):
    server = backend_server("pin")
    b = notify_bridge(legacy_backend(server.address, inbound_pki, variant="pin"), proxy_protocol="v1")
    client_port, body = notify_from(b, inbound_pki)
    conn = delivered_after_header(server, body)
    assert conn.tls_version == "TLSv1", conn
    assert conn.proxy_header == f"PROXY TCP4 127.0.0.1 127.0.0.1 {client_port} {b.listen[1]}\r\n".encode()


def test_no_header_unless_configured(notify_bridge, backend_server, inbound_pki):
    server = backend_server()
    b = notify_bridge(plain_backend(server.address))
    _, body = notify_from(b, inbound_pki)
    conn = server.wait_finished(1)[0]
    assert conn.proxy_header is None and conn.first_bytes.startswith(b"POST /notify"), conn.first_bytes
