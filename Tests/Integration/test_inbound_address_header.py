"""client_address_header: the merchant's web server learns the gateway's address from one header the bridge sets
on every request of a notification connection, never from one the peer wrote (spoofs in any letter case, repeated,
as a list, or as `Forwarded`, are all removed), for a plain and a legacy-TLS backend. Without the key the bytes
pass as before. The notifications come from 127.0.0.2 over TLS 1.2; the backend fixture keeps the raw bytes it
received. (Real Apache/PHP and nginx: test_inbound_client_address_webservers.py.)"""

from __future__ import annotations

import pytest

from support.inbound import (LISTENER, NOTIFY_NAME, gateway_connect, gateway_context, legacy_backend, plain_backend,
                             read_response)

SPOOFS = ("X-Forwarded-For: 203.0.113.9\r\nx-forwarded-for: 203.0.113.9, 10.1.1.1\r\n"
          "Forwarded: for=203.0.113.9\r\nX-REAL-IP: 203.0.113.9\r\n")


def notification(path: str, body: bytes, extra: str = "", close: bool = False) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: {NOTIFY_NAME}\r\n{extra}Content-Length: {len(body)}\r\n"
            + ("Connection: close\r\n" if close else "") + "\r\n").encode() + body


@pytest.mark.parametrize("kind", ["plain", "legacy-ca"])
def test_every_request_carries_the_peers_address_and_never_a_spoofed_one(notify_bridge, backend_server,
                                                                        inbound_pki, kind):
    server = backend_server() if kind == "plain" else backend_server("ca")
    entry = plain_backend(server.address) if kind == "plain" else legacy_backend(server.address, inbound_pki, variant="ca")
    b = notify_bridge(entry, client_address_header="X-Forwarded-For", allow_sources=["127.0.0.2/32"])
    with gateway_connect(b.listen, gateway_context(inbound_pki, "TLSv1.2"), source="127.0.0.2") as s:
        s.sendall(notification("/notify", b"id=1&status=paid", SPOOFS, close=True))
        response = read_response(s)
    assert response.status == 200, response
    conn = server.wait_finished(1)[0]
    head = conn.raw_head.decode()
    assert conn.body == b"id=1&status=paid"
    assert "203.0.113.9" not in head and "forwarded:" not in head.lower() and "x-real-ip" not in head.lower(), head
    assert head.lower().count("x-forwarded-for:") == 1 and "\r\nX-Forwarded-For: 127.0.0.2" in head, head
    record = b.wait_record()
    assert record["listener"] == LISTENER and record["backend"]["client_address_header"] == "X-Forwarded-For", record


def test_without_the_key_the_bytes_pass_unchanged(notify_bridge, backend_server, inbound_pki):
    server = backend_server()
    b = notify_bridge(plain_backend(server.address), allow_sources=["127.0.0.2/32"])
    request = notification("/notify", b"id=2", "X-Forwarded-For: 203.0.113.9\r\n", close=True)
    with gateway_connect(b.listen, gateway_context(inbound_pki, "TLSv1.2"), source="127.0.0.2") as s:
        s.sendall(request)
        assert read_response(s).status == 200
    assert server.wait_finished(1)[0].raw_head == request.split(b"\r\n\r\n", 1)[0]
    assert b.wait_record()["backend"]["client_address_header"] is None


def test_a_malformed_notification_head_is_answered_400(notify_bridge, backend_server, inbound_pki):
    server = backend_server()
    b = notify_bridge(plain_backend(server.address), client_address_header="X-Real-IP")
    with gateway_connect(b.listen, gateway_context(inbound_pki, "TLSv1.2")) as s:
        s.sendall(b"POST /notify HTTP/1.1\r\nHost: x\r\nX-Forwarded-For 203.0.113.9\r\n\r\n")
        response = read_response(s)
    assert response.status == 400, response
    record = b.wait_record()
    assert record["downstream"]["http_status"] == 400 and record["close"] == "downstream_error", record
