"""A slow reader on either side stalls the other side instead of growing the bridge's memory.

Bound: the bridge's RSS may grow at most RSS_BOUND_MIB (32 MiB) over its RSS after a warm-up session, at any
time during a stalled or full-speed transfer. Measured here (2 cores, debug build, buffer_size = "256KiB"):
idle RSS ~29 MiB, growth +0.4-0.5 MiB while stalled and while draining 256 MiB or 1 GiB; 7-13 MiB were in
flight (kernel buffers) during the stall. 32 MiB leaves room for allocator noise and other builds, yet a
bridge that kept reading into memory while its output was blocked would pass it within the first tenth of
a second of the 3 s stall (the transfer runs at ~0.3-0.5 GB/s).
"""

from __future__ import annotations

import hashlib
import threading
import time

import pytest

from support.bridge import recv_exact, recv_line
from support.proxy import SANDBOX, connect_tunnel, legacy_tunnel_context
from support.hostile import RssSampler
from support.servers import generated_chunks, generated_digest

# Every test here bounds the bridge's RSS.
pytestmark = pytest.mark.rss_bound

MiB = 1024 * 1024
RSS_BOUND_MIB = 32
STALL_SECONDS = 3.0
# Bytes that may be in flight while one side is stalled: kernel socket buffers on three sockets (loopback
# autotuning reaches a few MiB each), the bridge's buffer_size per direction, TLS records. Far below the
# transfer size, so a bridge that keeps reading while its output is blocked is caught.
IN_FLIGHT_CAP = 48 * MiB


def warmed_up_rss_kib(b, open_session=None) -> int:
    """RSS after one complete TLS session, so that TLS and allocator setup is not counted as growth."""
    with (open_session or b.connect)() as s:
        s.sendall(b"ECHO 4\nwarm")
        assert recv_exact(s, 4) == b"warm"
        assert s.recv(1) == b""
    b.wait_records(1)
    time.sleep(0.3)
    return b.rss_kib()


def slow_downstream(upstream, bridge, size: int) -> None:
    server = upstream()
    b = bridge(server.address)
    merchant_stops_reading(server, b, size, lambda: b.connect(timeout=60))


def merchant_stops_reading(server, b, size: int, open_session) -> None:
    idle = warmed_up_rss_kib(b, open_session)
    seed = 77
    with RssSampler(b) as rss, open_session() as s:
        s.sendall(f"SOURCE {size} {seed}\n".encode())
        conn = server.wait_connections(2)[1]
        time.sleep(STALL_SECONDS - 1)
        sent_before = conn.bytes_out
        time.sleep(1)
        sent_stalled = conn.bytes_out
        stalled_peak = rss.peak_kib
        assert sent_stalled < IN_FLIGHT_CAP, (
            f"the gateway could send {sent_stalled / MiB:.1f} MiB while the merchant read nothing")
        assert sent_stalled - sent_before < 1 * MiB, "the gateway was still sending after 2 s of stall"

        h = hashlib.sha256()
        received = 0
        started = time.monotonic()
        while received < size:
            data = s.recv(1 << 20)
            if not data:
                break
            h.update(data)
            received += len(data)
        drain_seconds = time.monotonic() - started
    print(f"\nslow downstream: idle {idle / 1024:.1f} MiB, peak while stalled +{(stalled_peak - idle) / 1024:.1f} "
          f"MiB, peak overall +{(rss.peak_kib - idle) / 1024:.1f} MiB, in flight {sent_stalled / MiB:.1f} MiB, "
          f"{size / MiB:.0f} MiB drained in {drain_seconds:.2f} s")
    assert received == size
    assert h.hexdigest() == server.wait_finished(2)[1].sent_digest == generated_digest(seed, size)
    assert stalled_peak - idle < RSS_BOUND_MIB * 1024
    assert rss.peak_kib - idle < RSS_BOUND_MIB * 1024
    record = b.wait_records(2)[1]
    assert record["bytes"]["down"] == size
    assert record["error"] is None


def slow_upstream(upstream, bridge, size: int) -> None:
    server = upstream()
    b = bridge(server.address)
    gateway_stops_reading(server, b, size, lambda: b.connect(timeout=60))


def gateway_stops_reading(server, b, size: int, open_session) -> None:
    idle = warmed_up_rss_kib(b, open_session)
    seed = 78
    header = f"HOLD {size}\n".encode()
    progress = {"sent": 0}
    digest = hashlib.sha256()

    def send(sock):
        try:
            sock.sendall(header)
            for chunk in generated_chunks(seed, size):
                digest.update(chunk)
                sock.sendall(chunk)
                progress["sent"] += len(chunk)
        except BaseException as exc:
            progress["error"] = exc

    with RssSampler(b) as rss, open_session() as s:
        sender = threading.Thread(target=send, args=(s,), daemon=True)
        sender.start()
        time.sleep(STALL_SECONDS - 1)
        sent_before = progress["sent"]
        time.sleep(1)
        sent_stalled = progress["sent"]
        stalled_peak = rss.peak_kib
        assert sender.is_alive(), "the merchant's send did not block although the gateway reads nothing"
        assert sent_stalled < IN_FLIGHT_CAP, (
            f"the merchant could send {sent_stalled / MiB:.1f} MiB while the gateway read nothing")
        assert sent_stalled - sent_before < 1 * MiB, "the merchant was still sending after 2 s of stall"

        started = time.monotonic()
        server.release.set()
        sender.join(timeout=120)
        assert not sender.is_alive(), "the merchant's send did not finish after the gateway started reading"
        assert "error" not in progress, progress.get("error")
        reply = recv_line(s)
        drain_seconds = time.monotonic() - started
    print(f"\nslow upstream: idle {idle / 1024:.1f} MiB, peak while stalled +{(stalled_peak - idle) / 1024:.1f} "
          f"MiB, peak overall +{(rss.peak_kib - idle) / 1024:.1f} MiB, in flight {sent_stalled / MiB:.1f} MiB, "
          f"{size / MiB:.0f} MiB drained in {drain_seconds:.2f} s")
    assert reply == f"OK {digest.hexdigest()}\n".encode()
    assert stalled_peak - idle < RSS_BOUND_MIB * 1024
    assert rss.peak_kib - idle < RSS_BOUND_MIB * 1024
    record = b.wait_records(2)[1]
    assert record["bytes"]["up"] == len(header) + size
    assert record["error"] is None


def test_merchant_that_stops_reading_stalls_the_gateway_not_the_bridge_memory(upstream, bridge):
    slow_downstream(upstream, bridge, 256 * MiB)


def test_gateway_that_stops_reading_blocks_the_merchant_send_not_the_bridge_memory(upstream, bridge):
    slow_upstream(upstream, bridge, 256 * MiB)


def test_merchant_that_stops_reading_inside_a_connect_tunnel_stalls_the_gateway_too(upstream, proxy_bridge, legacy_pki):
    """Inside a CONNECT tunnel the merchant's TLS is a filter over the plain socket: what waits for the merchant is in
    the plain socket's buffer, below the filter, and that is the buffer backpressure must watch."""
    server = upstream()
    b = proxy_bridge(server)
    merchant_stops_reading(server, b, 128 * MiB, lambda: connect_tunnel(
        b, f"{SANDBOX}:443", ctx=legacy_tunnel_context(legacy_pki, "TLSv1.2"), timeout=60)[0])


def test_gateway_that_stops_reading_inside_a_connect_tunnel_blocks_the_merchant_too(upstream, proxy_bridge, legacy_pki):
    server = upstream()
    b = proxy_bridge(server)
    gateway_stops_reading(server, b, 128 * MiB, lambda: connect_tunnel(
        b, f"{SANDBOX}:443", ctx=legacy_tunnel_context(legacy_pki, "TLSv1.2"), timeout=60)[0])


@pytest.mark.soak
def test_merchant_that_stops_reading_during_1_gib_keeps_the_bridge_bounded(upstream, bridge):
    slow_downstream(upstream, bridge, 1024 * MiB)


@pytest.mark.soak
def test_gateway_that_stops_reading_during_1_gib_keeps_the_bridge_bounded(upstream, bridge):
    slow_upstream(upstream, bridge, 1024 * MiB)
