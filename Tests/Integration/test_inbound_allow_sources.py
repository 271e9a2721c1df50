"""allow_sources: a peer outside the listed ranges is closed before the TLS handshake (no ServerHello, its client
sees EOF or a reset) and logged (close refused, phase accept, the address in the error); the backend is never
dialled. Inside a range it is served. Works on any listener kind (shown on an outbound plain listener too).
127.0.0.2 is a second loopback source address on Linux."""

from __future__ import annotations

import socket

import pytest

from support.inbound import (ack_for, can_bind, check_inbound_record, form_body, gateway_connect, gateway_context,
                             notify_listener, plain_backend, post)
from support.legacy import client_hello, send_raw, tls_records

needs_127_0_0_2 = pytest.mark.skipif(not can_bind("127.0.0.2"), reason="127.0.0.2 is not a usable source here")


def assert_refused_at_accept(record: dict, source: str) -> None:
    assert record["close"] == "refused" and record["phase"] == "accept", record
    assert source in (record["error"] or ""), f"the error does not name {source}: {record}"
    assert record["bytes"] == {"up": 0, "down": 0}, record
    assert record["downstream"]["protocol"] is None, f"no handshake happened: {record['downstream']}"
    assert record["downstream"]["offered"] is None, f"nothing was read: {record['downstream']}"


def delivered(b, ipki, server, source: str | None = None) -> dict:
    body = form_body(800)
    resp, _ = post(b.listen, gateway_context(ipki, "TLSv1.2"), "/notify", body, source=source)
    assert resp.body == ack_for(body)
    assert server.wait_finished(1)[0].body == body
    record = b.wait_records(1)[-1]
    check_inbound_record(record)
    assert record["error"] is None, record
    return record


@pytest.mark.parametrize("ranges", [["127.0.0.2/32"], ["::1/128"], ["fc00::/7", "10.0.0.0/8"]],
                         ids=["other-loopback-host", "ipv6-only", "private-ranges"])
def test_peer_outside_allow_sources_is_closed_before_the_handshake(notify_bridge, backend_server, inbound_pki,
                                                                   ranges):
    server = backend_server()
    b = notify_bridge(plain_backend(server.address), allow_sources=ranges)
    with pytest.raises((ConnectionError, OSError)) as caught:  # ssl.SSLEOFError / ConnectionResetError
        gateway_connect(b.listen, gateway_context(inbound_pki, "TLSv1.2"))
    assert "certificate" not in str(caught.value).lower(), caught.value
    reply = send_raw(b.listen, client_hello([0xC02F], version=0x0303, sni="notify.merchant.test"), timeout=5)
    assert not tls_records(reply), f"the bridge answered a ClientHello from outside allow_sources: {reply[:40]!r}"
    records = b.wait_records(2)
    for record in records:
        check_inbound_record(record)
        assert_refused_at_accept(record, "127.0.0.1")
    server.assert_not_dialled()


def test_peer_inside_a_wide_range_is_served(notify_bridge, backend_server, inbound_pki):
    server = backend_server()
    b = notify_bridge(plain_backend(server.address), allow_sources=["127.0.0.0/8"])
    delivered(b, inbound_pki, server)


def test_any_matching_entry_admits_the_peer(notify_bridge, backend_server, inbound_pki):
    server = backend_server()
    b = notify_bridge(plain_backend(server.address), allow_sources=["10.0.0.0/8", "::1/128", "127.0.0.1/32"])
    delivered(b, inbound_pki, server)


@needs_127_0_0_2
def test_only_the_listed_source_address_is_served(notify_bridge, backend_server, inbound_pki):
    server = backend_server()
    b = notify_bridge(plain_backend(server.address), allow_sources=["127.0.0.2/32"])
    record = delivered(b, inbound_pki, server, source="127.0.0.2")
    assert record["downstream"]["address"].startswith("127.0.0.2:"), record["downstream"]
    with pytest.raises((ConnectionError, OSError)):
        gateway_connect(b.listen, gateway_context(inbound_pki, "TLSv1.2"))  # from 127.0.0.1
    second = b.wait_records(2)[-1]
    assert_refused_at_accept(second, "127.0.0.1")
    assert len(server.wait_finished(1)) == 1


def test_allow_sources_on_an_outbound_plain_listener(bridge, upstream):
    """Any listener kind: a plain merchant listener refuses a peer outside its ranges, no gateway dialled."""
    gw = upstream(name="gw")
    b = bridge(gw.address, listener={"allow_sources": ["127.0.0.2/32"]})
    with socket.create_connection(b.listen, timeout=10) as s:
        s.settimeout(10)
        try:
            s.sendall(b"ECHO 4\nping")
            data = s.recv(16)
        except ConnectionError:
            data = b""
        assert data == b"", f"a refused merchant got {data!r}"
    record = b.wait_record()
    assert record["close"] == "refused" and record["phase"] == "accept", record
    assert "127.0.0.1" in (record["error"] or ""), record
    assert gw.wait_connections(1, timeout=0.5) == [], "the gateway was dialled for a refused peer"


def test_listener_keeps_serving_after_refusals(notify_bridge, backend_server, inbound_pki):
    """Refusing is per connection: a second listener in the same bridge, open to all, still serves."""
    server = backend_server()
    open_listener = notify_listener(inbound_pki)
    open_listener["name"] = "notify-open"
    b = notify_bridge(plain_backend(server.address),
                      listeners=[notify_listener(inbound_pki, allow_sources=["127.0.0.2/32"]), open_listener])
    for _ in range(3):
        with pytest.raises((ConnectionError, OSError)):
            gateway_connect(b.listen, gateway_context(inbound_pki, "TLSv1.2"))
    host, port = open_listener["listen"].rsplit(":", 1)
    body = form_body(600)
    resp, _ = post((host, int(port)), gateway_context(inbound_pki, "TLSv1.2"), "/notify", body)
    assert resp.body == ack_for(body)
    records = b.wait_records(4)
    assert sum(r["close"] == "refused" for r in records) == 3, records
    assert [r["listener"] for r in records if r["error"] is None] == ["notify-open"], records
