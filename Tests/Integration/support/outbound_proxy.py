"""The merchant's outbound HTTP proxy (issue #16, `[[upstream]] via`): a real Squid from Debian started on
loopback for each test module, a hand-written misbehaving proxy for the failure cases, and the gateway, configs
and record checks the outbound-proxy tests share.

Why the proofs hold: the gateway's address is a name (`sandbox.paygent.test`) that only the proxy can resolve
(Squid through its own `hosts_file`, the hostile proxy by relaying to a fixed target), while the bridge resolves
through a DNS stub that knows the proxy's name only, or is given the proxy as an IP literal. So a session that
reaches the gateway went through the proxy. The gateway's certificate is issued for that name alone (no IP SAN) by
a CA of this module, so the name verified inside the tunnel is the gateway's, not the proxy's.

Both proxies are processes or threads this process started, stopped by their own handle (Squid by its PID:
SIGTERM, then SIGKILL after a bound); every socket operation has a timeout and every loop a deadline.
Neither proxy reports to the unrouted-dial tripwire: the bridge dialling its `via` is routed by definition, and
the tripwire reads only `[[upstream]] address`. The gateway still does, and sees the proxy, never a bridge.
"""

from __future__ import annotations

import base64
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from . import certs
from .bridge import PHASES, _listening_ports, free_port
from .legacy import SANDBOX, merchant_upstream
from .servers import server_context

SQUID_BIN = "/usr/sbin/squid"
NCSA_HELPER = "/usr/lib/squid/basic_ncsa_auth"
PROXY_NAME = "proxy.corp.test"      # the proxy's name: the bridge's DNS stub knows it, and nothing else
PROXY_USER = "merchant-dmz"
PROXY_PASSWORD = "Pr0xy-pass-7f3c9a"   # distinctive, so a leak into any log is found by a plain search
SQUID_START_TIMEOUT = 20.0
SQUID_STOP_TIMEOUT = 8.0
PROXY_IO_TIMEOUT = 10.0
PROXY_MAX_CONNECTIONS = 32
HEAD_LIMIT = 64 * 1024
TUNNEL_PHASES = PHASES | {"tunnel"}


def squid_available() -> bool:
    return os.access(SQUID_BIN, os.X_OK) and os.access(NCSA_HELPER, os.X_OK)


# --- the gateway behind the proxy --------------------------------------------------------------------------------

@dataclass(frozen=True)
class ViaPki:
    """A CA of its own and a gateway certificate for `sandbox.paygent.test` only (DNS SAN, no IP SAN), on the
    suite's gateway key (so `servers.server_context` loads it with `pki.server_key`)."""

    directory: Path
    ca: Path
    gateway_cert: Path
    wrong_name_cert: Path       # same CA and key, issued for other.paygent.test


def generate_via_pki(directory: Path, pki: certs.Pki) -> ViaPki:
    directory.mkdir(parents=True, exist_ok=True)
    key = serialization.load_pem_private_key(Path(pki.server_key).read_bytes(), password=None)
    ca, ca_key = certs._ca("Via Test CA")
    gateway = certs._leaf(certs._name(SANDBOX, "Gateway Behind A Proxy"), key, ca, ca_key, dns=[SANDBOX])
    wrong = certs._leaf(certs._name("other.paygent.test"), key, ca, ca_key, dns=["other.paygent.test"])
    paths = {}
    for name, cert in (("via-ca.pem", ca), ("via-gateway.pem", gateway), ("via-wrong-name.pem", wrong)):
        path = directory / name
        path.write_bytes(certs._pem_cert(cert))
        paths[name] = path
    return ViaPki(directory, paths["via-ca.pem"], paths["via-gateway.pem"], paths["via-wrong-name.pem"])


def gateway_context(pki: certs.Pki, vpki: ViaPki, *, cert: Path | None = None) -> ssl.SSLContext:
    """The payment gateway: TLS 1.2 only, the merchant's client certificate required, named sandbox.paygent.test."""
    return server_context(pki, cert=cert or vpki.gateway_cert, client_auth="required",
                          max_version=ssl.TLSVersion.TLSv1_2)


def write_credentials(path: Path, user: str = PROXY_USER, password: str = PROXY_PASSWORD,
                      mode: int = 0o600) -> Path:
    """A `via_credentials` file: one line user:password."""
    path.write_text(f"{user}:{password}\n")
    path.chmod(mode)
    return path


def via_upstream(pki: certs.Pki, vpki: ViaPki, via: str, *, credentials: Path | None = None, **extra) -> dict:
    """`base_config(upstream=...)` overrides: the merchant's client certificate, the via CA, no `server_name`
    (the address's host is the gateway name), `via` and optionally `via_credentials`."""
    keys = dict(merchant_upstream(pki), ca_file=str(vpki.ca), server_name=None, via=via)
    if credentials is not None:
        keys["via_credentials"] = str(credentials)
    keys.update(extra)
    return keys


def basic_authorization(user: str = PROXY_USER, password: str = PROXY_PASSWORD) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def secrets_of(user: str = PROXY_USER, password: str = PROXY_PASSWORD) -> list[str]:
    """Every spelling of the credentials that must never appear in a log or record."""
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return [password, token, f"{user}:{password}"]


# --- records -----------------------------------------------------------------------------------------------------

def assert_via_record(record: dict, *, via: str, proxy_address: str | None = None) -> None:
    """Every outbound-proxy record: `upstream.via` as configured, `upstream.address` the proxy's IP:port."""
    assert record["direction"] == "outbound", record
    assert record["phase"] in TUNNEL_PHASES, record
    up = record["upstream"]
    assert "via" in up, f"no upstream.via in the record: {record}"
    assert up["via"] == via, f"upstream.via is {up['via']!r}, configured {via!r}: {record}"
    if proxy_address is not None:
        assert up["address"] == proxy_address, \
            f"upstream.address is {up['address']!r}, the proxy it connected to is {proxy_address}: {record}"


def assert_no_secret(*texts: str, secrets: list[str] | None = None) -> None:
    for secret in secrets or secrets_of():
        for text in texts:
            assert secret not in text, f"a proxy credential ({secret[:4]}...) appears in: ...{_around(text, secret)}..."


def _around(text: str, needle: str, width: int = 120) -> str:
    i = text.find(needle)
    return text[max(0, i - width):i + len(needle) + width]


# --- Squid -------------------------------------------------------------------------------------------------------

@dataclass
class AccessEntry:
    """One line of Squid's native access log."""

    code: str          # TCP_TUNNEL, TCP_DENIED, NONE_NONE, ...
    status: int        # the HTTP status Squid answered (0 when none)
    method: str
    url: str           # for CONNECT: host:port
    user: str          # "-" without authentication
    hierarchy: str     # HIER_DIRECT/127.0.0.1, HIER_NONE/-
    raw: str


def _parse_access(line: str) -> AccessEntry | None:
    fields = line.split()
    if len(fields) < 10 or "/" not in fields[3]:
        return None
    code, _, status = fields[3].partition("/")
    return AccessEntry(code, int(status) if status.isdigit() else 0, fields[5], fields[6], fields[7], fields[8],
                       line)


class Squid:
    """`squid -N -f <conf>` on 127.0.0.1:<free port>: no cache, no daemon, logs in its own directory.

    CONNECT is allowed only to `gateway_host` on one of `gateway_ports`, every other request is denied (403).
    `hosts` is Squid's `hosts_file` (by default only the gateway's name → 127.0.0.1), so Squid resolves the
    gateway without any name server. With `users`, Basic authentication through Debian's `basic_ncsa_auth`
    (APR1 hashes from `openssl passwd -apr1`), realm `realm`.

    Debian's Squid started as root drops to user `proxy` (cache_effective_user); its directory (a fresh one
    under /tmp: pytest's are 0700 all the way up) is then owned by `proxy`. Logs are copied to `keep` at stop.
    """

    def __init__(self, gateway_ports: list[int], *, gateway_host: str = SANDBOX, hosts: dict | None = None,
                 users: dict[str, str] | None = None, realm: str = "tls-bridge-test", keep: Path | None = None):
        self.gateway_ports = list(gateway_ports)
        self.gateway_host = gateway_host
        self.hosts = hosts if hosts is not None else {gateway_host: "127.0.0.1"}
        self.users = users
        self.realm = realm
        self.keep = keep
        self.port: int | None = None
        self.dir: Path | None = None
        self.proc: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def access_log_path(self) -> Path:
        return self.dir / "access.log"

    @property
    def cache_log_path(self) -> Path:
        return self.dir / "cache.log"

    def config_text(self) -> str:
        d = self.dir
        lines = [
            f"http_port 127.0.0.1:{self.port}",
            f"pid_filename {d / 'squid.pid'}",
            f"cache_log {d / 'cache.log'}",
            f"access_log stdio:{d / 'access.log'} squid",
            "cache deny all",
            "cache_mem 4 MB",
            "max_filedescriptors 1024",
            f"coredump_dir {d}",
            f"hosts_file {d / 'hosts'}",
            "dns_nameservers 127.0.0.1",   # irrelevant: the gateway's name is in hosts_file
            "visible_hostname tls-bridge-test-proxy",
            "shutdown_lifetime 0 seconds",
            "pinger_enable off",
            "netdb_filename none",
            "connect_timeout 5 seconds",
        ]
        if os.geteuid() == 0:
            lines.append("cache_effective_user proxy")
        if self.users:
            lines += [f"auth_param basic program {NCSA_HELPER} {d / 'passwd'}",
                      f"auth_param basic realm {self.realm}",
                      "auth_param basic children 2 startup=1 idle=1",
                      "auth_param basic credentialsttl 1 second"]
        lines += [f"acl gateway_port port {' '.join(str(p) for p in self.gateway_ports)}",
                  f"acl gateway_host dstdomain {self.gateway_host}",
                  "http_access deny !CONNECT",
                  "http_access deny !gateway_port",
                  "http_access deny !gateway_host"]
        if self.users:
            lines += ["acl merchants proxy_auth REQUIRED", "http_access allow merchants"]
        else:
            lines += ["http_access allow localhost"]
        lines.append("http_access deny all")
        return "\n".join(lines) + "\n"

    def start(self) -> "Squid":
        if not squid_available():
            raise AssertionError(f"{SQUID_BIN} / {NCSA_HELPER} missing: run scripts/setup --test (Debian package squid)")
        self.dir = Path(tempfile.mkdtemp(prefix="tls-bridge-squid-", dir="/tmp"))
        self.port = free_port()
        (self.dir / "hosts").write_text("".join(f"{ip} {name}\n" for name, ip in self.hosts.items()))
        if self.users:
            entries = []
            for user, password in self.users.items():
                hashed = subprocess.run(["openssl", "passwd", "-apr1", "-stdin"], input=password + "\n",
                                        capture_output=True, text=True, timeout=10, check=True).stdout.strip()
                entries.append(f"{user}:{hashed}\n")
            (self.dir / "passwd").write_text("".join(entries))
            (self.dir / "passwd").chmod(0o600)
        conf = self.dir / "squid.conf"
        conf.write_text(self.config_text())
        if os.geteuid() == 0:  # Squid drops to `proxy`: it must write its logs and read its passwd file
            proxy = pwd.getpwnam("proxy")
            for path in [self.dir, *self.dir.iterdir()]:
                os.chown(path, proxy.pw_uid, proxy.pw_gid)
        self._out = open(self.dir / "squid.stdout", "wb")
        self.proc = subprocess.Popen([SQUID_BIN, "-N", "-f", str(conf)], stdin=subprocess.DEVNULL,
                                     stdout=self._out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + SQUID_START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._out.close()
                raise AssertionError(f"squid exited with {self.proc.returncode} before listening:\n{self.diagnostics()}")
            if self.port in _listening_ports():
                return self
            time.sleep(0.05)
        self.stop()
        raise AssertionError(f"squid not listening on {self.port} within {SQUID_START_TIMEOUT} s:\n{self.diagnostics()}")

    def stop(self) -> None:
        """SIGTERM to the PID we started, SIGKILL after SQUID_STOP_TIMEOUT; then its helpers end on EOF."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=SQUID_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if getattr(self, "_out", None) is not None and not self._out.closed:
            self._out.close()
        if self.dir is not None and self.dir.exists():
            if self.keep is not None:
                self.keep.mkdir(parents=True, exist_ok=True)
                for name in ("squid.conf", "access.log", "cache.log", "squid.stdout"):
                    if (self.dir / name).exists():
                        shutil.copy(self.dir / name, self.keep / name)
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # observation ----------------------------------------------------------------------------------------------
    def diagnostics(self) -> str:
        out = []
        for name in ("squid.stdout", "cache.log"):
            try:
                out.append(f"--- {name}\n" + (self.dir / name).read_text(errors="replace")[-3000:])
            except (FileNotFoundError, TypeError):
                pass
        return "\n".join(out)

    def access(self, since: int = 0) -> list[AccessEntry]:
        """Access-log entries, from the `since`-th on (see `mark`)."""
        try:
            text = self.access_log_path.read_text(errors="replace")
        except FileNotFoundError:
            return []
        return [e for e in (_parse_access(l) for l in text.splitlines()) if e is not None][since:]

    def mark(self) -> int:
        """How many entries the access log holds now: pass it as `since` to see only what came after."""
        return len(self.access())

    def wait_access(self, predicate, count: int = 1, timeout: float = 10.0, since: int = 0) -> list[AccessEntry]:
        """Squid logs a CONNECT when the tunnel ends: wait until `count` entries after `since` match `predicate`."""
        deadline = time.monotonic() + timeout
        while True:
            found = [e for e in self.access(since) if predicate(e)]
            if len(found) >= count or time.monotonic() >= deadline:
                return found
            time.sleep(0.05)

    def tunnels_to(self, authority: str, timeout: float = 10.0, count: int = 1, since: int = 0) -> list[AccessEntry]:
        """Successful CONNECT tunnels to `authority` logged after `since`."""
        return self.wait_access(lambda e: e.method == "CONNECT" and e.url.lower() == authority.lower()
                                and e.code == "TCP_TUNNEL" and e.status == 200, count, timeout, since)


# --- a misbehaving proxy -----------------------------------------------------------------------------------------

OK_200 = b"HTTP/1.1 200 Connection established\r\n\r\n"


def _answer(status: str, headers: list[str] = (), body: bytes = b"") -> bytes:
    head = [f"HTTP/1.1 {status}", "Content-Type: text/plain", f"Content-Length: {len(body)}", *headers,
            "Connection: close"]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


@dataclass
class ProxyConnection:
    peer: tuple
    head: bytes | None = None
    error: str | None = None
    relayed_up: int = 0      # bridge → target
    relayed_down: int = 0    # target → bridge
    finished: threading.Event = field(default_factory=threading.Event)

    @property
    def request_line(self) -> str | None:
        return None if self.head is None else self.head.split(b"\r\n", 1)[0].decode("latin-1")

    @property
    def headers(self) -> list[tuple[str, str]]:
        if self.head is None:
            return []
        out = []
        for line in self.head.decode("latin-1").split("\r\n")[1:]:
            if line:
                name, _, value = line.partition(":")
                out.append((name, value.strip()))
        return out

    def header(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]


class HostileProxy:
    """A threaded HTTP proxy on 127.0.0.1 that reads one CONNECT head and then, by `mode`:

      refuse               403 Forbidden
      want_auth            407 with `Proxy-Authenticate: <authenticate>` (Basic realm="x" by default)
      reject_credentials   the same 407 (a proxy that turns down whatever Proxy-Authorization it got)
      bad_gateway          502 Bad Gateway
      garbage              bytes that are not HTTP (an SSH banner, binary, a blank line), then silence
      overlong             `HTTP/1.1 200 OK` and `overlong` bytes of headers (100 KiB by default), then silence
      silent               reads the head and never answers (until the bridge leaves or `stop`)
      close                closes the connection without answering
      close_after_200      answers 200, then closes at once (the gateway is never dialled)
      close_mid_tunnel     answers 200 and relays to `target`, and closes both sides once `cut` is set
      record               answers `ok_answer` (200 by default; with `dribble`, one byte per segment) and relays
                           to `target`

    Every mode records the CONNECT head (`connections[i].head`, `heads()`). At most PROXY_MAX_CONNECTIONS
    connections; each read and the whole life of a connection (`lifetime`) are bounded.
    """

    MODES = ("refuse", "want_auth", "reject_credentials", "bad_gateway", "garbage", "overlong", "silent", "close",
             "close_after_200", "close_mid_tunnel", "record")

    def __init__(self, mode: str, *, target: tuple[str, int] | None = None, overlong: int = 100 * 1024,
                 lifetime: float = 30.0, ok_answer: bytes = OK_200, dribble: float = 0.0,
                 authenticate: str = 'Basic realm="x"'):
        assert mode in self.MODES, mode
        assert target is not None or mode not in ("record", "close_mid_tunnel"), f"{mode} needs a target"
        self.mode = mode
        self.target = target
        self.overlong = overlong
        self.lifetime = lifetime
        self.ok_answer = ok_answer     # what `record` / `close_mid_tunnel` answer a CONNECT with
        self.dribble = dribble         # > 0: that answer goes out one byte at a time, this many seconds apart
        self.authenticate = authenticate   # the Proxy-Authenticate value of a 407
        self.cut = threading.Event()
        self.connections: list[ProxyConnection] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._sock: socket.socket | None = None
        self.port: int | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> "HostileProxy":
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        sock.settimeout(0.1)
        self._sock = sock
        self.port = sock.getsockname()[1]
        thread = threading.Thread(target=self._accept_loop, name=f"hostile-proxy-{self.mode}", daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in list(self._threads):
            thread.join(timeout=5)
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def wait_connections(self, count: int = 1, timeout: float = 10.0) -> list[ProxyConnection]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.connections) >= count and all(c.head is not None or c.finished.is_set()
                                                          for c in self.connections[:count]):
                    return list(self.connections)
            time.sleep(0.02)
        with self._lock:
            return list(self.connections)

    def heads(self) -> list[bytes]:
        with self._lock:
            return [c.head for c in self.connections if c.head is not None]

    # serving ------------------------------------------------------------------------------------------------
    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                sock, peer = self._sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            conn = ProxyConnection(peer=peer)
            with self._lock:
                self.connections.append(conn)
                too_many = len(self.connections) > PROXY_MAX_CONNECTIONS
            if too_many:
                conn.error = "connection limit of the hostile proxy reached"
                sock.close()
                conn.finished.set()
                continue
            thread = threading.Thread(target=self._serve, args=(sock, conn), name="hostile-proxy-conn", daemon=True)
            self._threads.append(thread)
            thread.start()

    def _read_head(self, sock: socket.socket, conn: ProxyConnection) -> bytes | None:
        """The CONNECT head (recorded); returns bytes that came after it, or None when there was no head."""
        buf = bytearray()
        deadline = time.monotonic() + PROXY_IO_TIMEOUT
        sock.settimeout(0.2)
        while b"\r\n\r\n" not in buf:
            if self._stop.is_set() or time.monotonic() > deadline or len(buf) > HEAD_LIMIT:
                conn.error = f"no complete head: {bytes(buf[:200])!r}"
                return None
            try:
                data = sock.recv(4096)
            except socket.timeout:
                continue
            if not data:
                conn.error = f"EOF inside the head: {bytes(buf[:200])!r}"
                return None
            buf += data
        end = buf.index(b"\r\n\r\n") + 4
        with self._lock:
            conn.head = bytes(buf[:end])
        return bytes(buf[end:])

    def _hold(self, sock: socket.socket) -> None:
        """Say nothing more; read (and drop) until the bridge closes, `stop`, or the connection's lifetime."""
        deadline = time.monotonic() + self.lifetime
        sock.settimeout(0.2)
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                if not sock.recv(65536):
                    return
            except socket.timeout:
                continue

    def _serve(self, sock: socket.socket, conn: ProxyConnection) -> None:
        try:
            rest = self._read_head(sock, conn)
            if rest is None:
                return
            sock.settimeout(PROXY_IO_TIMEOUT)
            sent_credentials = bool(conn.header("proxy-authorization"))
            mode = self.mode
            if mode == "refuse":
                sock.sendall(_answer("403 Forbidden", body=b"CONNECT to this host is not allowed here\n"))
            elif mode in ("want_auth", "reject_credentials"):
                body = b"credentials rejected\n" if sent_credentials else b"proxy authentication required\n"
                sock.sendall(_answer("407 Proxy Authentication Required", [f"Proxy-Authenticate: {self.authenticate}"],
                                     body))
            elif mode == "bad_gateway":
                sock.sendall(_answer("502 Bad Gateway", body=b"the proxy could not reach the host\n"))
            elif mode == "garbage":
                # what a mistyped via pointing at an SSH server sees; the blank line ends it as a "head" too, so a
                # bridge that parses whole heads decides as soon as one that reads the status line does
                sock.sendall(b"SSH-2.0-OpenSSH_9.2p1\r\n\x00\x00\x01\x14\x0a\x14\xde\xad\xbe\xef" + bytes(range(256))
                             + b"\r\n\r\n")
                self._hold(sock)
            elif mode == "overlong":
                sock.sendall(b"HTTP/1.1 200 OK\r\n")
                count = self.overlong // 118 + 1   # each filler line is 118 bytes
                try:
                    sock.sendall(b"".join(b"X-Filler-%05d: " % i + b"a" * 100 + b"\r\n" for i in range(count))
                                 + b"\r\n")
                except OSError:  # the bridge stopped reading and closed: what it should do
                    return
                self._hold(sock)
            elif mode == "silent":
                self._hold(sock)
            elif mode == "close":
                pass
            elif mode == "close_after_200":
                sock.sendall(OK_200)
            elif mode in ("record", "close_mid_tunnel"):
                self._relay(sock, conn, rest)
        except OSError as exc:
            conn.error = f"{type(exc).__name__}: {exc}"
        finally:
            sock.close()
            conn.finished.set()

    def _relay(self, sock: socket.socket, conn: ProxyConnection, rest: bytes) -> None:
        import selectors
        try:
            upstream = socket.create_connection(self.target, timeout=PROXY_IO_TIMEOUT)
        except OSError as exc:
            conn.error = f"target {self.target}: {exc}"
            sock.sendall(_answer("502 Bad Gateway", body=b"target unreachable\n"))
            return
        with upstream:
            if self.dribble > 0:
                for i in range(len(self.ok_answer)):
                    sock.sendall(self.ok_answer[i:i + 1])
                    time.sleep(self.dribble)
            else:
                sock.sendall(self.ok_answer)
            if rest:
                upstream.sendall(rest)
                conn.relayed_up += len(rest)
            sock.setblocking(True)
            upstream.setblocking(True)
            sock.settimeout(PROXY_IO_TIMEOUT)
            upstream.settimeout(PROXY_IO_TIMEOUT)
            sel = selectors.DefaultSelector()
            sel.register(sock, selectors.EVENT_READ, upstream)
            sel.register(upstream, selectors.EVENT_READ, sock)
            deadline = time.monotonic() + self.lifetime
            open_ends = 2
            try:
                while open_ends and not self._stop.is_set() and time.monotonic() < deadline:
                    if self.mode == "close_mid_tunnel" and self.cut.is_set():
                        return
                    for key, _ in sel.select(timeout=0.1):
                        src, dst = key.fileobj, key.data
                        data = src.recv(65536)
                        if not data:
                            sel.unregister(src)
                            open_ends -= 1
                            try:
                                dst.shutdown(socket.SHUT_WR)
                            except OSError:
                                pass
                            continue
                        dst.sendall(data)
                        if src is sock:
                            conn.relayed_up += len(data)
                        else:
                            conn.relayed_down += len(data)
            finally:
                sel.close()


def parse_connect(head: bytes) -> tuple[str, list[tuple[str, str]]]:
    """(request line, [(name, value)]) of a recorded head."""
    lines = head.decode("latin-1").split("\r\n")
    headers = []
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers.append((name, value.strip()))
    return lines[0], headers

