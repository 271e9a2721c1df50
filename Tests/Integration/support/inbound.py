"""Helpers for the inbound (gateway → merchant) tests: the merchant-side PKI, the merchant's legacy web server
("backend", plain HTTP or TLS 1.0-only HTTPS, optionally reading a PROXY protocol header), a gateway-like
HTTPS client, inbound configs and record checks.

Every server here is started by a fixture and stopped by its own handle; each has a connection cap and every
socket operation a timeout. Subprocesses (curl) run under `subprocess.run(..., timeout=...)`.
"""

from __future__ import annotations

import hashlib
import socket
import ssl
import struct
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from . import certs
from .bridge import RECORD_KEYS, free_port, recv_exact
from .servers import ThreadedServer
from .legacy import DOWNSTREAM_KEYS, LEGACY_CIPHERS, TLS_CLOSES, TLS_PHASES, run_tool

NOTIFY_NAME = "notify.merchant.test"     # the merchant's public name, presented to the gateway
BACKEND_NAME = "merchant.local"          # the legacy web server's name (ca_file + server_name variant)
BACKEND = "merchant-web"
LISTENER = "notify"
BACKEND_KEYS = {"name", "address", "server_name", "protocol", "cipher", "resumed", "peer", "peer_issuer",
                "verify", "client_cert", "close_notify"}
INBOUND_RECORD_KEYS = (RECORD_KEYS - {"upstream"}) | {"backend", "hint"}
PROXY_V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
IO_TIMEOUT = 20.0
MARKER = "NOTIFY-MARKER-7f3a9c"


# --- PKI ------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class InboundPki:
    directory: Path
    public_ca: Path             # "Merchant Public CA": what the gateway trusts for the merchant's public name
    public_cert: Path           # CN=notify.merchant.test, SAN notify.merchant.test + 127.0.0.1
    public_key: Path
    backend_self_signed: Path   # the legacy server's self-signed certificate (CN=merchant.local): pinned
    backend_self_signed_key: Path
    backend_other_self_signed: Path  # another self-signed certificate: a wrong pin
    backend_ca: Path            # "Backend CA": issues backend_cert (ca_file variant)
    backend_cert: Path          # CN=merchant.local, SAN merchant.local, issued by Backend CA
    backend_key: Path


def generate(directory: Path) -> InboundPki:
    directory.mkdir(parents=True, exist_ok=True)

    def write(name: str, data: bytes, mode: int = 0o644) -> Path:
        path = directory / name
        path.write_bytes(data)
        path.chmod(mode)
        return path

    public_ca, public_ca_key = certs._ca("Merchant Public CA")
    public_key = certs._key()
    public = certs._leaf(certs._name(NOTIFY_NAME, "Merchant Public"), public_key, public_ca, public_ca_key,
                         dns=[NOTIFY_NAME], ips=["127.0.0.1"])
    backend_ca, backend_ca_key = certs._ca("Backend CA")
    backend_key = certs._key()
    backend = certs._leaf(certs._name(BACKEND_NAME, "Legacy Web"), backend_key, backend_ca, backend_ca_key,
                          dns=[BACKEND_NAME])
    ss_key = certs._key()
    self_signed = certs._leaf(certs._name(BACKEND_NAME, "Legacy Web Self-Signed"), ss_key, None, ss_key,
                              dns=[BACKEND_NAME], ips=["127.0.0.1"])
    other_key = certs._key()
    other = certs._leaf(certs._name(BACKEND_NAME, "Another Self-Signed"), other_key, None, other_key,
                        dns=[BACKEND_NAME], ips=["127.0.0.1"])
    return InboundPki(
        directory=directory,
        public_ca=write("merchant-public-ca.pem", certs._pem_cert(public_ca)),
        public_cert=write("merchant-public.pem", certs._pem_cert(public)),
        public_key=write("merchant-public.key", certs._pem_key(public_key), 0o600),
        backend_self_signed=write("backend-self-signed.pem", certs._pem_cert(self_signed)),
        backend_self_signed_key=write("backend-self-signed.key", certs._pem_key(ss_key), 0o600),
        backend_other_self_signed=write("backend-other.pem", certs._pem_cert(other)),
        backend_ca=write("backend-ca.pem", certs._pem_cert(backend_ca)),
        backend_cert=write("backend.pem", certs._pem_cert(backend)),
        backend_key=write("backend.key", certs._pem_key(backend_key), 0o600),
    )


def subject(pem: Path) -> str:
    return x509.load_pem_x509_certificate(Path(pem).read_bytes()).subject.rfc4514_string()


def legacy_server_context(ipki: InboundPki, *, variant: str = "pin", min_version=ssl.TLSVersion.TLSv1,
                          max_version=ssl.TLSVersion.TLSv1) -> ssl.SSLContext:
    """The merchant's old HTTPS server: TLS 1.0 only (min = max) at security level 0.

    variant "pin": the self-signed certificate; "ca": the Backend CA's merchant.local certificate."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if variant == "pin":
        ctx.load_cert_chain(str(ipki.backend_self_signed), str(ipki.backend_self_signed_key))
    else:
        ctx.load_cert_chain(str(ipki.backend_cert), str(ipki.backend_key))
    ctx.minimum_version = min_version
    ctx.maximum_version = max_version
    ctx.set_ciphers(LEGACY_CIPHERS)

    def remember_sni(sslobj, name, _ctx):
        sslobj.seen_sni = name
        return None

    ctx.sni_callback = remember_sni
    return ctx


def notify_like_context(ipki: InboundPki) -> ssl.SSLContext:
    """A Python server playing what the notify listener should be (fixture self-checks, no bridge): the
    merchant's public identity, TLS 1.2+, AEAD suites with forward secrecy only."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(ipki.public_cert), str(ipki.public_key))
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers("ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20")
    return ctx


# --- the merchant's web server ---------------------------------------------------------------------------------

@dataclass
class BackendConnection:
    """What the merchant's web server saw on one accepted TCP connection."""

    peer: tuple
    proxy_header: bytes | None = None     # the PROXY v1 line or v2 block, exactly as received
    handshake_error: str | None = None
    tls_version: str | None = None
    cipher: str | None = None
    sni: str | None = None
    first_bytes: bytes = b""              # the first application bytes after any PROXY header / handshake
    request_line: str | None = None
    raw_head: bytes = b""                 # the request head exactly as received, without the final CRLF CRLF
    headers: dict = field(default_factory=dict)
    body: bytes = b""
    body_sha256: str | None = None
    response: bytes = b""                 # what it answered (head + body)
    error: str | None = None
    finished: threading.Event = field(default_factory=threading.Event)

    @property
    def delivered(self) -> bool:
        return bool(self.first_bytes)


class HttpBackend(ThreadedServer):
    """A blocking, thread-per-connection HTTP/1.1 server on 127.0.0.1 (plain, or TLS with `context`).

    A PROXY protocol header (v1 or v2), if one arrives first, is read off the raw socket (before any TLS
    handshake) and kept; the request follows. `POST /echo` answers with the request body; any other request
    with "ACK <sha256 of body> <length> <marker-seen>\\n". Responses carry `Connection: close`, and the server
    closes afterwards (close_notify first on TLS, unless close_notify=False: then it just closes TCP).
    """

    MAX_CONNECTIONS = 32

    def __init__(self, context: ssl.SSLContext | None = None, *, port: int = 0, name: str = "backend",
                 close_notify: bool = True):
        super().__init__(name=name, port=port, backlog=32)
        self.context = context
        self.close_notify = close_notify

    def assert_nothing_delivered(self, grace: float = 0.3) -> None:
        """No application byte reached this server (a refused TLS handshake may have happened)."""
        time.sleep(grace)
        with self._lock:
            conns = list(self.connections)
        for conn in conns:
            conn.finished.wait(5)
        delivered = [c for c in conns if c.delivered or c.proxy_header]
        assert not delivered, f"{self.name} received data: {[(c.proxy_header, c.first_bytes[:80]) for c in delivered]}"

    # serving --------------------------------------------------------------------------------------------------
    def _new_connection(self, peer: tuple, index: int) -> "BackendConnection":
        return BackendConnection(peer=peer)

    def _read_proxy_header(self, sock: socket.socket) -> bytes | None:
        """Consume a PROXY v1/v2 header if the peer sent one first; never consumes anything else."""
        deadline = time.monotonic() + 2.0
        peeked = b""
        while len(peeked) < 12 and time.monotonic() < deadline:
            try:
                peeked = sock.recv(12, socket.MSG_PEEK)
            except socket.timeout:
                break
            if not peeked:
                return None
            if not (b"PROXY "[:len(peeked)] == peeked[:6] or PROXY_V2_SIGNATURE[:len(peeked)] == peeked):
                return None
            if len(peeked) < 12:
                time.sleep(0.01)
        if peeked.startswith(b"PROXY "):
            line = bytearray()
            while not line.endswith(b"\r\n") and len(line) < 108:  # v1 lines are at most 107 bytes
                data = sock.recv(1)
                if not data:
                    break
                line += data
            return bytes(line)
        if peeked == PROXY_V2_SIGNATURE:
            head = recv_exact(sock, 16)
            return head + recv_exact(sock, struct.unpack("!H", head[14:16])[0])
        return None

    def _serve(self, sock: socket.socket, conn: BackendConnection) -> None:
        sock.settimeout(IO_TIMEOUT)
        stream = sock
        try:
            conn.proxy_header = self._read_proxy_header(sock)
            if self.context is not None:
                try:
                    stream = self.context.wrap_socket(sock, server_side=True)
                except (ssl.SSLError, OSError) as exc:
                    conn.handshake_error = f"{type(exc).__name__}: {exc}"
                    return
                conn.tls_version = stream.version()
                conn.cipher = stream.cipher()[0]
                conn.sni = getattr(stream, "seen_sni", None)
            head = bytearray()
            while b"\r\n\r\n" not in head:
                data = stream.recv(65536)
                if not data:
                    conn.error = f"EOF in the request head after {len(head)} bytes"
                    return
                if not conn.first_bytes:
                    conn.first_bytes = bytes(data[:64])
                head += data
                if len(head) > 65536:
                    conn.error = "request head too long"
                    return
            head, body = bytes(head).split(b"\r\n\r\n", 1)
            conn.raw_head = head
            lines = head.decode("latin-1").split("\r\n")
            conn.request_line = lines[0]
            conn.headers = {k.strip().lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:] if ":" in l)}
            length = int(conn.headers.get("content-length", "0"))
            body = bytearray(body)
            while len(body) < length:
                data = stream.recv(min(1 << 20, length - len(body)))
                if not data:
                    conn.error = f"EOF after {len(body)} of {length} body bytes"
                    return
                body += data
            conn.body = bytes(body)
            conn.body_sha256 = hashlib.sha256(conn.body).hexdigest()
            parts = conn.request_line.split()
            if len(parts) >= 2 and parts[0] == "POST" and parts[1] == "/echo":
                reply = conn.body
            else:
                seen = "marker-seen" if MARKER.encode() in conn.body else "no-marker"
                reply = f"ACK {conn.body_sha256} {len(conn.body)} {seen}\n".encode()
            conn.response = (f"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nX-Backend: {self.name}\r\n"
                             f"Content-Length: {len(reply)}\r\nConnection: close\r\n\r\n").encode() + reply
            stream.sendall(conn.response)
            if isinstance(stream, ssl.SSLSocket) and self.close_notify:
                stream.settimeout(1.0)
                try:
                    stream.unwrap().close()
                except (ssl.SSLError, OSError):
                    pass
            elif not isinstance(stream, ssl.SSLSocket):
                try:
                    sock.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
            # a TLS server without close_notify: the fd is closed below, no SSL_shutdown
        except (ssl.SSLError, OSError, ValueError, EOFError) as exc:
            conn.error = f"{type(exc).__name__}: {exc}"
        finally:
            stream.close()  # a wrapped socket owns the descriptor; closing `sock` alone would not close it
            sock.close()
            conn.finished.set()


def ack_for(body: bytes) -> bytes:
    seen = "marker-seen" if MARKER.encode() in body else "no-marker"
    return f"ACK {hashlib.sha256(body).hexdigest()} {len(body)} {seen}\n".encode()


# --- the gateway's side -----------------------------------------------------------------------------------------

def form_body(size: int = 4096) -> bytes:
    """A payment-notice form of exactly `size` bytes (>= 200) with the distinctive marker in the middle."""
    head = "trading_id=ORD-000123&payment_type=01&amount=1980&pad1="
    middle = f"&notice_id={MARKER}&pad2="
    tail = "&payment_status=40&end=ok"
    fill = size - len(head) - len(middle) - len(tail)
    assert fill >= 0, size
    return (head + "a" * (fill // 2) + middle + "b" * (fill - fill // 2) + tail).encode()


def gateway_context(ipki: InboundPki, version: str = "TLSv1.2", *, max_version: str | None = None,
                    ciphers: str | None = None, cert: Path | None = None, key: Path | None = None) -> ssl.SSLContext:
    """The payment gateway as a TLS client: verifies the merchant's public certificate and name."""
    versions = {"TLSv1": ssl.TLSVersion.TLSv1, "TLSv1.1": ssl.TLSVersion.TLSv1_1,
                "TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3}
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = versions[version]
    ctx.maximum_version = versions[max_version or version]
    if ciphers:
        ctx.set_ciphers(ciphers)
    elif version in ("TLSv1", "TLSv1.1"):
        ctx.set_ciphers(LEGACY_CIPHERS)
    ctx.load_verify_locations(str(ipki.public_ca))
    if cert:
        ctx.load_cert_chain(str(cert), str(key) if key else None)
    return ctx


def gateway_connect(address: tuple[str, int], ctx: ssl.SSLContext, *, source: str | None = None,
                    sni: str = NOTIFY_NAME, timeout: float = IO_TIMEOUT) -> ssl.SSLSocket:
    raw = socket.create_connection(address, timeout=timeout,
                                   source_address=(source, 0) if source else None)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        return ctx.wrap_socket(raw, server_hostname=sni)
    except BaseException:
        raw.close()
        raise


def http_request(path: str, body: bytes, host: str = NOTIFY_NAME) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: gateway-notifier/1.0\r\n"
            f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n"
            f"Connection: close\r\n\r\n").encode() + body


@dataclass
class HttpResponse:
    status: int
    headers: dict
    body: bytes
    raw: bytes


def read_response(sock, timeout: float = IO_TIMEOUT) -> HttpResponse:
    """Read one HTTP/1.1 response with a Content-Length (the backend always sends one)."""
    sock.settimeout(timeout)
    data = bytearray()
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError(f"EOF in the response head after {bytes(data[:200])!r}")
        data += chunk
    head, body = bytes(data).split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:] if ":" in l)}
    length = int(headers["content-length"])
    body = bytearray(body)
    while len(body) < length:
        chunk = sock.recv(min(1 << 20, length - len(body)))
        if not chunk:
            raise EOFError(f"EOF after {len(body)} of {length} response body bytes")
        body += chunk
    return HttpResponse(int(lines[0].split()[1]), headers, bytes(body), head + b"\r\n\r\n" + bytes(body))


def post(address, ctx, path: str, body: bytes, *, source: str | None = None) -> tuple[HttpResponse, ssl.SSLSocket]:
    """One notification over a fresh TLS connection; returns the response and the (closed) socket."""
    with gateway_connect(address, ctx, source=source) as s:
        s.sendall(http_request(path, body))
        return read_response(s), s


def curl_post(port: int, ipki: InboundPki, body_file: Path, out_file: Path, path: str = "/notify",
              extra: tuple[str, ...] = ("--tlsv1.2",)) -> tuple[str, str]:
    """curl as the gateway: verifies the merchant's public name; returns (http code, negotiated TLS version)."""
    result = run_tool(["curl", "-sS", "--max-time", "20", *extra, "--cacert", str(ipki.public_ca),
                       "--resolve", f"{NOTIFY_NAME}:{port}:127.0.0.1", "-H", "Expect:",
                       "-H", "Content-Type: application/x-www-form-urlencoded",
                       "--data-binary", f"@{body_file}", "-o", str(out_file), "-w", "%{http_code}",
                       f"https://{NOTIFY_NAME}:{port}{path}"], timeout=30)
    return result.stdout.decode(errors="replace"), result.stderr.decode(errors="replace")


def refused_notification(address, ctx, *, source: str | None = None, body: bytes = b"") -> BaseException | bytes:
    """A session the bridge must refuse: handshake (maybe), send a notification, read. Returns the exception
    or the bytes read (which must be empty); with TLS 1.3 a refused client certificate only shows after the
    client's handshake returned."""
    try:
        with gateway_connect(address, ctx, source=source) as s:
            s.sendall(http_request("/notify", body or form_body(512)))
            s.settimeout(10)
            data = s.recv(64)
            if data:
                raise AssertionError(f"a refused session answered {data!r}")
            return data
    except (ssl.SSLError, ConnectionError, OSError) as exc:
        return exc


# --- configs ------------------------------------------------------------------------------------------------

def plain_backend(address: str, **keys) -> dict:
    entry = {"name": BACKEND, "address": address, "tls": "off"}
    entry.update(keys)
    return {k: v for k, v in entry.items() if v is not None}


def legacy_backend(address: str, ipki: InboundPki, *, variant: str = "pin", **keys) -> dict:
    """tls = "legacy": variant "pin" pins the self-signed certificate, "ca" verifies with ca_file + server_name."""
    entry = {"name": BACKEND, "address": address, "tls": "legacy"}
    if variant == "pin":
        entry["pin_sha256"] = fingerprint(ipki.backend_self_signed)
    elif variant == "ca":
        entry.update(ca_file=str(ipki.backend_ca), server_name=BACKEND_NAME)
    entry.update(keys)
    return {k: v for k, v in entry.items() if v is not None}


def notify_listener(ipki: InboundPki, *, port: int | None = None, **keys) -> dict:
    entry = {"name": LISTENER, "listen": f"127.0.0.1:{port or free_port()}", "accept": "tls", "backend": BACKEND,
             "cert": str(ipki.public_cert), "key": str(ipki.public_key)}
    entry.update(keys)
    return {k: v for k, v in entry.items() if v is not None}


def inbound_config(workdir: Path, backends: list[dict], listeners: list[dict], *, upstreams: list[dict] | None = None,
                   limits: dict | None = None, level: str = "info", workers: int = 2) -> dict:
    """An inbound-only config (no [[upstream]] unless given): the listeners' first entry is what
    `Bridge.listen` connects to."""
    lim = {"connect_timeout": "5s", "handshake_timeout": "5s", "idle_timeout": "60s", "max_sessions": 256,
           "buffer_size": "256KiB"}
    lim.update(limits or {})
    config = {"workers": workers, "log": {"sessions": str(workdir / "sessions.jsonl"), "level": level},
              "limits": lim}
    if upstreams:
        config["upstream"] = upstreams
    config["backend"] = backends
    config["listener"] = listeners
    return config


def fingerprint(pem: Path) -> str:
    """SHA-256 of the certificate (DER), as AB:CD:..."""
    cert = x509.load_pem_x509_certificate(Path(pem).read_bytes())
    digest = cert.fingerprint(hashes.SHA256()).hex().upper()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


# --- records -----------------------------------------------------------------------------------------------------

def check_inbound_record(record: dict) -> None:
    """Shape of an inbound record: `backend` instead of `upstream`, downstream as on tls listeners."""
    assert set(record) >= INBOUND_RECORD_KEYS, f"missing keys {INBOUND_RECORD_KEYS - set(record)} in {record}"
    assert "upstream" not in record, f"an inbound record has `backend` instead of `upstream`: {record}"
    assert record["direction"] == "inbound", record
    assert record["listener"] == LISTENER, record
    assert set(record["backend"]) >= BACKEND_KEYS, \
        f"missing backend keys {BACKEND_KEYS - set(record['backend'])} in {record}"
    assert set(record["downstream"]) >= DOWNSTREAM_KEYS, \
        f"missing downstream keys {DOWNSTREAM_KEYS - set(record['downstream'])} in {record}"
    assert record["phase"] in TLS_PHASES, record
    assert record["close"] in TLS_CLOSES, record
    assert set(record["bytes"]) >= {"up", "down"}, record
    assert isinstance(record["session"], str) and record["session"], record
    assert isinstance(record["duration_ms"], int) and record["duration_ms"] >= 0, record


def assert_plain_backend_fields(backend: dict, address: str) -> None:
    assert backend["name"] == BACKEND and backend["address"] == address, backend
    assert backend["protocol"] == "plain", backend
    for key in ("cipher", "peer", "peer_issuer", "verify", "client_cert", "close_notify", "server_name"):
        assert backend[key] is None, f"backend.{key} must be null for tls = \"off\": {backend}"
    assert backend["resumed"] in (None, False), backend


def assert_delivered_record(record: dict, *, backend_address: str, backend_protocol: str,
                            downstream_versions=("TLSv1.2", "TLSv1.3")) -> None:
    check_inbound_record(record)
    assert record["error"] is None and record["hint"] is None, record
    assert record["close"] in ("upstream_eof", "downstream_eof"), record
    ds = record["downstream"]
    assert ds["protocol"] in downstream_versions, ds
    assert ds["cipher"], ds
    assert ds["sni"] == NOTIFY_NAME, ds
    be = record["backend"]
    if backend_protocol == "plain":
        assert_plain_backend_fields(be, backend_address)
    else:
        assert be["name"] == BACKEND and be["address"] == backend_address, be
        assert be["protocol"] == backend_protocol, be
        assert be["cipher"], be


def contains(text: str | None, *needles: str) -> bool:
    return text is not None and all(n.lower() in text.lower() for n in needles)


def can_bind(address: str) -> bool:
    try:
        with socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET) as probe:
            probe.bind((address, 0))
        return True
    except OSError:
        return False
