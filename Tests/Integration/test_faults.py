"""Faults mid-stream end in a record naming the phase and the reason, the other side is closed cleanly (an EOF,
never a hang), and the bridge serves the next session normally: the merchant or the gateway resetting, the gateway
stalling half-way through an answer, a name server answering late. (A name server that never answers:
test_upstream_refusals.py.)"""

from __future__ import annotations

import socket
import struct
import time

from support.bridge import check_record_shape, recv_exact
from support.certs import GATEWAY_NAME
from support.legacy import SANDBOX, check_tls_record, client_context, tls_connect, tls_listener
from support.proxy import check_proxy_record, connect_tunnel, legacy_tunnel_context
from support.servers import generated_chunks


def generated(seed: int, size: int) -> bytes:
    return b"".join(generated_chunks(seed, size))


def merchant_gets_eof(sock, timeout: float = 5.0) -> None:
    """The bridge closed the merchant's side in order: EOF within `timeout`, no reset, no bytes left over."""
    sock.settimeout(timeout)
    try:
        rest = sock.recv(1)
    except socket.timeout:
        raise AssertionError(f"the merchant's connection was still open {timeout} s after the fault") from None
    # A reset toward the merchant raises ConnectionResetError here rather than returning.
    assert rest == b"", f"unexpected bytes after the fault: {rest!r}"


def read_slowly(sock, seconds: float = 20.0) -> bytes:
    """Reads to EOF 8 KiB at a time with a pause after each read: a merchant slow enough that what the bridge has
    for it stays queued inside the bridge. Bounded by `seconds`."""
    received = bytearray()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and (chunk := sock.recv(8192)):
        received += chunk
        time.sleep(0.001)
    return bytes(received)


def echo_once(b, payload: bytes = b"next") -> bytes:
    with b.connect() as s:
        s.sendall(b"ECHO %d\n" % len(payload) + payload)
        return recv_exact(s, len(payload))


def test_a_merchant_that_resets_mid_stream_is_logged_and_the_next_session_works(upstream, bridge):
    server = upstream()
    b = bridge(server.address)
    s = b.connect()
    s.sendall(b"ECHO\nhello")
    assert recv_exact(s, 5) == b"hello"
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close with RST
    s.close()
    record = b.wait_record()
    assert record["phase"] == "open", record
    assert record["close"] == "downstream_error" and "reset" in record["error"].lower(), record
    assert record["bytes"] == {"up": 10, "down": 5}
    conn = server.wait_finished(1, timeout=5)[0]
    assert conn.finished.is_set(), "the gateway connection was left open after the merchant vanished"
    assert echo_once(b) == b"next"


def test_a_tls_merchant_that_resets_mid_stream_is_an_error_not_a_half_close(upstream, bridge, legacy_pki):
    """Through OpenSSL a reset is still a reset: taken for an EOF (a half-close), it would keep the gateway
    connection open for half_close_timeout, waiting to deliver an answer nobody can read."""
    server = upstream()
    b = bridge(server.address, listener=tls_listener(legacy_pki, min_version="TLS1.0"),
               limits={"half_close_timeout": "10s"})
    s = tls_connect(b, client_context("TLSv1", cafile=legacy_pki.listener_ca))
    s.sendall(b"ECHO\nhello")
    assert recv_exact(s, 5) == b"hello"
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()  # no close_notify (Python never sends one on close), and with linger 0 a RST
    record = b.wait_record(timeout=5)
    check_tls_record(record)
    assert record["phase"] == "open", record
    assert record["close"] == "downstream_error" and "reset" in (record["error"] or "").lower(), record
    assert record["bytes"] == {"up": 10, "down": 5}, record
    assert server.wait_finished(1, timeout=5)[0].finished.is_set(), "the gateway connection outlived the merchant"


def test_a_gateway_that_resets_mid_stream_is_logged_and_the_merchant_gets_eof(upstream, bridge):
    server = upstream()
    b = bridge(server.address)
    command = b"RESET 1000 7\n"
    with b.connect() as s:
        s.sendall(command)
        assert recv_exact(s, 1000) == generated(7, 1000)
        server.reset_now.set()
        merchant_gets_eof(s)
    record = b.wait_record()
    check_record_shape(record)
    assert record["phase"] == "open", record
    assert record["close"] == "upstream_error" and "reset" in (record["error"] or "").lower(), record
    assert record["bytes"] == {"up": len(command), "down": 1000}, record
    assert server.wait_finished(1, timeout=5)[0].command == "RESET 1000 7"
    assert echo_once(b) == b"next"
    assert b.wait_records(2)[1]["error"] is None


def test_what_a_gateway_sent_before_resetting_still_reaches_the_merchant(upstream, bridge):
    """The gateway writes a whole answer and resets at once (an abortive close, as some servers and load balancers
    do): the bytes it got out before the reset are authenticated TLS data, delivered before the merchant's EOF, even
    when most of them are still inside the bridge (its buffer, its socket's receive queue) as the reset arrives."""
    server = upstream()
    server.reset_now.set()  # reset as soon as the bridge's kernel has acknowledged every byte
    b = bridge(server.address, limits={"buffer_size": "64KiB"})
    size = 2 * 1024 * 1024
    # A merchant with a small receive window that reads slowly keeps the answer queued inside the bridge.
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
    s.settimeout(10)
    with s:
        s.connect(b.listen)
        s.sendall(b"RESET %d 9\n" % size)
        received = read_slowly(s)
    assert len(received) == size and received == generated(9, size), f"{len(received)} of {size} bytes"
    record = b.wait_record()
    assert record["close"] == "upstream_error" and "reset" in (record["error"] or "").lower(), record
    assert record["bytes"]["down"] == size, record


def test_what_waits_for_a_slow_merchant_inside_a_connect_tunnel_is_delivered_before_the_close(upstream, proxy_bridge,
                                                                                               legacy_pki):
    """Inside a CONNECT tunnel the merchant's TLS is a filter: the bytes waiting for the merchant sit below it, in the
    plain socket's buffer. When the gateway ends its answer, the bridge closes only once those are written."""
    server = upstream(name="gw")
    b = proxy_bridge(server)
    size = 2 * 1024 * 1024
    tls, _ = connect_tunnel(b, f"{SANDBOX}:443", ctx=legacy_tunnel_context(legacy_pki, "TLSv1.2"),
                            receive_buffer=16 * 1024)
    with tls:
        tls.sendall(b"SOURCE %d 5\n" % size)
        received = read_slowly(tls)
    assert len(received) == size and received == generated(5, size), f"{len(received)} of {size} bytes"
    record = b.wait_record()
    assert record["close"] == "upstream_eof" and record["error"] is None, record
    assert record["bytes"]["down"] == size, record


def test_a_gateway_that_stalls_mid_response_is_ended_by_the_idle_timeout(upstream, bridge):
    server = upstream()
    b = bridge(server.address, limits={"idle_timeout": "1s"})
    command = b"STALL 1000 8\n"
    with b.connect() as s:
        s.sendall(command)
        assert recv_exact(s, 1000) == generated(8, 1000)
        started = time.monotonic()
        merchant_gets_eof(s, timeout=10)
        waited = time.monotonic() - started
    assert 0.8 <= waited <= 3.0, f"closed {waited:.2f} s after the gateway went silent, idle_timeout = 1s"
    record = b.wait_record()
    check_record_shape(record)
    assert record["phase"] == "open" and record["close"] == "idle_timeout", record
    assert record["bytes"] == {"up": len(command), "down": 1000}, record
    conn = server.wait_finished(1, timeout=5)[0]
    assert conn.finished.is_set(), "the bridge left the stalled gateway connection open"
    assert conn.command == "STALL 1000 8" and conn.bytes_out == 1000, conn
    assert echo_once(b) == b"next"
    assert b.wait_records(2)[1]["error"] is None


def test_a_name_server_that_answers_late_within_connect_timeout_still_gets_the_session_through(upstream, bridge,
                                                                                               dns_stub):
    server = upstream()
    stub = dns_stub({GATEWAY_NAME: "127.0.0.1"}, delay=1.0)
    # Each evdns attempt waits 3 s, so the 1 s late answer is taken, not a retry; 5 s bound the whole connect.
    b = bridge(f"{GATEWAY_NAME}:{server.port}", upstream={"server_name": None}, limits={"connect_timeout": "5s"},
               dns={"nameservers": [stub.address], "timeout": "3s"})
    started = time.monotonic()
    assert echo_once(b, b"late") == b"late"
    waited = time.monotonic() - started
    assert waited >= 0.9, f"answered after {waited:.2f} s: the stub's 1 s delay was not in the path"
    assert any(name == GATEWAY_NAME for name, _ in stub.queries), stub.queries
    record = b.wait_record()
    check_record_shape(record)
    assert record["error"] is None and record["close"] == "upstream_eof" and record["phase"] == "open", record
    assert record["upstream"]["address"] == server.address and record["upstream"]["verify"] == "ok", record
    assert record["duration_ms"] >= 900, f"the record does not show the wait for the name server: {record}"
    assert server.wait_finished(1)[0].sni == GATEWAY_NAME


def test_a_gateway_reset_inside_a_connect_tunnel_is_logged_and_the_next_tunnel_works(proxy_bridge, upstream,
                                                                                      legacy_pki):
    server = upstream(name="gw")
    b = proxy_bridge(server)
    tls, _ = connect_tunnel(b, f"{SANDBOX}:443", ctx=legacy_tunnel_context(legacy_pki))
    with tls:
        tls.sendall(b"RESET 1000 7\n")
        assert recv_exact(tls, 1000) == generated(7, 1000)
        server.reset_now.set()
        # The merchant's TLS ends without close_notify (the gateway's did too): Python reads that as EOF.
        merchant_gets_eof(tls)
    record = b.wait_record()
    check_proxy_record(record)
    assert record["downstream"]["connect"] == f"{SANDBOX}:443" and record["downstream"]["http_status"] == 200, record
    assert record["phase"] == "open", record
    assert record["close"] == "upstream_error" and "reset" in (record["error"] or "").lower(), record
    assert record["bytes"]["down"] == 1000, record
    tls, _ = connect_tunnel(b, f"{SANDBOX}:443", ctx=legacy_tunnel_context(legacy_pki))
    with tls:
        tls.sendall(b"ECHO 4\nnext")
        assert recv_exact(tls, 4) == b"next"
    second = b.wait_records(2)[1]
    assert second["error"] is None and second["close"] == "upstream_eof", second
