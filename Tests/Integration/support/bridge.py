"""Drive the tls-bridge binary as a black box: write a config, run it, read its session records.

A `Bridge` owns one `tls-bridge run` process (started with subprocess, stopped by its own handle), a TOML
config and a session log in a per-test directory. Readiness is read from /proc/net/tcp (a LISTEN socket on
the listener port), so waiting for it never opens a session of its own.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

from .certs import GATEWAY_NAME, Pki
from .tripwire import TRIPWIRE

START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
CLI_TIMEOUT = 20.0
RECORD_KEYS = {"time", "session", "direction", "listener", "downstream", "upstream", "bytes", "duration_ms",
               "phase", "close", "error", "hint"}
UPSTREAM_KEYS = {"name", "address", "server_name", "protocol", "cipher", "resumed", "peer", "peer_issuer",
                 "verify", "client_cert", "via", "spare_age_ms"}
PHASES = {"accept", "downstream_handshake", "resolve", "connect", "tunnel", "handshake", "open", "drain"}
CLOSES = {"downstream_eof", "upstream_eof", "idle_timeout", "connect_timeout", "handshake_timeout",
          "upstream_error", "downstream_error", "refused", "limit", "shutdown"}


# --- config -------------------------------------------------------------------------------------------------

def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (str, Path)):
        return json.dumps(str(value))  # a JSON string is a valid TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def _toml_subtables(path: str, table: dict) -> list[str]:
    """Scalars of `table`, then its dict values as [path.key] sub-tables (e.g. [listener.routes])."""
    lines = [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in table.items() if not isinstance(v, dict)]
    for k, v in table.items():
        if isinstance(v, dict):
            sub = f"{path}.{_toml_key(k)}"
            body = _toml_subtables(sub, v)
            # a table holding only sub-tables needs no header of its own ([listener.certificates."name"])
            lines += body if v and all(isinstance(x, dict) for x in v.values()) else ["", f"[{sub}]"] + body
    return lines


def to_toml(config: dict) -> str:
    """Top-level scalars, then [tables], then [[arrays of tables]]; enough for tls-bridge's config.

    A dict inside a table is written as a sub-table after the table's own keys ([listener.routes],
    [listener.certificates."name"]); keys that are not bare TOML keys are quoted.

    Every [[upstream]] gets `preconnect = 0` unless it sets the key: a spare connection is one the
    gateway fixture sees without any session, which tests about anything else must not have to count.
    The tests of `preconnect` set it.
    """
    lines: list[str] = []
    tables, arrays = [], []
    for key, value in config.items():
        if isinstance(value, dict):
            tables.append((key, value))
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            arrays.append((key, value))
        else:
            lines.append(f"{key} = {_toml_value(value)}")
    for key, table in tables:
        lines += ["", f"[{key}]"] + _toml_subtables(key, table)
    for key, items in arrays:
        for table in items:
            if key == "upstream" and "preconnect" not in table:
                table = {**table, "preconnect": 0}
            lines += ["", f"[[{key}]]"] + _toml_subtables(key, table)
    return "\n".join(lines) + "\n"


_issued_ports: set[int] = set()


def free_port() -> int:
    """A port free right now that this test process has not handed out before: the kernel may give
    the same ephemeral port to two binds in a row, and two listeners of one config must differ."""
    for _ in range(100):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        sock.close()
        if port not in _issued_ports:
            _issued_ports.add(port)
            return port
    raise RuntimeError("no fresh free port in 100 tries")


def base_config(pki: Pki, workdir: Path, upstream_address: str, *, listen_port: int | None = None,
                upstream: dict | None = None, limits: dict | None = None, dns: dict | None = None,
                level: str = "info", workers=2, listener: dict | None = None,
                extra_upstreams: list[dict] | None = None) -> dict:
    """The suite's standard config: one plain listener "plain" → upstream "gw" with SNI gateway.test.

    `upstream` / `limits` / `listener` entries override or add keys; a value of None removes a key.
    A dict value in `listener` becomes a sub-table ([listener.routes]). Each `extra_upstreams` entry is
    another [[upstream]]: gw's keys (without a client certificate) overridden by the entry.
    """
    gw = {
        "name": "gw",
        "address": upstream_address,
        "server_name": GATEWAY_NAME,
        "ca_file": str(pki.ca),
        "min_version": "TLS1.2",
    }
    lim = {
        "connect_timeout": "10s",
        "handshake_timeout": "10s",
        "idle_timeout": "300s",
        "max_sessions": 4096,
        "buffer_size": "256KiB",
        # Short, so a test that stops a bridge with a session still open does not wait 30 s, and a
        # session whose client has closed does not wait 30 s for the gateway to close.
        "drain_timeout": "2s",
        "half_close_timeout": "2s",
    }
    for target, overrides in ((gw, upstream), (lim, limits)):
        for key, value in (overrides or {}).items():
            if value is None:
                target.pop(key, None)
            else:
                target[key] = value
    config = {
        "workers": workers,
        "log": {"sessions": str(workdir / "sessions.jsonl"), "level": level},
        "limits": lim,
    }
    if dns is not None:
        config["dns"] = dns
    config["upstream"] = [gw]
    for extra in extra_upstreams or ():
        entry = {k: v for k, v in gw.items()
                 if k not in ("client_cert", "client_key", "client_key_password_file")}
        entry.update(extra)
        config["upstream"].append({k: v for k, v in entry.items() if v is not None})
    lst = {
        "name": "plain",
        "listen": f"127.0.0.1:{listen_port or free_port()}",
        "accept": "plain",
        "upstream": "gw",
    }
    for key, value in (listener or {}).items():
        if value is None:
            lst.pop(key, None)
        else:
            lst[key] = value
    config["listener"] = [lst]
    return config


# --- CLI ----------------------------------------------------------------------------------------------------

def run_cli(binary: Path, *args: str, timeout: float = CLI_TIMEOUT) -> subprocess.CompletedProcess:
    """Run a short-lived tls-bridge command; a hang is a failure, reported with what it printed.

    A command given `--config` (probe dials every upstream) is registered with the unrouted-dial tripwire
    while it runs."""
    config = args[args.index("--config") + 1] if "--config" in args[:-1] else None
    routed = TRIPWIRE.routed_set(Path(config)) if config else None
    proc = subprocess.Popen([str(binary), *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    if config:
        TRIPWIRE.register(proc.pid, Path(config), routed)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, stderr = proc.communicate()
        raise AssertionError(f"tls-bridge {' '.join(args)} did not finish within {timeout} s; "
                             f"stdout={stdout!r} stderr={stderr!r}") from None
    finally:
        TRIPWIRE.unregister(proc.pid)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


# --- the running bridge -------------------------------------------------------------------------------------

def _listening_ports() -> set[int]:
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if fields[3] == "0A":  # TCP_LISTEN
                        ports.add(int(fields[1].rsplit(":", 1)[1], 16))
        except FileNotFoundError:
            pass
    return ports


class Bridge:
    def __init__(self, binary: Path, workdir: Path, config: dict):
        self.binary = binary
        self.workdir = workdir
        self.config = config
        self.config_path = workdir / "tls-bridge.toml"
        self.session_log = Path(config["log"]["sessions"])
        self.stderr_path = workdir / "bridge.stderr"
        self.stdout_path = workdir / "bridge.stdout"
        self.proc: subprocess.Popen | None = None
        self.stopped_by_test = False
        # Extra environment for the process (e.g. NOTIFY_SOCKET).
        self.env: dict[str, str] = {}

    # lifecycle --------------------------------------------------------------------------------------------
    @property
    def listen(self) -> tuple[str, int]:
        host, port = self.config["listener"][0]["listen"].rsplit(":", 1)
        return host.strip("[]"), int(port)

    def start(self) -> "Bridge":
        self.config_path.write_text(to_toml(self.config))
        routed = TRIPWIRE.routed_set(self.config_path)
        self._stdout = open(self.stdout_path, "wb")
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen([str(self.binary), "run", "--config", str(self.config_path)],
                                     stdin=subprocess.DEVNULL, stdout=self._stdout, stderr=self._stderr,
                                     env={**os.environ, **self.env} if self.env else None)
        TRIPWIRE.register(self.proc.pid, self.config_path, routed)  # see support/tripwire.py
        ports = {int(l["listen"].rsplit(":", 1)[1]) for l in self.config["listener"]}
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"tls-bridge run exited with {self.proc.returncode} before listening; "
                                     f"stderr:\n{self.stderr()}")
            if ports <= _listening_ports():
                return self
            time.sleep(0.02)
        self.kill()
        raise AssertionError(f"tls-bridge not listening on {sorted(ports)} within {START_TIMEOUT} s; "
                             f"stderr:\n{self.stderr()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT) -> int | None:
        """Signal the process we started and wait; returns its exit code, or None if it had to be killed."""
        if self.proc is None:
            return None
        self.stopped_by_test = True
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                return None
        TRIPWIRE.unregister(self.proc.pid)
        self._close_files()
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        if self.proc is not None:
            TRIPWIRE.unregister(self.proc.pid)
        self._close_files()

    def _close_files(self) -> None:
        for f in (getattr(self, "_stdout", None), getattr(self, "_stderr", None)):
            if f is not None and not f.closed:
                f.close()

    def crashed(self) -> int | None:
        """Exit code if the process ended without being asked to, else None."""
        if self.proc is None or self.stopped_by_test:
            return None
        return self.proc.poll()

    @property
    def pid(self) -> int:
        return self.proc.pid

    # observation -------------------------------------------------------------------------------------------
    def stderr(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def rss_kib(self) -> int:
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS in /proc status")

    def records(self) -> list[dict]:
        try:
            text = self.session_log.read_text()
        except FileNotFoundError:
            return []
        out = []
        for line in text.splitlines():
            if line.strip():
                out.append(json.loads(line))  # a malformed line is a defect: let it raise
        return out

    def wait_records(self, count: int, timeout: float = 10.0) -> list[dict]:
        """Wait until at least `count` complete records are logged; fails with what is there otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                text = self.session_log.read_text()
            except FileNotFoundError:
                text = ""
            complete = text.rsplit("\n", 1)[0] if "\n" in text else ""
            lines = [l for l in complete.splitlines() if l.strip()]
            if len(lines) >= count:
                return [json.loads(l) for l in lines]
            if time.monotonic() >= deadline:
                raise AssertionError(f"expected {count} session records within {timeout} s, found {len(lines)}:\n"
                                     f"{text[-4000:]}\nstderr tail:\n{self.stderr()[-2000:]}")
            time.sleep(0.02)

    def wait_record(self, timeout: float = 10.0) -> dict:
        records = self.wait_records(1, timeout)
        assert len(records) == 1, f"expected exactly one session record, got {len(records)}: {records}"
        return records[0]

    def connect(self, timeout: float = 10.0) -> socket.socket:
        sock = socket.create_connection(self.listen, timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock


def check_record_shape(record: dict) -> None:
    """Every record has every key, with values from the documented sets."""
    assert set(record) >= RECORD_KEYS, f"missing keys {RECORD_KEYS - set(record)} in {record}"
    assert set(record["upstream"]) >= UPSTREAM_KEYS, f"missing upstream keys in {record}"
    assert set(record["downstream"]) >= {"address", "protocol", "cipher", "sni", "client_cert", "offered"}, record
    assert set(record["bytes"]) >= {"up", "down"}, record
    assert record["direction"] == "outbound", record
    assert record["phase"] in PHASES, record
    assert record["close"] in CLOSES, record
    assert isinstance(record["session"], str) and record["session"], record
    assert isinstance(record["duration_ms"], int) and record["duration_ms"] >= 0, record
    assert isinstance(record["upstream"]["resumed"], bool), record


# --- downstream client helpers ---------------------------------------------------------------------------------

def recv_exact(sock: socket.socket, size: int) -> bytes:
    parts, left = [], size
    while left > 0:
        data = sock.recv(min(left, 1 << 20))
        if not data:
            raise EOFError(f"EOF after {size - left} of {size} bytes")
        parts.append(data)
        left -= len(data)
    return b"".join(parts)


def recv_line(sock: socket.socket, limit: int = 4096) -> bytes:
    out = bytearray()
    while not out.endswith(b"\n"):
        data = sock.recv(1)
        if not data:
            raise EOFError(f"EOF after {bytes(out)!r}")
        out += data
        if len(out) > limit:
            raise AssertionError("line too long")
    return bytes(out)


def wait_closed(sock: socket.socket, timeout: float = 10.0) -> tuple[bytes, float]:
    """Read until the bridge closes the connection (EOF or reset); returns (bytes read, seconds waited).

    Fails if the connection is still open after `timeout`.
    """
    start = time.monotonic()
    sock.settimeout(timeout)
    data = bytearray()
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except (ConnectionResetError, BrokenPipeError):
        pass
    except socket.timeout:
        raise AssertionError(f"connection still open after {timeout} s (read {len(data)} bytes)") from None
    return bytes(data), time.monotonic() - start


def sockname(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"{host}:{port}" if ":" not in host else f"[{host}]:{port}"


def reload_with(b, config: dict) -> None:
    """Writes `config`, sends SIGHUP and waits until the bridge says it reloaded (once more than before)."""
    before = b.stderr().count("reloaded")
    b.config_path.write_text(to_toml(config))
    b.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while b.stderr().count("reloaded") <= before:
        assert time.monotonic() < deadline, f"no reload within 10 s:\n{b.stderr()[-2000:]}"
        assert "reload failed" not in b.stderr(), b.stderr()[-2000:]
        time.sleep(0.05)
