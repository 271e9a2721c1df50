"""preconnect: each worker keeps ready connections to the gateway (resolved, connected, TLS 1.2 handshaken,
verified, client certificate presented) and hands one to the next session, of every listener kind; the record
says so (`upstream.spare_age_ms`). A spare is replaced at preconnect_max_age, is never used once the gateway has
closed it (no merchant byte goes to a dead connection), and `preconnect = 0` opens nothing before a session.
The gateways are the suite's TLS 1.2-only servers that require the merchant's certificate."""

from __future__ import annotations

import socket
import ssl
import threading
import time

import pytest

from support.bridge import free_port
from support.legacy import SANDBOX, client_context, echo_over, merchant_upstream, tls_listener
from support.proxy import proxy_listener
from support.servers import server_context

TLS12 = ssl.TLSVersion.TLSv1_2


@pytest.fixture
def gateway(upstream):
    return upstream(client_auth="required", max_version=TLS12, name="gw")


def spare_upstream(pki, **keys) -> dict:
    return {**merchant_upstream(pki), "preconnect": 1, **keys}


def wait_handshaken(gateway, count: int, timeout: float = 10.0) -> list:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        conns = gateway.wait_connections(count, timeout=0.1)
        if len(conns) >= count and all(c.handshake_done for c in conns[:count]):
            return conns
    pytest.fail(f"the gateway saw {len(gateway.wait_connections(count, 0))} connections, wanted {count} handshaken")


@pytest.mark.parametrize("version", ["TLSv1.2", "TLSv1.3"])
def test_a_spare_is_ready_before_the_merchant_connects_and_carries_its_session(bridge, pki, upstream, version):
    # TLS 1.3: the gateway's session tickets arrive after the handshake, on the waiting spare; they
    # must not make it look spoken-on.
    gateway = upstream(client_auth="required", min_version=getattr(ssl.TLSVersion, version.replace("v1.", "v1_")),
                       max_version=getattr(ssl.TLSVersion, version.replace("v1.", "v1_")), name="gw")
    b = bridge(gateway.address, workers=1, upstream=spare_upstream(pki))
    spare = wait_handshaken(gateway, 1)[0]
    assert spare.client_cn == "merchant-0001" and spare.tls_version == version and spare.sni == "gateway.test"
    time.sleep(0.3)
    with socket.create_connection(b.listen, timeout=10) as s:
        assert echo_over(s) == b"ping"
    record = b.wait_record()
    assert record["upstream"]["spare_age_ms"] is not None and record["upstream"]["spare_age_ms"] >= 250, record
    assert record["upstream"]["verify"] == "ok" and record["upstream"]["client_cert"], record
    assert spare.command == "ECHO 4", "the session did not go over the spare the gateway saw first"
    # The pool dials the next one at once.
    assert wait_handshaken(gateway, 2)[1].command is None


def test_tls_and_http_proxy_listeners_take_spares_too(bridge, pki, legacy_pki, gateway):
    proxy_port = free_port()
    b = bridge(gateway.address, start=False, workers=1, upstream=spare_upstream(pki),
               listener=tls_listener(legacy_pki, min_version="TLS1.0", routes={SANDBOX: "gw"}))
    proxy = {k: v for k, v in proxy_listener(legacy_pki, routes={SANDBOX: "gw"}).items() if v is not None}
    b.config["listener"].append(dict(proxy, listen=f"127.0.0.1:{proxy_port}"))
    b.start()
    wait_handshaken(gateway, 1)  # one spare per worker and upstream, whichever listener takes it
    ctx = client_context("TLSv1", cafile=legacy_pki.listener_ca)
    with ctx.wrap_socket(socket.create_connection(b.listen, timeout=10), server_hostname=SANDBOX) as s:
        assert s.version() == "TLSv1" and echo_over(s) == b"ping"
    wait_handshaken(gateway, 2)
    with socket.create_connection(("127.0.0.1", proxy_port), timeout=10) as raw:
        raw.sendall(f"CONNECT {SANDBOX}:443 HTTP/1.1\r\nHost: {SANDBOX}:443\r\n\r\n".encode())
        assert raw.recv(4096).startswith(b"HTTP/1.1 200")
        mint = client_context("TLSv1", cafile=legacy_pki.mint_ca)
        with mint.wrap_socket(raw, server_hostname=SANDBOX) as s:
            assert echo_over(s) == b"ping"
    records = b.wait_records(2)
    assert [r["listener"] for r in records] == ["legacy", "proxy"], records
    for record in records:
        assert record["upstream"]["spare_age_ms"] is not None, record


def test_a_spare_is_closed_and_replaced_at_preconnect_max_age(bridge, pki, gateway):
    bridge(gateway.address, workers=1, upstream=spare_upstream(pki, preconnect_max_age="1s"))
    first = wait_handshaken(gateway, 1)[0]
    assert first.finished.wait(4), "the spare was not closed at preconnect_max_age (1s)"
    assert first.bytes_in == 0 and first.error is None, first
    assert wait_handshaken(gateway, 2)[1].handshake_done


class ClosesFirstIdleConnection:
    """A TLS 1.2 gateway whose first connection is closed 0.2 s after its handshake (an idle limit); every
    later one echoes what it gets. Records what each connection received."""

    def __init__(self, context: ssl.SSLContext):
        self.context = context
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.5)
        self.received: list[bytes] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.sock.getsockname()[1]}"

    def _run(self) -> None:
        index = 0
        while not self.stop.is_set() and index < 10:
            try:
                raw, _ = self.sock.accept()
            except socket.timeout:
                continue
            threading.Thread(target=self._serve, args=(raw, index), daemon=True).start()
            index += 1

    def _serve(self, raw: socket.socket, index: int) -> None:
        self.received.append(b"")
        raw.settimeout(10)
        try:
            with self.context.wrap_socket(raw, server_side=True) as s:
                if index == 0:
                    time.sleep(0.2)
                    return
                data = s.recv(65536)
                self.received[index] = data
                s.sendall(data)
        except (OSError, ssl.SSLError):
            pass

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.sock.close()


def test_a_spare_the_gateway_closed_is_never_used(bridge, pki):
    gateway = ClosesFirstIdleConnection(server_context(pki, client_auth="required", max_version=TLS12))
    try:
        b = bridge(gateway.address, workers=1, upstream=spare_upstream(pki))
        deadline = time.monotonic() + 10
        while len(gateway.received) < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.6)  # closed by the gateway; the pool waits 1 s before dialling again
        with socket.create_connection(b.listen, timeout=10) as s:
            s.sendall(b"payment")
            assert s.recv(100) == b"payment"
        record = b.wait_record()
        assert record["upstream"]["spare_age_ms"] is None, "a session was given the spare the gateway had closed"
        assert gateway.received[0] == b"", "merchant bytes went to the connection the gateway had closed"
        assert b"payment" in gateway.received[1:]
    finally:
        gateway.close()


def test_preconnect_0_opens_nothing_before_a_session(bridge, pki, gateway):
    b = bridge(gateway.address, workers=1, upstream={**merchant_upstream(pki), "preconnect": 0})
    time.sleep(0.5)
    assert gateway.wait_connections(1, timeout=0) == []
    with socket.create_connection(b.listen, timeout=10) as s:
        assert echo_over(s) == b"ping"
    assert b.wait_record()["upstream"]["spare_age_ms"] is None


def spare_metrics(port: int) -> dict:
    """The spare counters of /metrics, as {(family sample name, label values...): value}."""
    import urllib.request
    from prometheus_client.parser import text_string_to_metric_families
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=15) as response:
        text = response.read().decode()
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith(("tls_bridge_upstream_spares", "tls_bridge_upstream_connections")):
                found[(sample.name, *sorted(sample.labels.values()))] = sample.value
    return found


def test_metrics_count_spares_found_dead_handed_over_and_dials_on_the_critical_path(bridge, pki):
    """/metrics: the spare the gateway closed is found dead; the session meanwhile dials on its own path; the
    replacement (after the pool's 1 s back-off) is ready, then handed to the next session."""
    gateway = ClosesFirstIdleConnection(server_context(pki, client_auth="required", max_version=TLS12))
    try:
        port = free_port()
        b = bridge(gateway.address, start=False, workers=1, upstream=spare_upstream(pki))
        b.config["admin"] = {"listen": f"127.0.0.1:{port}"}
        b.start()
        deadline = time.monotonic() + 10
        while spare_metrics(port).get(("tls_bridge_upstream_spares_total", "found_dead", "gw")) != 1:
            assert time.monotonic() < deadline, spare_metrics(port)
            time.sleep(0.05)
        with socket.create_connection(b.listen, timeout=10) as s:
            s.sendall(b"first")
            assert s.recv(100) == b"first"
        assert b.wait_record()["upstream"]["spare_age_ms"] is None
        while spare_metrics(port).get(("tls_bridge_upstream_spares_ready", "gw")) != 1:
            assert time.monotonic() < deadline + 5, spare_metrics(port)
            time.sleep(0.05)
        with socket.create_connection(b.listen, timeout=10) as s:
            s.sendall(b"second")
            assert s.recv(100) == b"second"
        assert b.wait_records(2)[1]["upstream"]["spare_age_ms"] is not None
        metrics = spare_metrics(port)
        assert metrics.get(("tls_bridge_upstream_spares_total", "found_dead", "gw")) == 1, metrics
        assert metrics.get(("tls_bridge_upstream_spares_total", "gw", "handed_over")) == 1, metrics
        assert metrics.get(("tls_bridge_upstream_connections_total", "dial", "gw")) == 1, metrics
        assert metrics.get(("tls_bridge_upstream_connections_total", "gw", "spare")) == 1, metrics
        # Present from the start at 0 (an alert can see its first increase), and nothing expired here.
        assert metrics.get(("tls_bridge_upstream_spares_total", "expired", "gw")) == 0, metrics
    finally:
        gateway.close()


def test_spares_only_use_the_room_max_sessions_leaves(bridge, pki, gateway):
    """max_sessions = 2 and preconnect = 4: two spares, not four (a spare holds a gateway connection as a session
    does); when the session that took one ends, its place goes to the next spare."""
    b = bridge(gateway.address, workers=1, upstream=spare_upstream(pki, preconnect=4), limits={"max_sessions": 2})
    wait_handshaken(gateway, 2)
    time.sleep(1.0)
    assert len(gateway.wait_connections(3, timeout=0.1)) == 2, "more spares than max_sessions allows"
    with socket.create_connection(b.listen, timeout=10) as s:
        assert echo_over(s) == b"ping"
    assert b.wait_record()["upstream"]["spare_age_ms"] is not None
    wait_handshaken(gateway, 3)
