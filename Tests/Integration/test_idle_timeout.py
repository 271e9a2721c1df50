"""idle_timeout closes a session with no traffic in either direction, and only such a session."""

from __future__ import annotations

import time

from support.bridge import check_record_shape, recv_exact, wait_closed


def test_silent_session_is_closed_after_the_idle_timeout(upstream, bridge):
    server = upstream()
    b = bridge(server.address, limits={"idle_timeout": "1s"})
    with b.connect() as s:
        data, waited = wait_closed(s, 10)
    assert data == b""
    assert 0.8 <= waited <= 3.0, f"closed after {waited:.2f} s with idle_timeout = 1s"
    record = b.wait_record()
    check_record_shape(record)
    assert record["close"] == "idle_timeout"
    assert record["phase"] == "open"
    assert record["upstream"]["protocol"] in ("TLSv1.2", "TLSv1.3")
    assert record["bytes"] == {"up": 0, "down": 0}
    assert 800 <= record["duration_ms"] <= 3500
    conn = server.wait_finished(1, timeout=5)[0]
    assert conn.finished.is_set(), "the bridge left the upstream connection open after the idle timeout"


def test_session_with_traffic_outlives_the_idle_timeout(upstream, bridge):
    server = upstream()
    b = bridge(server.address, limits={"idle_timeout": "1s"})
    with b.connect() as s:
        s.sendall(b"ECHO\n")
        started = time.monotonic()
        for i in range(10):  # a byte each 0.3 s for 3 s: never 1 s without traffic
            time.sleep(0.3)
            s.sendall(b"%d" % i)
            assert recv_exact(s, 1) == b"%d" % i
        alive_for = time.monotonic() - started
        data, waited = wait_closed(s, 10)
    assert alive_for >= 3.0
    assert data == b""
    assert 0.8 <= waited <= 3.0
    record = b.wait_record()
    assert record["close"] == "idle_timeout"
    assert record["bytes"] == {"up": 15, "down": 10}
    assert record["duration_ms"] >= 3800
