"""`via` composes with the rest: spare connections (`preconnect`) are opened through the outbound proxy before
any merchant connects, and a SIGHUP reload that points `via` at another proxy sends the next sessions (and the
new spares) through that one, never the old. The proxies are relays that record each CONNECT head and then pass
bytes both ways; the gateway is the suite's TLS 1.2-only server that requires the merchant's certificate."""

from __future__ import annotations

import select
import socket
import ssl
import threading
import time

import pytest

from support.bridge import reload_with
from support.legacy import echo_over, merchant_upstream

TLS12 = ssl.TLSVersion.TLSv1_2


class RecordingRelayProxy:
    """Answers every CONNECT with 200, records its head, then relays to `target` (bounded: 8 connections,
    10 s of silence ends a relay)."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.heads: list[bytes] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.3)
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _accept(self) -> None:
        served = 0
        while not self.stop_event.is_set() and served < 8:
            try:
                client, _ = self.sock.accept()
            except socket.timeout:
                continue
            served += 1
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        with client:
            client.settimeout(10)
            head = b""
            while b"\r\n\r\n" not in head and len(head) < 16384:
                chunk = client.recv(4096)
                if not chunk:
                    return
                head += chunk
            self.heads.append(head)
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            with socket.create_connection(self.target, timeout=10) as gateway:
                for _ in range(10_000):
                    ready, _, _ = select.select([client, gateway], [], [], 10)
                    if not ready:
                        return
                    for side in ready:
                        data = side.recv(65536)
                        if not data:
                            return
                        (gateway if side is client else client).sendall(data)

    def wait_heads(self, count: int, timeout: float = 10.0) -> list[bytes]:
        deadline = time.monotonic() + timeout
        while len(self.heads) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return list(self.heads)

    def close(self) -> None:
        self.stop_event.set()
        self.thread.join(5)
        self.sock.close()


@pytest.fixture
def gateway(upstream):
    return upstream(client_auth="required", max_version=TLS12, name="gw")


@pytest.fixture
def relay_proxies(gateway):
    host, port = gateway.address.rsplit(":", 1)
    started: list[RecordingRelayProxy] = []

    def make() -> RecordingRelayProxy:
        proxy = RecordingRelayProxy((host, int(port)))
        started.append(proxy)
        return proxy

    yield make
    for proxy in started:
        proxy.close()


def test_spares_are_opened_through_the_outbound_proxy(bridge, pki, gateway, relay_proxies):
    proxy = relay_proxies()
    b = bridge(gateway.address, workers=1, upstream={**merchant_upstream(pki), "via": proxy.url, "preconnect": 1})
    heads = proxy.wait_heads(1)
    assert heads and heads[0].startswith(f"CONNECT {gateway.address} HTTP/1.1\r\n".encode()), heads
    time.sleep(0.2)
    with socket.create_connection(b.listen, timeout=10) as s:
        assert echo_over(s) == b"ping"
    record = b.wait_record()
    assert record["upstream"]["spare_age_ms"] is not None, record
    assert record["upstream"]["via"] == proxy.url.removeprefix("http://"), record
    assert record["upstream"]["protocol"] == "TLSv1.2" and record["upstream"]["verify"] == "ok", record
    assert gateway.wait_finished(1)[0].client_cn == "merchant-0001"


def test_a_reload_that_changes_via_sends_the_next_sessions_through_the_new_proxy(bridge, pki, gateway, relay_proxies):
    old, new = relay_proxies(), relay_proxies()
    b = bridge(gateway.address, workers=1, upstream={**merchant_upstream(pki), "via": old.url, "preconnect": 0})
    with socket.create_connection(b.listen, timeout=10) as s:
        assert echo_over(s) == b"ping"
    assert b.wait_record()["upstream"]["via"] == old.url.removeprefix("http://")
    config = dict(b.config, upstream=[dict(b.config["upstream"][0], via=new.url)])
    reload_with(b, config)
    with socket.create_connection(b.listen, timeout=10) as s:
        assert echo_over(s) == b"ping"
    records = b.wait_records(2)
    assert records[1]["upstream"]["via"] == new.url.removeprefix("http://"), records[1]
    assert len(old.wait_heads(2, timeout=0.5)) == 1, "a session after the reload went through the old proxy"
    assert len(new.wait_heads(1)) == 1
