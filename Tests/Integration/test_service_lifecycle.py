"""The daemon side of operations: systemd's notify protocol, SIGHUP reload (good and broken), and the
SIGTERM drain — all against the real binary, with a Python datagram socket playing systemd."""

from __future__ import annotations

import signal
import socket
import threading
import time

from support.bridge import free_port, recv_exact, to_toml, wait_closed


class NotifySocket:
    """A unix datagram socket standing in for systemd's $NOTIFY_SOCKET; collects what arrives."""

    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.messages: list[dict[str, str]] = []

    def wait_for(self, key: str, value: str = "1", timeout: float = 10.0) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        for message in self.messages:
            if message.get(key) == value:
                self.messages.remove(message)
                return message
        while time.monotonic() < deadline:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            message = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
            if message.get(key) == value:
                return message
            self.messages.append(message)
        raise AssertionError(f"no {key}={value} within {timeout} s; got {self.messages}")

    def close(self):
        self.sock.close()


def echo_once(b, listen: tuple[str, int] | None = None, payload: bytes = b"ping") -> bytes:
    with socket.create_connection(listen or b.listen, timeout=10) as s:
        s.sendall(b"ECHO %d\n" % len(payload) + payload)
        return recv_exact(s, len(payload))


def test_ready_reloading_and_stopping_reach_the_notify_socket(upstream, bridge, tmp_path):
    server = upstream()
    notify = NotifySocket(tmp_path / "notify.sock")
    try:
        b = bridge(server.address, start=False)
        b.env = {"NOTIFY_SOCKET": notify.path}
        b.start()
        ready = notify.wait_for("READY")
        assert ready.get("MAINPID") == str(b.pid), ready
        assert echo_once(b) == b"ping", "READY=1 came before the listener accepted"

        b.proc.send_signal(signal.SIGHUP)
        notify.wait_for("RELOADING")
        after = notify.wait_for("READY")
        assert "reloaded" in after.get("STATUS", ""), after

        assert b.stop(signal.SIGTERM) == 0
        notify.wait_for("STOPPING")
    finally:
        notify.close()


def test_every_worker_loop_keeps_the_watchdog_fed(upstream, bridge, tmp_path):
    """WatchdogSec= in the unit sets WATCHDOG_USEC: WATCHDOG=1 arrives again and again while both worker loops
    turn (a loop that stops would stop them: tested in the engine's unit tests; under a real systemd in
    scripts/systemd-test)."""
    gw = upstream(name="gw")
    notify = NotifySocket(str(tmp_path / "notify.sock"))
    try:
        b = bridge(gw.address, workers=2, start=False)
        b.env = {"NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "600000"}
        b.start()
        notify.wait_for("READY")
        pings, deadline = 0, time.monotonic() + 1.5
        while time.monotonic() < deadline:
            try:
                pings += notify.sock.recv(4096) == b"WATCHDOG=1"
            except socket.timeout:
                pass
        assert pings >= 4, f"{pings} watchdog pings in 1.5 s with WATCHDOG_USEC = 0.6 s"
        assert echo_once(b) == b"ping"
    finally:
        notify.close()


def test_reload_adds_a_listener_without_disturbing_an_open_session(upstream, bridge):
    server = upstream()
    b = bridge(server.address)
    with b.connect() as s:
        s.sendall(b"ECHO\n")
        s.sendall(b"before")
        assert recv_exact(s, 6) == b"before"

        added = dict(b.config["listener"][0], name="second", listen=f"127.0.0.1:{free_port()}")
        b.config["listener"].append(added)
        b.config_path.write_text(to_toml(b.config))
        b.proc.send_signal(signal.SIGHUP)
        port = int(added["listen"].rsplit(":", 1)[1])
        deadline = time.monotonic() + 10
        while True:
            try:
                assert echo_once(b, ("127.0.0.1", port), b"new") == b"new"
                break
            except OSError:
                assert time.monotonic() < deadline, f"the added listener never accepted:\n{b.stderr()[-2000:]}"
                time.sleep(0.05)

        s.sendall(b"after")
        assert recv_exact(s, 5) == b"after", "the open session was disturbed by the reload"
    records = b.wait_records(2)
    assert {r["listener"] for r in records} == {"plain", "second"}
    assert all(r["error"] is None for r in records), records


def test_a_broken_config_on_reload_changes_nothing_and_says_why(upstream, bridge):
    server = upstream()
    b = bridge(server.address)
    assert echo_once(b) == b"ping"
    good = b.config_path.read_text()
    b.config_path.write_text(good.replace('min_version = "TLS1.2"', 'min_version = "TLS1.0"', 1))
    b.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while "reload failed" not in b.stderr():
        assert time.monotonic() < deadline, f"no reload failure reported:\n{b.stderr()[-2000:]}"
        time.sleep(0.05)
    assert "upstream[gw].min_version" in b.stderr()
    assert echo_once(b, payload=b"still") == b"still", "the bridge stopped serving after a failed reload"
    assert b.crashed() is None


def test_reload_under_load_drops_no_session(upstream, bridge):
    """50 clients keep exchanging while the config (the upstream's client certificate) changes."""
    server = upstream()
    b = bridge(server.address, workers=2)
    failures: list[str] = []
    stop = threading.Event()

    def client(index: int):
        try:
            with b.connect() as s:
                s.sendall(b"ECHO\n")
                rounds = 0
                while not stop.is_set() or rounds < 3:
                    message = b"%04d-%06d" % (index, rounds)
                    s.sendall(message)
                    if recv_exact(s, len(message)) != message:
                        failures.append(f"client {index}: corrupted echo")
                        return
                    rounds += 1
                    time.sleep(0.01)
        except Exception as error:  # noqa: BLE001 - any failure is the finding
            failures.append(f"client {index}: {error!r}")

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(50)]
    for thread in threads:
        thread.start()
    time.sleep(0.5)
    b.config["upstream"][0]["client_cert"] = str(b.config["upstream"][0].get("client_cert") or "") or None
    b.config["upstream"][0] = {k: v for k, v in b.config["upstream"][0].items() if v is not None}
    b.config["limits"]["idle_timeout"] = "200s"
    b.config_path.write_text(to_toml(b.config))
    b.proc.send_signal(signal.SIGHUP)
    time.sleep(1.0)
    stop.set()
    for thread in threads:
        thread.join(timeout=20)
    assert not any(t.is_alive() for t in threads), "a client hung across the reload"
    assert failures == [], failures
    assert "reloaded" in b.stderr()
    records = b.wait_records(50, timeout=15)
    assert all(r["close"] == "downstream_eof" for r in records), [r["close"] for r in records]


def test_drain_lets_a_session_in_progress_finish_and_exits_0(upstream, bridge):
    server = upstream()
    b = bridge(server.address, limits={"drain_timeout": "10s"})
    with b.connect() as s:
        s.sendall(b"ECHO 6\n")  # the gateway echoes six bytes, then ends the session
        s.sendall(b"one")
        assert recv_exact(s, 3) == b"one"
        b.stopped_by_test = True
        b.proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        s.sendall(b"two")
        assert recv_exact(s, 3) == b"two", "the session was cut during the drain"
        with socket.socket() as late:
            late.settimeout(2)
            refused = late.connect_ex(b.listen) != 0
        assert refused, "the listener still accepted during the drain"
    started = time.monotonic()
    b.proc.wait(timeout=10)
    assert b.proc.returncode == 0
    assert time.monotonic() - started < 5, "the bridge did not exit once its last session ended"
    record = b.wait_record()
    assert record["close"] == "upstream_eof" and record["error"] is None, record
    assert record["bytes"] == {"up": 7 + 3 + 3, "down": 6}
