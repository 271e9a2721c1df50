"""What the bridge sends as SNI and verifies, for an IP literal, an explicit server_name and a DNS name."""

from __future__ import annotations

from support.bridge import recv_exact
from support.certs import GATEWAY_NAME


def echo_once(b) -> None:
    with b.connect() as s:
        s.sendall(b"ECHO 2\nok")
        assert recv_exact(s, 2) == b"ok"


def test_ip_literal_upstream_sends_no_sni_and_verifies_the_ip_san(upstream, bridge):
    server = upstream()
    b = bridge(server.address, upstream={"server_name": None})
    echo_once(b)
    conn = server.wait_finished(1)[0]
    assert conn.handshake_done and conn.sni is None
    record = b.wait_record()
    assert record["upstream"]["server_name"] is None
    assert record["upstream"]["verify"] == "ok"


def test_server_name_is_sent_as_sni(upstream, bridge):
    server = upstream()
    b = bridge(server.address)
    echo_once(b)
    assert server.wait_finished(1)[0].sni == GATEWAY_NAME
    assert b.wait_record()["upstream"]["server_name"] == GATEWAY_NAME


def test_gateway_name_is_resolved_through_the_configured_name_server(upstream, bridge, dns_stub):
    server = upstream()
    stub = dns_stub({GATEWAY_NAME: "127.0.0.1"})
    b = bridge(f"{GATEWAY_NAME}:{server.port}", upstream={"server_name": None},
               dns={"nameservers": [stub.address], "timeout": "2s"})
    echo_once(b)
    assert any(name == GATEWAY_NAME for name, _ in stub.queries), stub.queries
    assert server.wait_finished(1)[0].sni == GATEWAY_NAME
    record = b.wait_record()
    assert record["upstream"]["address"] == server.address
    assert record["upstream"]["server_name"] == GATEWAY_NAME
    assert record["upstream"]["verify"] == "ok"


def test_a_dead_first_address_is_skipped_for_the_next_within_connect_timeout(upstream, bridge, dns_stub):
    """The gateway's name resolves to two addresses and nothing listens on the first: the session
    goes through on the second, and the record names the address that answered."""
    server = upstream()
    stub = dns_stub({GATEWAY_NAME: ["127.0.0.3", "127.0.0.1"]})
    b = bridge(f"{GATEWAY_NAME}:{server.port}", upstream={"server_name": None},
               dns={"nameservers": [stub.address], "timeout": "2s"}, limits={"connect_timeout": "5s"})
    echo_once(b)
    record = b.wait_record()
    assert record["error"] is None, record
    assert record["upstream"]["address"] == server.address, record["upstream"]
