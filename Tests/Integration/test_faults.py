"""Faults mid-stream end in a record naming the phase and the reason, and the bridge serves the next
session normally."""

from __future__ import annotations

import socket
import struct

from support.bridge import recv_exact


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
