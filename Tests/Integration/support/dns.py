"""A tiny authoritative DNS stub on UDP 127.0.0.1:<ephemeral>.

It answers A queries for the names in `records`, NXDOMAIN for any other name, an empty NOERROR for other
query types of a known name (so AAAA lookups fall back to A), and with `silent=True` never answers at all.
With `delay=s` every answer leaves s seconds after its query (a slow or distant name server); meanwhile the stub
keeps reading, so a resolver's retries are seen (and answered late) too.
The question is echoed byte for byte, so resolvers that randomise the case of the name (libevent's evdns
does, by default) accept the answer.
"""

from __future__ import annotations

import socket
import struct
import threading
import time

TYPE_A = 1
CLASS_IN = 1


def _parse_question(packet: bytes) -> tuple[str, int, int, int]:
    """Return (lower-case name, qtype, qclass, offset after the question)."""
    offset = 12
    labels = []
    while True:
        length = packet[offset]
        offset += 1
        if length == 0:
            break
        if length & 0xC0:
            raise ValueError("compressed name in a question")
        labels.append(packet[offset:offset + length].decode("ascii", "replace"))
        offset += length
    qtype, qclass = struct.unpack("!HH", packet[offset:offset + 4])
    return ".".join(labels).lower(), qtype, qclass, offset + 4


class DnsStub:
    _running: dict[tuple[str, int], "DnsStub"] = {}   # by (IP, port): what a config's nameservers point at
    _running_lock = threading.Lock()

    @classmethod
    def running_stubs(cls) -> dict[tuple[str, int], "DnsStub"]:
        """The stubs started and not yet stopped in this process (the tripwire resolves names with them)."""
        with cls._running_lock:
            return dict(cls._running)

    def __init__(self, records: dict[str, str] | None = None, *, silent: bool = False, delay: float = 0.0):
        self.records = {k.lower().rstrip("."): v for k, v in (records or {}).items()}
        self.silent = silent
        self.delay = delay
        self._late: list[threading.Timer] = []   # answers waiting out `delay`, cancelled by stop()
        self.queries: list[tuple[str, int]] = []
        self._stop = threading.Event()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self.port: int | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> "DnsStub":
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.settimeout(0.1)
        self.port = self._sock.getsockname()[1]
        with DnsStub._running_lock:
            DnsStub._running[("127.0.0.1", self.port)] = self
        self._thread = threading.Thread(target=self._run, name="dns-stub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for timer in self._late:
            timer.cancel()
        with DnsStub._running_lock:
            if DnsStub._running.get(("127.0.0.1", self.port)) is self:
                del DnsStub._running[("127.0.0.1", self.port)]
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._sock is not None:
            self._sock.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def wait_queries(self, count: int = 1, timeout: float = 5.0) -> list[tuple[str, int]]:
        deadline = time.monotonic() + timeout
        while len(self.queries) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return list(self.queries)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                packet, client = self._sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                reply = self.answer(packet)
            except (ValueError, IndexError, struct.error):
                continue
            if reply is not None and self.delay > 0:
                timer = threading.Timer(self.delay, self._send_late, (reply, client))
                timer.daemon = True
                self._late.append(timer)
                timer.start()
            elif reply is not None:
                self._sock.sendto(reply, client)

    def _send_late(self, reply: bytes, client) -> None:
        if self._stop.is_set():
            return
        try:
            self._sock.sendto(reply, client)
        except OSError:  # stopped meanwhile
            pass

    def answer(self, packet: bytes) -> bytes | None:
        """The reply to one query packet, or None when the stub stays silent."""
        (ident, flags, qdcount) = struct.unpack("!HHH", packet[:6])
        if flags & 0x8000 or qdcount != 1:
            return None
        name, qtype, qclass, end = _parse_question(packet)
        self.queries.append((name, qtype))
        if self.silent:
            return None
        question = packet[12:end]
        address = self.records.get(name)
        rd = flags & 0x0100
        if address is None:
            return struct.pack("!HHHHHH", ident, 0x8400 | rd | 3, 1, 0, 0, 0) + question  # NXDOMAIN, AA
        if qtype != TYPE_A or qclass != CLASS_IN:
            return struct.pack("!HHHHHH", ident, 0x8400 | rd, 1, 0, 0, 0) + question       # NOERROR, no data
        addresses = [address] if isinstance(address, str) else list(address)  # several A records, in order
        rrs = b"".join(struct.pack("!HHHIH", 0xC00C, TYPE_A, CLASS_IN, 30, 4) + socket.inet_aton(a) for a in addresses)
        return struct.pack("!HHHHHH", ident, 0x8400 | rd, 1, len(addresses), 0, 0) + question + rrs
