"""Inbound sessions follow the bridge's limits and lifecycle like outbound ones: a silent gateway is closed
after idle_timeout (and its backend connection with it); on SIGTERM an inbound session still open when
drain_timeout ends gets a `shutdown` record, and the bridge exits 0."""

from __future__ import annotations

import signal
import ssl
import time

from support.inbound import check_inbound_record, gateway_connect, gateway_context, plain_backend


def test_silent_gateway_is_closed_after_the_idle_timeout(notify_bridge, backend_server, inbound_pki):
    server = backend_server()
    b = notify_bridge(plain_backend(server.address), limits={"idle_timeout": "1s"})
    with gateway_connect(b.listen, gateway_context(inbound_pki, "TLSv1.2")) as s:
        s.settimeout(10)
        started = time.monotonic()
        try:
            data = s.recv(64)
        except (ssl.SSLEOFError, ssl.SSLZeroReturnError, ConnectionResetError):
            data = b""
        waited = time.monotonic() - started
    assert data == b"", data
    assert 0.7 <= waited <= 4.0, f"closed after {waited:.2f} s, expected ~1 s"
    record = b.wait_record()
    check_inbound_record(record)
    assert record["close"] == "idle_timeout", record
    conns = server.wait_finished(1, timeout=5)
    assert len(conns) == 1 and conns[0].finished.is_set(), "the backend connection was left open"
    assert not conns[0].delivered, conns[0]


def test_sigterm_ends_an_open_inbound_session_with_a_shutdown_record(notify_bridge, backend_server, inbound_pki):
    server = backend_server()
    b = notify_bridge(plain_backend(server.address), limits={"drain_timeout": "1s"})
    with gateway_connect(b.listen, gateway_context(inbound_pki, "TLSv1.2")) as s:
        s.sendall(b"POST /notify HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\npartial")  # incomplete
        deadline = time.monotonic() + 5
        while not (server.connections and server.connections[0].first_bytes) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert server.connections and server.connections[0].delivered, "the partial request never arrived"
        assert b.stop(signal.SIGTERM, timeout=10) == 0, b.stderr()[-2000:]
    record = b.wait_record()
    check_inbound_record(record)
    assert record["close"] == "shutdown", record
    assert "drain_timeout" in (record["error"] or ""), record
