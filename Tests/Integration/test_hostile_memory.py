"""`[limits] buffer_size` (× the sessions open) bounds the whole bridge process in every session state, whatever a
hostile client sends: a client that writes as fast as the kernel takes bytes and never reads, for PUSH_SECONDS
(1 s) or 256 MiB, must find the bridge has stopped reading (or has answered and closed), never that the bridge
buffered it all.

Bound: with buffer_size = 256 KiB, the bridge's RSS may grow at most RSS_BOUND_MIB (32 MiB) over its RSS once the
hostile session is set up (handshakes done, gateway dialled), sampled every 20 ms during the push. A bridge that
keeps reading into memory grows by hundreds of MiB in that time (measured on the unfixed code: 31.8 MB → 335 MB
in 1.3 s after `Connection: close`). Where the state says the bridge must be waiting for a peer that does not
read (plain, tls, CONNECT, a request body, a silent gateway, a notify backend), the bytes the kernel accepted are
capped too (IN_FLIGHT_CAP): socket buffers on the two or three sockets in the path plus the bridge's buffers.

States, one session each (parametrized): plain listener, tls listener, CONNECT tunnel (gateway never reads);
absolute-form http-proxy (a) inside a request head (431 expected), (b) in a Content-Length body, (c) in a chunked
body (gateway never reads), (d) in a chunked trailer line that never ends (400 and close expected, before 16 KiB
more), (e) pipelined garbage after a `Connection: close` request to a gateway that never answers, (e2) the same
while the gateway's (large) response waits for a client that never reads, (f) pipelined requests to a gateway that
handshakes and never reads, (f2) pipelined requests to a gateway that reads them all and never answers, (g) an
HTTP/1.0 request followed by more bytes; the inbound notify listener with a backend that never reads. Then eight
hostile clients at once on three listeners of one bridge, bounded in total.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest

from support.bridge import base_config, free_port
from support.hostile import (GARBAGE, MiB, PUSH_SECONDS, HoldingServer, RssSampler, push, read_available)
from support.inbound import gateway_connect, gateway_context, plain_backend
from support.legacy import SANDBOX, client_context, merchant_upstream, tls_connect, tls_listener
from support.proxy import (connect_tunnel, legacy_tunnel_context, open_proxy, parse_head, proxy_listener)
from support.servers import server_context

pytestmark = pytest.mark.rss_bound

BUFFER_SIZE = "256KiB"
LIMITS = {"buffer_size": BUFFER_SIZE, "max_sessions": 64, "idle_timeout": "30s", "header_timeout": "30s"}
RSS_BOUND_MIB = 32
# Per extra concurrent hostile session: both directions' input and output buffers of buffer_size.
PER_SESSION_MIB = 1
# Kernel socket buffers (loopback autotuning: a few MiB per socket, three sockets in a path) + buffer_size × 4.
IN_FLIGHT_CAP = 64 * MiB
# How long the answer (and, for refusals, the close) may take after the push: room for a bounded lingering close.
CLOSE_TIMEOUT = 5.0
HEAD = f"Host: {SANDBOX}\r\n"


@pytest.fixture
def holding(pki):
    """Factory: holding(mode="hold"|"sink"|"big", tls=True) starts a gateway (or, tls=False, a plain backend) that
    accepts and then never reads / reads and never answers / answers more than will ever be read."""
    started: list[HoldingServer] = []

    def make(mode: str = "hold", *, tls: bool = True, name: str = "gw") -> HoldingServer:
        server = HoldingServer(server_context(pki) if tls else None, mode=mode, name=name).start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


def wait_gateway_ready(gw: HoldingServer, count: int = 1, timeout: float = 10.0) -> None:
    """Until `count` connections to `gw` finished their TLS handshake (or the plain accept)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        conns = gw.wait_connections(count, timeout=0.05)
        if len(conns) >= count and all(c.tls_version or gw.context is None or c.handshake_error for c in conns):
            bad = [c.handshake_error for c in conns if c.handshake_error]
            assert not bad, f"the gateway's handshake failed: {bad}"
            return
        time.sleep(0.02)
    raise AssertionError(f"{gw.name}: {count} ready connection(s) expected within {timeout} s, "
                         f"have {gw.wait_connections(count, timeout=0)}")


# --- the states -----------------------------------------------------------------------------------------------------
# Each returns (bridge, socket set up for the push, what the push may write, what is expected), expectation one of
#   "stall":  the bridge must stop reading (kernel-accepted bytes capped) and stay within the RSS bound
#   "bound":  only the RSS bound (the bridge may stop reading, or read and discard, or close)
#   (status, "close"): the bridge answers `status` and closes (RSS bound too)
#   (status, "answer"): the bridge answers `status` (RSS bound too)

def proxy_request(b, gw, head: bytes, *, dial: bool = True):
    sock = open_proxy(b, timeout=20)
    sock.sendall(head)
    if dial:
        wait_gateway_ready(gw)
    return sock


def state_plain(env):
    gw = env.holding("hold")
    b = env.bridge(gw.address, limits=LIMITS)
    sock = b.connect(timeout=20)
    sock.sendall(b"HOLD 1000000000000\n")
    wait_gateway_ready(gw)
    return b, sock, {}, "stall"


def state_tls(env):
    gw = env.holding("hold")
    b = env.bridge(gw.address, limits=LIMITS, upstream=merchant_upstream(env.pki),
                   listener=tls_listener(env.legacy_pki, min_version="TLS1.0", routes={SANDBOX: "gw"}))
    sock = tls_connect(b, client_context("TLSv1.2", cafile=env.legacy_pki.listener_ca))
    sock.sendall(b"x")
    wait_gateway_ready(gw)
    return b, sock, {}, "stall"


def state_connect_tunnel(env):
    gw = env.holding("hold")
    b = env.proxy_bridge(gw, limits=LIMITS)
    sock, _ = connect_tunnel(b, f"{SANDBOX}:443", ctx=legacy_tunnel_context(env.legacy_pki, "TLSv1.2"))
    sock.sendall(b"x")
    wait_gateway_ready(gw)
    return b, sock, {}, "stall"


def state_request_head(env):
    gw = env.holding("hold")
    b = env.proxy_bridge(gw, limits=LIMITS)
    sock = proxy_request(b, gw, f"GET http://{SANDBOX}/a HTTP/1.1\r\n{HEAD}X-Endless: ".encode(), dial=False)
    return b, sock, {}, (431, "answer")


def state_content_length_body(env):
    gw = env.holding("hold")
    b = env.proxy_bridge(gw, limits=LIMITS)
    sock = proxy_request(b, gw, f"POST http://{SANDBOX}/b HTTP/1.1\r\n{HEAD}Content-Length: 1000000000000000\r\n"
                                f"\r\n".encode())
    return b, sock, {}, "stall"


def state_chunked_body(env):
    gw = env.holding("hold")
    b = env.proxy_bridge(gw, limits=LIMITS)
    sock = proxy_request(b, gw, f"POST http://{SANDBOX}/c HTTP/1.1\r\n{HEAD}Transfer-Encoding: chunked\r\n\r\n"
                                f"{1 << 40:x}\r\n".encode())
    return b, sock, {}, "stall"


def state_chunked_trailer_line(env):
    gw = env.holding("hold")
    b = env.proxy_bridge(gw, limits=LIMITS)
    sock = proxy_request(b, gw, f"POST http://{SANDBOX}/d HTTP/1.1\r\n{HEAD}Transfer-Encoding: chunked\r\n\r\n"
                                f"5\r\nhello\r\n0\r\nX-Endless-Trailer: ".encode())
    return b, sock, {}, (400, "close")


def state_after_connection_close(env):
    gw = env.holding("hold")
    b = env.proxy_bridge(gw, limits=LIMITS)
    sock = proxy_request(b, gw, f"GET http://{SANDBOX}/e HTTP/1.1\r\n{HEAD}Connection: close\r\n\r\n".encode())
    return b, sock, {}, "bound"


def state_after_connection_close_big_response(env):
    gw = env.holding("big")
    b = env.proxy_bridge(gw, limits=LIMITS)
    sock = proxy_request(b, gw, f"GET http://{SANDBOX}/big HTTP/1.1\r\n{HEAD}Connection: close\r\n\r\n".encode())
    time.sleep(0.5)  # the gateway's answer fills what it can
    return b, sock, {}, "bound"


PIPELINED = f"GET http://{SANDBOX}/p HTTP/1.1\r\n{HEAD}\r\n".encode()


def state_silent_gateway_pipelined(env):
    gw = env.holding("hold")
    b = env.proxy_bridge(gw, limits=LIMITS)
    sock = proxy_request(b, gw, PIPELINED)
    return b, sock, {"repeat_unit": PIPELINED}, "stall"


def state_sink_gateway_pipelined(env):
    gw = env.holding("sink")
    b = env.proxy_bridge(gw, limits=LIMITS)
    sock = proxy_request(b, gw, PIPELINED)
    return b, sock, {"repeat_unit": PIPELINED}, "bound"


def state_http10_then_more(env):
    gw = env.holding("hold")
    b = env.proxy_bridge(gw, limits=LIMITS)
    sock = proxy_request(b, gw, f"GET http://{SANDBOX}/g HTTP/1.0\r\n{HEAD}\r\n".encode())
    return b, sock, {}, "bound"


def state_notify_backend_not_reading(env):
    backend = env.holding("hold", tls=False, name="backend")
    b = env.notify_bridge(plain_backend(backend.address), limits=LIMITS)
    sock = gateway_connect(b.listen, gateway_context(env.inbound_pki))
    sock.sendall(b"POST /notify HTTP/1.1\r\n")
    wait_gateway_ready(backend)
    return b, sock, {}, "stall"


STATES = {
    "plain-listener-gateway-not-reading": state_plain,
    "tls-listener-gateway-not-reading": state_tls,
    "connect-tunnel-gateway-not-reading": state_connect_tunnel,
    "a-absolute-form-request-head": state_request_head,
    "b-content-length-body-gateway-not-reading": state_content_length_body,
    "c-chunked-body-gateway-not-reading": state_chunked_body,
    "d-chunked-trailer-line-never-ends": state_chunked_trailer_line,
    "e-garbage-after-connection-close": state_after_connection_close,
    "e2-garbage-after-connection-close-big-response-unread": state_after_connection_close_big_response,
    "f-pipelined-requests-silent-gateway": state_silent_gateway_pipelined,
    "f2-pipelined-requests-gateway-reads-never-answers": state_sink_gateway_pipelined,
    "g-http10-request-then-more-bytes": state_http10_then_more,
    "notify-listener-backend-not-reading": state_notify_backend_not_reading,
}


class Env:
    def __init__(self, **kw):
        self.__dict__.update(kw)


@pytest.fixture
def env(bridge, proxy_bridge, notify_bridge, holding, pki, legacy_pki, inbound_pki):
    return Env(bridge=bridge, proxy_bridge=proxy_bridge, notify_bridge=notify_bridge, holding=holding, pki=pki,
               legacy_pki=legacy_pki, inbound_pki=inbound_pki)


def answered_status(data: bytes) -> int | None:
    if b"\r\n\r\n" not in data:
        return None
    try:
        return parse_head(data.split(b"\r\n\r\n", 1)[0])[1]
    except (AssertionError, ValueError, IndexError):
        return None


@pytest.mark.parametrize("state", list(STATES), ids=list(STATES))
def test_hostile_client_that_never_reads_cannot_grow_the_bridge(env, state):
    b, sock, push_kwargs, expected = STATES[state](env)
    with sock:
        time.sleep(0.3)
        idle = b.rss_kib()
        with RssSampler(b) as rss:
            result = push(sock, **push_kwargs)
            time.sleep(0.2)  # what the bridge took in its last read is counted too
        growth_mib = (rss.peak_kib - idle) / 1024
        answer, how = read_available(sock, timeout=CLOSE_TIMEOUT if isinstance(expected, tuple) else 0.2)
    print(f"\n{state}: idle {idle / 1024:.1f} MiB, peak +{growth_mib:.1f} MiB; push: {result.describe()}; "
          f"then read {len(answer)} bytes ({how})")
    problems = []
    if growth_mib >= RSS_BOUND_MIB:
        problems.append(f"the bridge's RSS grew by {growth_mib:.1f} MiB (bound {RSS_BOUND_MIB} MiB, buffer_size "
                        f"{BUFFER_SIZE}) while a client pushed and never read: {result.describe()}; "
                        f"timeline (s, bytes accepted): {result.timeline}")
    if expected == "stall":
        if result.accepted >= IN_FLIGHT_CAP:
            problems.append(f"the bridge kept reading although its peer reads nothing: {result.describe()}")
        if result.ended == "closed":
            problems.append(f"the bridge closed a session whose peer was merely slow: {result.describe()}")
    elif isinstance(expected, tuple):
        status, must_close = expected
        got = answered_status(answer)
        if got != status:
            problems.append(f"expected the bridge to answer {status} within {CLOSE_TIMEOUT} s after the push, got "
                            f"{answer[:200]!r} (then {how}); push: {result.describe()}")
        if must_close == "close" and how not in ("eof", "reset"):
            problems.append(f"the bridge kept the connection open after refusing it (read ended by {how})")
    assert b.crashed() is None, f"the bridge died: {b.stderr()[-2000:]}"
    assert not problems, "\n".join(problems)


def test_eight_hostile_clients_on_three_listeners_stay_within_the_total_bound(bridge, holding, pki, legacy_pki,
                                                                              tmp_path):
    """Three plain, two tls and three http-proxy clients (after `Connection: close`, after an HTTP/1.0 request, in a
    Content-Length body) push at once; the gateway never reads or answers. The bound is the single-session bound
    plus PER_SESSION_MIB for each further session."""
    gw = holding("hold")
    workdir = tmp_path / "multi"
    workdir.mkdir()
    cfg = base_config(pki, workdir, gw.address, upstream=merchant_upstream(pki), limits=LIMITS)
    tls = tls_listener(legacy_pki, min_version="TLS1.0", routes={SANDBOX: "gw"}, listen=f"127.0.0.1:{free_port()}")
    proxy = proxy_listener(legacy_pki, routes={SANDBOX: "gw"}, listen=f"127.0.0.1:{free_port()}")
    cfg["listener"] += [tls, {k: v for k, v in proxy.items() if v is not None}]
    b = bridge(config=cfg)
    ports = {l["name"]: int(l["listen"].rsplit(":", 1)[1]) for l in cfg["listener"]}

    def plain():
        s = socket.create_connection(("127.0.0.1", ports["plain"]), timeout=20)
        s.sendall(b"HOLD 1000000000000\n")
        return s

    def legacy():
        raw = socket.create_connection(("127.0.0.1", ports["legacy"]), timeout=20)
        s = client_context("TLSv1.2", cafile=legacy_pki.listener_ca).wrap_socket(raw, server_hostname=SANDBOX)
        s.sendall(b"x")
        return s

    def proxied(head: str):
        def open_():
            s = socket.create_connection(("127.0.0.1", ports["proxy"]), timeout=20)
            s.sendall(head.encode())
            return s
        return open_

    openers = [plain, plain, plain, legacy, legacy,
               proxied(f"GET http://{SANDBOX}/e HTTP/1.1\r\n{HEAD}Connection: close\r\n\r\n"),
               proxied(f"GET http://{SANDBOX}/g HTTP/1.0\r\n{HEAD}\r\n"),
               proxied(f"POST http://{SANDBOX}/b HTTP/1.1\r\n{HEAD}Content-Length: 1000000000000000\r\n\r\n")]
    labels = ["plain", "plain", "plain", "tls", "tls", "proxy after Connection: close", "proxy after HTTP/1.0",
              "proxy Content-Length body"]
    socks = [open_() for open_ in openers]
    try:
        wait_gateway_ready(gw, len(socks))
        time.sleep(0.3)
        idle = b.rss_kib()
        results: list = [None] * len(socks)

        def run(i):
            results[i] = push(socks[i], seconds=PUSH_SECONDS, max_bytes=64 * MiB, data=GARBAGE)

        with RssSampler(b) as rss:
            threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(len(socks))]
            for t in threads:
                t.start()
            for t in threads:
                t.join(PUSH_SECONDS + 10)
            time.sleep(0.2)
    finally:
        for s in socks:
            s.close()
    growth_mib = (rss.peak_kib - idle) / 1024
    bound = RSS_BOUND_MIB + PER_SESSION_MIB * (len(socks) - 1)
    accepted = sum(r.accepted for r in results if r)
    print(f"\n8 hostile clients: idle {idle / 1024:.1f} MiB, peak +{growth_mib:.1f} MiB (bound {bound} MiB), "
          f"{accepted / MiB:.1f} MiB accepted in all")
    assert all(results), "a push thread did not finish"
    assert growth_mib < bound, (
        f"the bridge's RSS grew by {growth_mib:.1f} MiB (bound {bound} MiB) under 8 hostile clients: "
        + "; ".join(f"{label}: {r.describe()}" for label, r in zip(labels, results)))
    assert b.crashed() is None


# --- the helpers themselves (no bridge) -------------------------------------------------------------------------

def test_push_stalls_against_a_peer_that_does_not_read_and_runs_on_against_one_that_does(holding):
    """`push` reports a stall (kernel buffers only) against HoldingServer("hold"), and keeps going against "sink";
    so a bridge that keeps reading is told apart from one that stopped."""
    hold, sink = holding("hold", tls=False, name="hold"), holding("sink", tls=False, name="sink")
    with socket.create_connection(("127.0.0.1", hold.port), timeout=5) as s:
        stalled = push(s, seconds=0.5)
    with socket.create_connection(("127.0.0.1", sink.port), timeout=5) as s:
        flowing = push(s, seconds=0.5, max_bytes=64 * MiB)
    assert stalled.ended == "time" and stalled.accepted < IN_FLIGHT_CAP and stalled.stalled_for > 0.2, stalled
    assert flowing.accepted > 2 * stalled.accepted and flowing.stalled_for < 0.2, (stalled, flowing)
