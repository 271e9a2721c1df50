"""Hostile peers for the memory-bound and framing tests: a client that pushes bytes as fast as the kernel takes them
and never reads ("push until the bridge stops reading"), an RSS sampler, and gateways/backends that accept a
connection and then never read (or read and never answer, or answer with more than the client will ever read).

Everything here is bounded in time and count: a push stops after `seconds` or `max_bytes`, whichever comes first; a
holding server keeps each connection at most HOLD_SECONDS and at most MAX_CONNECTIONS connections, and is stopped
by the test that started it (through its fixture).
"""

from __future__ import annotations

import errno
import select
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field

from .servers import ThreadedServer

MiB = 1024 * 1024
PUSH_SECONDS = 1.0
PUSH_MAX_BYTES = 256 * MiB
HOLD_SECONDS = 30.0
GARBAGE = (b"hostile-bytes-" * 4682)[:64 * 1024]  # 64 KiB written again and again; no CR, no LF


# --- the bridge's memory ----------------------------------------------------------------------------------------

class RssSampler:
    """Samples a bridge's VmRSS every 20 ms on a thread until stopped; keeps the peak (KiB)."""

    def __init__(self, bridge, interval: float = 0.02):
        self.bridge = bridge
        self.interval = interval
        self.peak_kib = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                self.peak_kib = max(self.peak_kib, self.bridge.rss_kib())
                self.samples += 1
            except (OSError, AssertionError, ValueError):
                return
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=5)


# --- push until the bridge stops reading ------------------------------------------------------------------------

@dataclass
class PushResult:
    """What a push achieved. `accepted`: bytes the kernel (and, for TLS, OpenSSL) took from us; `ended`: "time",
    "bytes" or "closed" (the bridge closed or reset the connection; `error` says how); `stalled_for`: seconds
    between the last accepted write and the end of the push (≈ the whole push when the bridge stopped reading)."""

    accepted: int = 0
    seconds: float = 0.0
    ended: str = "time"
    error: str | None = None
    stalled_for: float = 0.0
    timeline: list = field(default_factory=list)  # (seconds since start, accepted) every ~0.25 s

    def describe(self) -> str:
        return (f"{self.accepted / MiB:.1f} MiB accepted in {self.seconds:.2f} s, ended by {self.ended}"
                f"{' (' + self.error + ')' if self.error else ''}, no progress for the last {self.stalled_for:.2f} s")


def push(sock, *, seconds: float = PUSH_SECONDS, max_bytes: int = PUSH_MAX_BYTES, data: bytes = GARBAGE,
         repeat_unit: bytes | None = None) -> PushResult:
    """Write `data` again and again, non-blocking, never reading, until `seconds` pass, `max_bytes` are accepted or
    the peer closes/resets. Works on plain and TLS sockets (a TLS write that would block is retried with the same
    bytes). `repeat_unit`, when given, replaces `data` by whole repetitions of it (e.g. pipelined requests).

    The socket is left non-blocking=False with its old timeout restored."""
    if repeat_unit is not None:
        data = repeat_unit * max(1, (64 * 1024) // len(repeat_unit))
    old_timeout = sock.gettimeout()
    sock.setblocking(False)
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLOUT | select.POLLERR | select.POLLHUP)
    result = PushResult()
    start = last_progress = time.monotonic()
    next_mark = 0.25
    view = memoryview(data)
    offset = 0
    try:
        while True:
            now = time.monotonic()
            if now - start >= next_mark:
                result.timeline.append((round(now - start, 2), result.accepted))
                next_mark += 0.25
            if now - start >= seconds:
                result.ended = "time"
                break
            if result.accepted >= max_bytes:
                result.ended = "bytes"
                break
            try:
                n = sock.send(view[offset:])
            except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError, InterruptedError):
                poller.poll(20)
                continue
            except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError) as exc:
                result.ended, result.error = "closed", type(exc).__name__
                break
            except ssl.SSLError as exc:
                result.ended, result.error = "closed", f"SSLError: {exc.reason or exc}"
                break
            except OSError as exc:
                if exc.errno in (errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN):
                    result.ended, result.error = "closed", errno.errorcode.get(exc.errno, str(exc.errno))
                    break
                raise
            if n > 0:
                result.accepted += n
                last_progress = time.monotonic()
                offset = (offset + n) % len(data)
            else:
                poller.poll(20)
    finally:
        end = time.monotonic()
        result.seconds = end - start
        result.stalled_for = end - last_progress
        try:
            sock.settimeout(old_timeout)
        except OSError:
            pass
    return result


def read_available(sock, timeout: float = 3.0, limit: int = 1 << 20) -> tuple[bytes, str]:
    """Read what the bridge sent (after a push), until EOF, a reset or `timeout` without data. Returns
    (bytes, how it ended: "eof", "reset", "timeout")."""
    sock.settimeout(timeout)
    out = bytearray()
    how = "timeout"
    try:
        while len(out) < limit:
            try:
                chunk = sock.recv(65536)
            except ssl.SSLError as exc:
                how = "eof" if "eof" in str(exc).lower() else f"ssl: {exc}"
                break
            if not chunk:
                how = "eof"
                break
            out += chunk
    except (ConnectionResetError, BrokenPipeError):
        how = "reset"
    except (socket.timeout, TimeoutError):
        how = "timeout"
    return bytes(out), how


# --- servers that do not read ---------------------------------------------------------------------------------

@dataclass
class HeldConnection:
    peer: tuple
    index: int
    handshake_error: str | None = None
    tls_version: str | None = None
    bytes_in: int = 0
    bytes_out: int = 0
    head: bytes = b""
    error: str | None = None
    closed_by_peer: bool = False
    finished: threading.Event = field(default_factory=threading.Event)


class HoldingServer(ThreadedServer):
    """Accepts (TLS when given a context: handshake done at once), then, per `mode`:

      "hold"   never reads, never writes: the bridge's writes pile up in the kernel, then in the bridge
      "sink"   reads and discards everything, never answers (a gateway that takes requests and is silent)
      "big"    reads one request head, answers `HTTP/1.1 200` with a Content-Length of `big_size` and sends as much
               of it as the bridge will take, then holds (a response the client never reads)

    Each connection is held until the peer closes, `stop()`, or HOLD_SECONDS. Calls TRIPWIRE.on_accept (base)."""

    MAX_CONNECTIONS = 64

    def __init__(self, context: ssl.SSLContext | None, *, mode: str = "hold", name: str = "holding-gw",
                 big_size: int = 1 << 40):
        super().__init__(name=name)
        assert mode in ("hold", "sink", "big"), mode
        self.context = context
        self.mode = mode
        self.big_size = big_size

    def _new_connection(self, peer: tuple, index: int) -> HeldConnection:
        return HeldConnection(peer=peer, index=index)

    def total_in(self) -> int:
        with self._lock:
            return sum(c.bytes_in for c in self.connections)

    def _serve(self, sock: socket.socket, conn: HeldConnection) -> None:
        deadline = time.monotonic() + HOLD_SECONDS
        stream = sock
        try:
            sock.settimeout(10)
            if self.context is not None:
                try:
                    stream = self.context.wrap_socket(sock, server_side=True)
                except (ssl.SSLError, OSError) as exc:
                    conn.handshake_error = f"{type(exc).__name__}: {exc}"
                    return
                conn.tls_version = stream.version()
            if self.mode == "big":
                stream.settimeout(0.2)
                while b"\r\n\r\n" not in conn.head and not self._stop.is_set() and time.monotonic() < deadline:
                    try:
                        data = stream.recv(65536)
                    except (socket.timeout, ssl.SSLWantReadError):
                        continue
                    if not data:
                        conn.closed_by_peer = True
                        return
                    conn.head += data[:65536]
                    conn.bytes_in += len(data)
                stream.setblocking(False)
                head = f"HTTP/1.1 200 OK\r\nContent-Length: {self.big_size}\r\n\r\n".encode()
                result = push(stream, seconds=max(0.0, min(5.0, deadline - time.monotonic())),
                              max_bytes=self.big_size, data=head + GARBAGE)
                conn.bytes_out = result.accepted
            while not self._stop.is_set() and time.monotonic() < deadline:
                if self.mode == "sink":
                    stream.settimeout(0.2)
                    try:
                        data = stream.recv(1 << 20)
                    except (socket.timeout, ssl.SSLWantReadError):
                        continue
                    if not data:
                        conn.closed_by_peer = True
                        return
                    conn.bytes_in += len(data)
                else:
                    # hold: look only for the peer's close/reset (poll, no read), so nothing is consumed
                    p = select.poll()
                    p.register(stream.fileno(), select.POLLRDHUP | select.POLLHUP | select.POLLERR)
                    if p.poll(200):
                        conn.closed_by_peer = True
                        return
        except (ssl.SSLError, OSError) as exc:
            conn.error = f"{type(exc).__name__}: {exc}"
        finally:
            for s in (stream, sock):  # wrap_socket took over sock's descriptor: close the wrapper
                try:
                    s.close()
                except OSError:
                    pass
            conn.finished.set()
