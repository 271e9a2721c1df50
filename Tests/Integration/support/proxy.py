"""Helpers for the `accept = "http-proxy"` listener tests: an HTTP/1.1 keep-alive gateway over TLS that records
every request, a recording fake proxy (to pin down what real clients send, without the bridge), raw proxy
clients (request heads, CONNECT tunnels, response parsing), proxy listener configs and record checks.

Every server here is started by a fixture (or a `with` block) and stopped by its own handle; each has a cap on
connections and a timeout on every socket operation. Subprocesses (curl, java) run under
`subprocess.run(..., timeout=...)` with the environment's proxy variables removed.
"""

from __future__ import annotations

import base64
import hashlib
import os
import selectors
import socket
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .bridge import RECORD_KEYS, UPSTREAM_KEYS
from .servers import ThreadedServer
from .legacy import (DOWNSTREAM_KEYS, LEGACY_CIPHERS, MODULE, SANDBOX, VERSIONS, client_context,
                     merchant_upstream)

LISTENER = "proxy"
MODULE_PORT = 8443
MODULE_ROUTE = f"{MODULE}:{MODULE_PORT}"
CARD = "4111111111111111"
QUERY_MARKER = f"card={CARD}"
IO_TIMEOUT = 20.0
HEAD_LIMIT = 64 * 1024
PROXY_DOWNSTREAM_KEYS = DOWNSTREAM_KEYS | {"connect", "request_host", "http_status"}
PROXY_AUTH_USER = "merchant"
PROXY_AUTH_PASSWORD = "s3cret-proxy-pass"
HOP_BY_HOP = ("proxy-connection", "proxy-authorization", "keep-alive")


# --- configs ---------------------------------------------------------------------------------------------------

def default_routes() -> dict:
    """sandbox.paygent.test (any default port) → gw; module.paygent.test:8443 (that port only) → gw2."""
    return {SANDBOX: "gw", MODULE_ROUTE: "gw2"}


def proxy_listener(lpki, *, routes: dict | None = None, identity: str = "mint", **keys) -> dict:
    """A `[[listener]]` override dict for `base_config(listener=...)`: accept = "http-proxy", minting with the
    Mint CA, TLS 1.0 allowed for CONNECT interception, no `upstream` default (None removes a key)."""
    listener: dict = {"name": LISTENER, "accept": "http-proxy", "upstream": None, "min_version": "TLS1.0",
                      "routes": default_routes() if routes is None else routes}
    if identity == "mint":
        listener.update(ca_cert=str(lpki.mint_ca), ca_key=str(lpki.mint_ca_key))
    elif identity == "static":
        listener.update(cert=str(lpki.listener_cert), key=str(lpki.listener_key))
    elif identity != "none":
        raise ValueError(identity)
    listener.update(keys)
    return {k: v for k, v in listener.items()}


def proxy_config_kwargs(pki, lpki, gw_address: str, gw2_address: str | None = None, **listener_keys) -> dict:
    """base_config keyword arguments: gw (with the merchant's client certificate), gw2, the proxy listener."""
    return dict(upstream=merchant_upstream(pki),
                extra_upstreams=[dict(merchant_upstream(pki), name="gw2", address=gw2_address or gw_address)],
                listener=proxy_listener(lpki, **listener_keys))


def write_auth_file(path: Path, users: dict[str, str]) -> Path:
    path.write_text("".join(f"{u}:{p}\n" for u, p in users.items()))
    path.chmod(0o600)
    path.chmod(0o600)
    return path


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


# --- records -----------------------------------------------------------------------------------------------------

def check_proxy_record(record: dict) -> None:
    """Shape of a record from an http-proxy listener: every common key plus downstream.connect / request_host /
    http_status."""
    assert set(record) >= RECORD_KEYS | {"hint"}, f"missing keys {(RECORD_KEYS | {'hint'}) - set(record)} in {record}"
    assert set(record["upstream"]) >= UPSTREAM_KEYS, f"missing upstream keys in {record}"
    ds = record["downstream"]
    assert set(ds) >= PROXY_DOWNSTREAM_KEYS, f"missing downstream keys {PROXY_DOWNSTREAM_KEYS - set(ds)} in {record}"
    assert record["listener"] == LISTENER, record
    assert record["direction"] == "outbound", record
    assert ds["http_status"] is None or isinstance(ds["http_status"], int), record
    assert isinstance(record["session"], str) and record["session"], record


# --- subprocess clients ------------------------------------------------------------------------------------------

def clean_env() -> dict:
    """The environment without proxy variables (they would change what curl/Java/requests do)."""
    return {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}


def run(args: list[str], *, timeout: float = 30.0, stdin: bytes = b"") -> subprocess.CompletedProcess:
    try:
        return subprocess.run(args, input=stdin, capture_output=True, timeout=timeout, env=clean_env())
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"{args[0]} did not finish within {timeout} s; stdout tail={(exc.stdout or b'')[-500:]!r}"
                             f" stderr tail={(exc.stderr or b'')[-2000:]!r}") from None


def curl(b, *args: str, timeout: float = 30.0) -> subprocess.CompletedProcess:
    """curl through the bridge's proxy listener (`-x http://127.0.0.1:PORT`), quiet, bounded."""
    host, port = b.listen
    return run(["curl", "-sS", "--max-time", str(int(timeout - 5)), "-x", f"http://{host}:{port}", *args],
               timeout=timeout)


def legacy_curl_flags(lpki) -> list[str]:
    return ["--tlsv1.0", "--tls-max", "1.0", "--ciphers", LEGACY_CIPHERS, "--cacert", str(lpki.mint_ca)]


# --- raw proxy clients ----------------------------------------------------------------------------------------------

@dataclass
class Response:
    version: str
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes
    raw_head: bytes

    def header(self, name: str) -> str | None:
        values = [v for k, v in self.headers if k.lower() == name.lower()]
        return ", ".join(values) if values else None

    def has(self, name: str) -> bool:
        return any(k.lower() == name.lower() for k, _ in self.headers)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def parse_head(head: bytes) -> tuple[str, int, str, list[tuple[str, str]]]:
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    assert len(parts) >= 2 and parts[0].startswith("HTTP/1."), f"not an HTTP/1.x status line: {lines[0]!r}"
    headers = []
    for line in lines[1:]:
        if line:
            assert ":" in line, f"malformed response header {line!r}"
            k, v = line.split(":", 1)
            headers.append((k.strip(), v.strip()))
    return parts[0], int(parts[1]), parts[2] if len(parts) > 2 else "", headers


class SockReader:
    """Buffered reads over a (TLS or TCP) socket: head up to CRLFCRLF, exact lengths, lines."""

    def __init__(self, sock, timeout: float = IO_TIMEOUT):
        self.sock = sock
        self.buf = bytearray()
        self.timeout = timeout
        sock.settimeout(timeout)

    def _fill(self) -> bool:
        try:
            data = self.sock.recv(65536)
        except ssl.SSLError as exc:
            if "eof" in str(exc).lower():
                return False
            raise
        except ConnectionResetError:
            return False
        if not data:
            return False
        self.buf += data
        return True

    def until(self, marker: bytes, limit: int = HEAD_LIMIT) -> bytes:
        while marker not in self.buf:
            if len(self.buf) > limit:
                raise AssertionError(f"no {marker!r} within {limit} bytes: {bytes(self.buf[:200])!r}")
            if not self._fill():
                raise EOFError(f"EOF before {marker!r}; had {bytes(self.buf[:300])!r}")
        idx = self.buf.index(marker) + len(marker)
        out = bytes(self.buf[:idx])
        del self.buf[:idx]
        return out

    def exact(self, size: int) -> bytes:
        while len(self.buf) < size:
            if not self._fill():
                raise EOFError(f"EOF after {len(self.buf)} of {size} bytes")
        out = bytes(self.buf[:size])
        del self.buf[:size]
        return out

    def rest(self) -> bytes:
        while self._fill():
            pass
        out = bytes(self.buf)
        self.buf.clear()
        return out


def read_response(reader: SockReader, *, method: str = "GET") -> Response:
    """One HTTP/1.x response: Content-Length, chunked, or (no length) until the peer closes."""
    head = reader.until(b"\r\n\r\n")
    version, status, reason, headers = parse_head(head[:-4])
    resp = Response(version, status, reason, headers, b"", head)
    if method == "CONNECT" and 200 <= status < 300 or method == "HEAD" or status in (204, 304) or status < 200:
        return resp
    te = (resp.header("transfer-encoding") or "").lower()
    if "chunked" in te:
        body = bytearray()
        while True:
            size_line = reader.until(b"\r\n", limit=1024)
            size = int(size_line.split(b";")[0].strip(), 16)
            if size == 0:
                while reader.until(b"\r\n", limit=8192) != b"\r\n":  # trailers
                    pass
                break
            body += reader.exact(size)
            assert reader.exact(2) == b"\r\n", "chunk not followed by CRLF"
        resp.body = bytes(body)
    elif resp.header("content-length") is not None:
        resp.body = reader.exact(int(resp.header("content-length")))
    else:
        resp.body = reader.rest()
    return resp


def request_bytes(method: str, target: str, headers: list[tuple[str, str]] | None = None, body: bytes = b"",
                  version: str = "HTTP/1.1") -> bytes:
    lines = [f"{method} {target} {version}"] + [f"{k}: {v}" for k, v in (headers or [])]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def open_proxy(b, timeout: float = IO_TIMEOUT, receive_buffer: int | None = None) -> socket.socket:
    """A connection to the proxy listener; `receive_buffer` (SO_RCVBUF, set before connecting) makes a merchant
    whose small window keeps what the bridge sends queued inside the bridge."""
    host, port = b.listen[0], b.listen[1]
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    if receive_buffer:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    try:
        sock.connect((host, port))
    except BaseException:
        sock.close()
        raise
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def bridge_answer(b, data: bytes, *, timeout: float = 10.0) -> tuple[Response, bool]:
    """Send `data` on a fresh proxy connection and read the bridge's own answer. Returns (response, closed):
    closed is True when the bridge closed the connection after the response (within `timeout`)."""
    with open_proxy(b, timeout) as sock:
        sender = _send_in_background(sock, data)
        reader = SockReader(sock, timeout)
        resp = read_response(reader, method=data.split(b" ", 1)[0].decode("latin-1", "replace"))
        try:
            closed = reader.rest() == b""
        except (socket.timeout, TimeoutError):
            closed = False
        sender.join(timeout)
        return resp, closed


def _send_in_background(sock: socket.socket, data: bytes) -> threading.Thread:
    """Send `data` while the caller reads (a large head must not deadlock against an early answer); a bridge that
    answers and closes early makes the send fail, which is fine."""
    def send():
        try:
            sock.sendall(data)
        except OSError:
            pass
    thread = threading.Thread(target=send, name="proxy-sender", daemon=True)
    thread.start()
    return thread


def connect_tunnel(b, authority: str, *, headers: list[tuple[str, str]] | None = None,
                   ctx: ssl.SSLContext | None = None, sni: str | None = None, version: str = "HTTP/1.1",
                   timeout: float = IO_TIMEOUT, receive_buffer: int | None = None) -> tuple[ssl.SSLSocket, Response]:
    """CONNECT `authority` through the proxy, expect 2xx, then TLS with `ctx` (SNI = the host by default)."""
    sock = open_proxy(b, timeout, receive_buffer)
    try:
        host = authority.rsplit(":", 1)[0]
        sock.sendall(request_bytes("CONNECT", authority, [("Host", authority)] + list(headers or []),
                                   version=version))
        # read the head byte by byte: nothing of the TLS stream may be consumed here
        head = bytearray()
        while not head.endswith(b"\r\n\r\n"):
            chunk = sock.recv(1)
            if not chunk:
                raise EOFError(f"EOF in the CONNECT answer after {bytes(head)!r}")
            head += chunk
            assert len(head) < HEAD_LIMIT, "CONNECT answer head too long"
        v, status, reason, hdrs = parse_head(bytes(head[:-4]))
        resp = Response(v, status, reason, hdrs, b"", bytes(head))
        assert 200 <= status < 300, f"CONNECT {authority} answered {bytes(head)!r}"
        ctx = ctx or client_context("TLSv1", cafile=None)
        return ctx.wrap_socket(sock, server_hostname=sni or host), resp
    except BaseException:
        sock.close()
        raise


def legacy_tunnel_context(lpki, version: str = "TLSv1") -> ssl.SSLContext:
    """A merchant-like client pinned to `version`, verifying the minted certificate against the Mint CA."""
    return client_context(version, cafile=lpki.mint_ca,
                          ciphers=LEGACY_CIPHERS if VERSIONS[version] < ssl.TLSVersion.TLSv1_2 else None)


# --- the HTTP gateway -------------------------------------------------------------------------------------------------

@dataclass
class SeenRequest:
    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]
    body_length: int
    body_digest: str
    chunked: bool

    def header(self, name: str) -> str | None:
        values = [v for k, v in self.headers if k.lower() == name.lower()]
        return ", ".join(values) if values else None

    def names(self) -> set[str]:
        return {k.lower() for k, _ in self.headers}


@dataclass
class GatewayConnection:
    peer: tuple
    index: int
    handshake_error: str | None = None
    tls_version: str | None = None
    sni: str | None = None
    client_cert_subject: tuple | None = None
    requests: list[SeenRequest] = field(default_factory=list)
    error: str | None = None
    finished: threading.Event = field(default_factory=threading.Event)

    @property
    def client_cn(self) -> str | None:
        for rdn in self.client_cert_subject or ():
            for key, value in rdn:
                if key == "commonName":
                    return value
        return None


class HttpGateway(ThreadedServer):
    """A blocking HTTPS/1.1 server with keep-alive, thread per connection (at most MAX_CONNECTIONS).

    Answers every request on the same connection until the client closes (or sends `Connection: close`):
      POST|PUT .../echo[?...]  200, the request body
      .../chunked              200, a chunked body "<name> <method> <target>" in pieces
      .../slow                 like the default, after 0.4 s
      .../close                like the default, then `Connection: close` and close
      anything else            200, "<name> <method> <target> conn=<i> req=<j>\\n"
    Request bodies may be Content-Length or chunked. Every response carries `X-Gateway: <name>`.
    Each connection's `GatewayConnection` lists the requests seen (line, headers, body digest).
    """

    def __init__(self, context: ssl.SSLContext, *, name: str = "gateway"):
        super().__init__(name=name)
        self.context = context

    def _new_connection(self, peer: tuple, index: int) -> "GatewayConnection":
        return GatewayConnection(peer=peer, index=index)

    def requests(self) -> list[SeenRequest]:
        with self._lock:
            return [r for c in self.connections for r in c.requests]

    # serving -------------------------------------------------------------------------------------------------------
    def _serve(self, sock: socket.socket, conn: GatewayConnection) -> None:
        sock.settimeout(15.0)
        try:
            try:
                tls = self.context.wrap_socket(sock, server_side=True)
            except (ssl.SSLError, OSError) as exc:
                conn.handshake_error = f"{type(exc).__name__}: {exc}"
                return
            with tls:
                conn.tls_version = tls.version()
                conn.sni = getattr(tls, "seen_sni", None)
                peercert = tls.getpeercert()
                conn.client_cert_subject = peercert.get("subject") if peercert else None
                reader = _StoppableReader(tls, self._stop)
                while not self._stop.is_set():
                    head = reader.head()
                    if head is None:
                        return
                    keep = self._answer(tls, reader, head, conn)
                    if not keep:
                        tls.settimeout(1.0)
                        try:
                            tls.unwrap()
                        except (ssl.SSLError, OSError):
                            pass
                        return
        except (ssl.SSLError, OSError, ValueError, EOFError, AssertionError) as exc:
            conn.error = f"{type(exc).__name__}: {exc}"
        finally:
            sock.close()
            conn.finished.set()

    def _answer(self, tls, reader: "_StoppableReader", head: bytes, conn: GatewayConnection) -> bool:
        lines = head.decode("latin-1").split("\r\n")
        method, target, version = lines[0].split(" ")
        headers = [(k.strip(), v.strip()) for k, v in (l.split(":", 1) for l in lines[1:] if l)]
        hmap = {}
        for k, v in headers:
            hmap.setdefault(k.lower(), []).append(v)
        chunked = "chunked" in ",".join(hmap.get("transfer-encoding", [])).lower()
        if chunked:
            body = bytearray()
            while True:
                size = int(reader.until(b"\r\n").split(b";")[0].strip(), 16)
                if size == 0:
                    while reader.until(b"\r\n") != b"\r\n":
                        pass
                    break
                body += reader.exact(size)
                if reader.exact(2) != b"\r\n":
                    raise ValueError("chunk not followed by CRLF")
        else:
            body = reader.exact(int(hmap.get("content-length", ["0"])[0]))
        seen = SeenRequest(method, target, version, headers, len(body), hashlib.sha256(body).hexdigest(), chunked)
        with self._lock:
            conn.requests.append(seen)
        path = target.split("?", 1)[0]
        close = (version == "HTTP/1.0" or "close" in ",".join(hmap.get("connection", [])).lower()
                 or path.endswith("/close"))
        if path.endswith("/slow"):
            time.sleep(0.4)
        if method in ("POST", "PUT") and path.endswith("/echo"):
            reply = bytes(body)
        else:
            reply = f"{self.name} {method} {target} conn={conn.index} req={len(conn.requests)}\n".encode()
        extra = "Connection: close\r\n" if close else ""
        if path.endswith("/chunked"):
            pieces = [reply[i:i + 7] for i in range(0, len(reply), 7)]
            payload = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
            tls.sendall(f"HTTP/1.1 200 OK\r\nX-Gateway: {self.name}\r\nContent-Type: text/plain\r\n"
                        f"Transfer-Encoding: chunked\r\n{extra}\r\n".encode() + payload)
        else:
            tls.sendall(f"HTTP/1.1 200 OK\r\nX-Gateway: {self.name}\r\nContent-Type: application/octet-stream\r\n"
                        f"Content-Length: {len(reply)}\r\n{extra}\r\n".encode() + reply)
        return not close


class _StoppableReader:
    """Reads from a TLS socket in 0.2 s slices so the server notices `stop`; bounded by IO_TIMEOUT per request."""

    def __init__(self, tls, stop: threading.Event):
        self.tls = tls
        self.stop = stop
        self.buf = bytearray()
        tls.settimeout(0.2)

    def _fill(self) -> bool:
        deadline = time.monotonic() + IO_TIMEOUT
        while not self.stop.is_set() and time.monotonic() < deadline:
            try:
                data = self.tls.recv(65536)
            except socket.timeout:
                continue
            except ssl.SSLError as exc:
                if "eof" in str(exc).lower():
                    return False
                raise
            if not data:
                return False
            self.buf += data
            return True
        return False

    def head(self) -> bytes | None:
        """The next request head (without CRLFCRLF), or None at a clean end between requests."""
        while b"\r\n\r\n" not in self.buf:
            if len(self.buf) > HEAD_LIMIT:
                raise ValueError("request head too long")
            if not self._fill():
                if self.buf:
                    raise EOFError(f"EOF inside a request head: {bytes(self.buf[:200])!r}")
                return None
        idx = self.buf.index(b"\r\n\r\n")
        out = bytes(self.buf[:idx])
        del self.buf[:idx + 4]
        return out

    def until(self, marker: bytes) -> bytes:
        while marker not in self.buf:
            if len(self.buf) > HEAD_LIMIT or not self._fill():
                raise EOFError(f"no {marker!r}: {bytes(self.buf[:200])!r}")
        idx = self.buf.index(marker) + len(marker)
        out = bytes(self.buf[:idx])
        del self.buf[:idx]
        return out

    def exact(self, size: int) -> bytes:
        while len(self.buf) < size:
            if not self._fill():
                raise EOFError(f"EOF after {len(self.buf)} of {size} body bytes")
        out = bytes(self.buf[:size])
        del self.buf[:size]
        return out


# --- a CONNECT relay, for TLS tools that cannot use the proxy themselves --------------------------------------------

@dataclass
class RelayedConnection:
    peer: tuple
    finished: threading.Event = field(default_factory=threading.Event)
    status: int | None = None       # the bridge's answer to the CONNECT
    error: str | None = None
    bytes_up: int = 0               # client → bridge, after the CONNECT answer
    bytes_down: int = 0


class ConnectRelay(ThreadedServer):
    """Turns each plain TCP connection accepted on 127.0.0.1 into `CONNECT authority` through a bridge's
    http-proxy listener (a well-formed HTTP/1.1 head with CRLFs and Host), then copies bytes both ways
    unchanged, so a TLS tool pointed at the relay handshakes with the bridge inside the tunnel.

    Why not the tool's own proxy support: testssl.sh 3.0.8's `--proxy` writes its CONNECT with bare LFs
    (which the bridge answers with 400, on purpose) and its openssl fallback CONNECTs to the IP literal
    (403). A connection the bridge does not answer with 2xx is closed at once and keeps its status, so a
    test can tell a refused CONNECT from a refused handshake. At most MAX_CONNECTIONS connections, each
    copied for at most `lifetime` seconds."""

    MAX_CONNECTIONS = 2000
    CHECKS_TRIPWIRE = False  # its clients are TLS tools; the bridge is what it dials, never what dials it

    def __init__(self, proxy: tuple[str, int], authority: str, *, name: str = "connect-relay",
                 lifetime: float = 60.0):
        super().__init__(name=name)
        self.proxy = proxy
        self.authority = authority
        self.lifetime = lifetime

    def not_established(self) -> list[RelayedConnection]:
        """Connections whose CONNECT the bridge did not answer with 2xx (or that failed before an answer)."""
        with self._lock:
            return [c for c in self.connections if c.status is None or not 200 <= c.status < 300]

    def _new_connection(self, peer: tuple, index: int) -> RelayedConnection:
        return RelayedConnection(peer=peer)

    def _serve(self, client: socket.socket, conn: RelayedConnection) -> None:
        upstream = None
        try:
            upstream = socket.create_connection(self.proxy, timeout=IO_TIMEOUT)
            upstream.sendall(request_bytes("CONNECT", self.authority, [("Host", self.authority)]))
            head = bytearray()  # byte by byte: the TLS stream after the head belongs to the client
            while not head.endswith(b"\r\n\r\n") and len(head) < HEAD_LIMIT:
                chunk = upstream.recv(1)
                if not chunk:
                    break
                head += chunk
            conn.status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else None
            if conn.status is None or not 200 <= conn.status < 300:
                conn.error = f"CONNECT answered {bytes(head[:200])!r}"
                return
            self._copy(client, upstream, conn)
        except (OSError, ValueError, IndexError) as exc:
            conn.error = f"{type(exc).__name__}: {exc}"
        finally:
            for sock in (client, upstream):
                if sock is not None:
                    sock.close()
            conn.finished.set()

    def _copy(self, client: socket.socket, upstream: socket.socket, conn: RelayedConnection) -> None:
        """Both directions until either side closes (TLS cannot half-close), the relay stops, or `lifetime`."""
        deadline = time.monotonic() + self.lifetime
        with selectors.DefaultSelector() as sel:
            sel.register(client, selectors.EVENT_READ, upstream)
            sel.register(upstream, selectors.EVENT_READ, client)
            while not self._stop.is_set() and time.monotonic() < deadline:
                for key, _ in sel.select(timeout=0.2):
                    data = key.fileobj.recv(65536)
                    if not data:
                        return
                    key.data.settimeout(IO_TIMEOUT)
                    key.data.sendall(data)
                    if key.fileobj is client:
                        conn.bytes_up += len(data)
                    else:
                        conn.bytes_down += len(data)


# --- a recording fake proxy (fixture self-checks: what do real clients send?) -------------------------------------------

class RecordingProxy:
    """Plain TCP on 127.0.0.1: records each connection's request heads and answers each with a fixed response
    (default: 403 with a body, keep-alive so a client can send its next request). At most 16 connections,
    10 requests each, 10 s per read. No upstream is ever contacted."""

    def __init__(self, answer: bytes | None = None):
        self.answer = answer or (b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 4\r\n\r\nnope")
        self.heads: list[list[bytes]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._sock = None
        self.port = None

    def start(self) -> "RecordingProxy":
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.1)
        self.port = self._sock.getsockname()[1]
        t = threading.Thread(target=self._accept, daemon=True, name="recording-proxy")
        t.start()
        self._threads.append(t)
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in list(self._threads):
            t.join(timeout=5)
        self._sock.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self._sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self._lock:
                if len(self.heads) >= 16:
                    sock.close()
                    continue
                heads: list[bytes] = []
                self.heads.append(heads)
            t = threading.Thread(target=self._serve, args=(sock, heads), daemon=True)
            self._threads.append(t)
            t.start()

    def _serve(self, sock, heads: list[bytes]) -> None:
        with sock:
            reader = SockReader(sock, 10.0)
            try:
                for _ in range(10):
                    head = reader.until(b"\r\n\r\n")
                    length = 0
                    for line in head.split(b"\r\n"):
                        if line.lower().startswith(b"content-length:"):
                            length = int(line.split(b":", 1)[1])
                    if length:
                        reader.exact(length)
                    with self._lock:
                        heads.append(head)
                    sock.sendall(self.answer)
            except (EOFError, OSError, AssertionError, ValueError):
                return


# --- a Java (HttpURLConnection) client through a proxy ------------------------------------------------------------

JAVA_PROXY_CLIENT = r"""
import java.io.*;
import java.net.*;
import java.nio.file.*;
import java.security.MessageDigest;
import javax.net.ssl.HttpsURLConnection;

// java ProxyClient.java <body file or -> <url>...
// Fetches each URL with HttpURLConnection (POST of the body file when given, else GET); the proxy comes from
// the https.proxyHost/http.proxyHost system properties. Prints <i>.key=value lines.
public class ProxyClient {
    public static void main(String[] a) throws Exception {
        byte[] body = a[0].equals("-") ? null : Files.readAllBytes(Paths.get(a[0]));
        for (int i = 1; i < a.length; i++) {
            String p = (i - 1) + ".";
            try {
                HttpURLConnection c = (HttpURLConnection) new URL(a[i]).openConnection();
                c.setConnectTimeout(10000);
                c.setReadTimeout(15000);
                if (body != null) {
                    c.setRequestMethod("POST");
                    c.setDoOutput(true);
                    c.setFixedLengthStreamingMode(body.length);
                    try (OutputStream out = c.getOutputStream()) { out.write(body); }
                }
                int status = c.getResponseCode();
                System.out.println(p + "status=" + status);
                System.out.println(p + "via_proxy=" + c.usingProxy());
                if (c instanceof HttpsURLConnection) {
                    System.out.println(p + "cipher=" + ((HttpsURLConnection) c).getCipherSuite());
                }
                InputStream in = status < 400 ? c.getInputStream() : c.getErrorStream();
                byte[] data = in == null ? new byte[0] : in.readAllBytes();
                StringBuilder hex = new StringBuilder();
                for (byte b : MessageDigest.getInstance("SHA-256").digest(data)) hex.append(String.format("%02x", b));
                System.out.println(p + "sha256=" + hex);
                System.out.println(p + "length=" + data.length);
                System.out.println(p + "gateway=" + c.getHeaderField("X-Gateway"));
            } catch (Exception e) {
                System.out.println(p + "error=" + e);
            }
        }
    }
}
"""


def java_truststore(workdir: Path, ca: Path) -> Path:
    from .legacy import run_tool
    workdir.mkdir(parents=True, exist_ok=True)
    store = workdir / "trust.p12"
    if not store.exists():
        result = run_tool(["keytool", "-importcert", "-noprompt", "-alias", "ca", "-file", str(ca), "-keystore",
                           str(store), "-storetype", "PKCS12", "-storepass", "changeit"], timeout=60)
        assert result.returncode == 0, result.stderr.decode(errors="replace")
    return store


def java_proxy_client(workdir: Path, proxy: tuple[str, int], trusted_ca: Path, urls: list[str], *,
                      body: Path | None = None, protocol: str = "TLSv1", timeout: float = 60.0) -> dict:
    """Run ProxyClient.java with https.proxyHost/http.proxyHost = `proxy`, a PKCS#12 trust store holding
    `trusted_ca`, client protocols = `protocol` and TLS 1.0/1.1 re-enabled (legacy.JAVA_SECURITY).
    Returns {"0.status": ..., ...} plus "exit" and "stderr"."""
    from .legacy import JAVA_SECURITY
    workdir.mkdir(parents=True, exist_ok=True)
    source = workdir / "ProxyClient.java"
    source.write_text(JAVA_PROXY_CLIENT)
    security = workdir / "java.security.override"
    security.write_text(JAVA_SECURITY)
    store = java_truststore(workdir, trusted_ca)
    host, port = proxy
    args = ["java", f"-Djava.security.properties={security}", f"-Djavax.net.ssl.trustStore={store}",
            "-Djavax.net.ssl.trustStorePassword=changeit", "-Djavax.net.ssl.trustStoreType=PKCS12",
            f"-Djdk.tls.client.protocols={protocol}", f"-Dhttps.proxyHost={host}", f"-Dhttps.proxyPort={port}",
            f"-Dhttp.proxyHost={host}", f"-Dhttp.proxyPort={port}", "-Dhttp.nonProxyHosts=",
            str(source), str(body) if body else "-", *urls]
    result = run(args, timeout=timeout)
    out = {"exit": str(result.returncode), "stderr": result.stderr.decode(errors="replace")[-3000:]}
    for line in result.stdout.decode(errors="replace").splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            out[k] = v
    return out


def assert_bridge_error(resp: Response, closed: bool, status: int | tuple[int, ...]) -> None:
    """An error the bridge answered itself: the status, a short text/plain body, `Connection: close`, and the
    connection closed after it."""
    statuses = status if isinstance(status, tuple) else (status,)
    assert resp.status in statuses, f"expected {statuses}, got {resp.status} {resp.reason}: {resp.raw_head!r} {resp.body[:300]!r}"
    assert (resp.header("content-type") or "").lower().startswith("text/plain"), resp.headers
    assert "close" in (resp.header("connection") or "").lower(), f"no Connection: close in {resp.headers}"
    assert 0 < len(resp.body) <= 2048, f"expected a short explanation, got {len(resp.body)} bytes: {resp.body[:200]!r}"
    assert closed, "the bridge kept the connection open after its error response"


def assert_refusal_record(record: dict, status: int, *, connect: str | None = None,
                          request_host: str | None = None) -> None:
    check_proxy_record(record)
    ds = record["downstream"]
    assert ds["http_status"] == status, record
    if connect is not None:
        assert (ds["connect"] or "").lower() == connect.lower(), record
    if request_host is not None:
        assert (ds["request_host"] or "").lower() == request_host.lower(), record
    assert record["upstream"]["protocol"] is None, f"no gateway session may exist for a refusal: {record}"
    assert record["bytes"]["up"] == 0, f"bytes went upstream for a refusal: {record}"


def ask(b, data: bytes, *, timeout: float = IO_TIMEOUT) -> Response:
    """Send one request on a fresh proxy connection, read one response, close from this side."""
    with open_proxy(b, timeout) as sock:
        sock.sendall(data)
        return read_response(SockReader(sock, timeout), method=data.split(b" ", 1)[0].decode("latin-1"))
