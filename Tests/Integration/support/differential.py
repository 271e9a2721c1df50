"""Differential HTTP/1.1 framing through the http-proxy listener, with `h11` (Debian: python3-h11) as the strict
reference parser on both ends.

- `generate_case(seed)`: a reproducible stream of pipelined absolute-form requests (Content-Length / chunked bodies
  with random chunk sizes, extensions and trailers; GET/HEAD/POST/PUT) and, for each request, the responses the
  gateway will send (1xx before the final one; Content-Length, chunked, 204, 304, HEAD answers).
- `MUTATIONS`: ways to make one request of a stream malformed or ambiguous; `STRICTER` names those the bridge may
  refuse although h11 accepts them (documented in ProxyRequestParser / ChunkedBodyScanner and issue #13).
- `parse_requests(bytes)` / `ResponseParser`: h11 splitting a byte stream into messages (one fresh h11 connection per
  message, fed what the previous one left over: pipelining without driving h11's own send side).
- `H11Gateway`: a TLS gateway that parses what the bridge forwards with h11, records every complete request (by
  case), and answers each with the case's planned responses, written in random pieces.

Bounded: at most MAX_CONNECTIONS connections, IO_TIMEOUT per socket read, each connection served on its own thread
and ended by the peer, `stop()`, or the timeout.
"""

from __future__ import annotations

import random
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field

import h11

from .servers import ThreadedServer

IO_TIMEOUT = 5.0
HOST = "sandbox.paygent.test"
TOKEN_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789-"


# --- messages as the reference parser sees them ---------------------------------------------------------------

@dataclass(frozen=True)
class Message:
    """One request or response as framed by h11: what must be identical on both sides of the bridge."""
    start: tuple          # requests: (method, origin-form target); responses: (informational statuses..., status)
    body: bytes
    trailers: tuple       # ((lowercase name, value), ...)
    x_headers: tuple = () # end-to-end X-* headers, in order


def origin_form(target: bytes) -> bytes:
    """`http://host[:port]/path?q` → `/path?q` (what the bridge must send the gateway); origin form unchanged."""
    if target.lower().startswith(b"http://"):
        rest = target[7:]
        slash = rest.find(b"/")
        return rest[slash:] if slash >= 0 else b"/"
    return target


def _x_headers(headers) -> tuple:
    return tuple((bytes(k).lower(), bytes(v)) for k, v in headers if bytes(k).lower().startswith(b"x-"))


def _fresh(role, leftover: bytes, closed: bool):
    conn = h11.Connection(role)
    if leftover:
        conn.receive_data(leftover)
    if closed:
        conn.receive_data(b"")
    return conn


def parse_requests(stream: bytes) -> tuple[list[Message], str | None]:
    """h11's reading of a complete client stream: the requests it frames, and why it stopped (None: clean end)."""
    messages: list[Message] = []
    conn = _fresh(h11.SERVER, stream, True)
    current = None
    try:
        while True:
            event = conn.next_event()
            if isinstance(event, h11.Request):
                current = [(bytes(event.method), origin_form(bytes(event.target))), bytearray(),
                           _x_headers(event.headers)]
            elif isinstance(event, h11.Data):
                current[1] += event.data
            elif isinstance(event, h11.EndOfMessage):
                messages.append(Message(current[0], bytes(current[1]),
                                        tuple((bytes(k).lower(), bytes(v)) for k, v in event.headers), current[2]))
                leftover, closed = conn.trailing_data
                conn = _fresh(h11.SERVER, bytes(leftover), closed)
            elif event is h11.NEED_DATA:
                return messages, "h11: incomplete message at the end of the stream"
            else:  # ConnectionClosed at a message boundary
                return messages, None
    except h11.RemoteProtocolError as exc:
        return messages, f"h11: {exc}"


class IncrementalParser:
    """Feeds bytes as they arrive; yields complete messages (requests for role SERVER, responses for CLIENT).

    For CLIENT, `methods` gives the request method of each response in turn (HEAD responses have no body)."""

    def __init__(self, role, methods: list[bytes] | None = None):
        self.role = role
        self.methods = list(methods or [])
        self.index = 0
        self.messages: list[Message] = []
        self.error: str | None = None
        self._current = None
        self._conn = self._new(b"", False)

    def _new(self, leftover: bytes, closed: bool):
        conn = h11.Connection(self.role)
        if self.role is h11.CLIENT:
            method = self.methods[self.index] if self.index < len(self.methods) else b"GET"
            conn.send(h11.Request(method=method, target="/", headers=[("Host", HOST)]))
            conn.send(h11.EndOfMessage())
        if leftover:
            conn.receive_data(leftover)
        if closed:
            conn.receive_data(b"")
        return conn

    def feed(self, data: bytes) -> list[Message]:
        """Give it bytes (b"" = the peer closed); returns the messages completed by them."""
        if self.error:
            return []
        done = []
        try:
            self._conn.receive_data(data)
        except RuntimeError:
            return []
        try:
            while True:
                event = self._conn.next_event()
                if isinstance(event, h11.InformationalResponse):
                    self._informational = getattr(self, "_informational", []) + [event.status_code]
                elif isinstance(event, (h11.Request, h11.Response)):
                    if isinstance(event, h11.Request):
                        start = (bytes(event.method), origin_form(bytes(event.target)))
                    else:
                        start = tuple(getattr(self, "_informational", [])) + (event.status_code,)
                        self._informational = []
                    self._current = [start, bytearray(), _x_headers(event.headers)]
                elif isinstance(event, h11.Data):
                    self._current[1] += event.data
                elif isinstance(event, h11.EndOfMessage):
                    msg = Message(self._current[0], bytes(self._current[1]),
                                  tuple((bytes(k).lower(), bytes(v)) for k, v in event.headers), self._current[2])
                    self._current = None
                    self.messages.append(msg)
                    done.append(msg)
                    self.index += 1
                    leftover, closed = self._conn.trailing_data
                    self._conn = self._new(bytes(leftover), closed)
                else:  # NEED_DATA, PAUSED, ConnectionClosed
                    return done
        except h11.RemoteProtocolError as exc:
            self.error = f"h11: {exc}"
            return done

    @property
    def mid_message(self) -> bool:
        return self._current is not None


# --- generating cases ------------------------------------------------------------------------------------------

@dataclass
class RequestSpec:
    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes
    framing: str                      # "none", "length", "chunked"
    chunks: list[tuple[int, str]] = field(default_factory=list)   # (size, extension text incl. ';')
    trailers: list[tuple[str, str]] = field(default_factory=list)
    size_digits: list[str] = field(default_factory=list)           # how each chunk size is spelled


@dataclass
class ResponseSpec:
    informational: list[tuple[int, list[tuple[str, str]]]]
    status: int
    kind: str                         # "length", "chunked", "empty-204", "not-modified", "head"
    body: bytes
    chunks: list[tuple[int, str]] = field(default_factory=list)
    trailers: list[tuple[str, str]] = field(default_factory=list)
    head_length: int = 0              # the Content-Length a HEAD/304 answer announces


def _token(rng: random.Random, n: int | None = None) -> str:
    return "".join(rng.choice(TOKEN_CHARS) for _ in range(n or rng.randint(1, 8)))


def _extension(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.5:
        return ""
    if kind < 0.7:
        return f";{_token(rng)}"
    if kind < 0.9:
        return f";{_token(rng)}={_token(rng)}"
    return f';{_token(rng)}="{_token(rng)} {_token(rng)}"'


def _split_chunks(rng: random.Random, body: bytes) -> list[tuple[int, str]]:
    sizes, left = [], len(body)
    while left > 0:
        n = min(left, rng.choice([1, 2, 7, 16, 100, 255, 1000, 4096]) if rng.random() < 0.7 else rng.randint(1, left))
        sizes.append(n)
        left -= n
    return [(n, _extension(rng)) for n in sizes]


def _hex(rng: random.Random, n: int) -> str:
    text = f"{n:x}"
    if rng.random() < 0.2:
        text = text.upper()
    if rng.random() < 0.1:
        text = "0" * rng.randint(1, 3) + text
    return text


def _trailers(rng: random.Random) -> list[tuple[str, str]]:
    return [(f"X-Trailer-{_token(rng, 4)}", _token(rng, rng.randint(1, 40))) for _ in range(rng.choice([0, 0, 1, 2]))]


def _body(rng: random.Random) -> bytes:
    size = rng.choice([0, 1, 5, 64, 700, 3000, rng.randint(0, 5000)])
    return rng.randbytes(size)


def generate_request(rng: random.Random, case: int, index: int) -> RequestSpec:
    method = rng.choice(["GET", "GET", "HEAD", "POST", "POST", "PUT"])
    path = f"/c{case}/r{index}" + (f"?q={_token(rng)}" if rng.random() < 0.5 else "")
    headers = [("Host", HOST), (rng.choice(["X-Seq", "x-seq", "X-SEQ"]), f"{case}.{index}")]
    if rng.random() < 0.3:
        headers.append(("X-Pad", "p" * rng.randint(0, 2000)))
    if rng.random() < 0.2:
        headers.append(("Connection", "keep-alive"))
    if method in ("GET", "HEAD"):
        framing = rng.choice(["none", "none", "none", "length"])
    else:
        framing = rng.choice(["length", "chunked", "chunked"])
    body = _body(rng) if framing != "none" else b""
    spec = RequestSpec(method, path, headers, body, framing)
    if framing == "length":
        spec.headers.append((rng.choice(["Content-Length", "content-length"]), str(len(body))))
    elif framing == "chunked":
        spec.headers.append((rng.choice(["Transfer-Encoding", "transfer-encoding"]),
                             rng.choice(["chunked", "chunked", "Chunked"])))
        spec.chunks = _split_chunks(rng, body)
        spec.size_digits = [_hex(rng, n) for n, _ in spec.chunks]
        spec.trailers = _trailers(rng)
    rng.shuffle(spec.headers)
    return spec


def serialize_request(spec: RequestSpec) -> bytes:
    lines = [f"{spec.method} http://{HOST}{spec.path} HTTP/1.1"] + [f"{k}: {v}" for k, v in spec.headers]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + encode_body(spec.framing, spec.body, spec.chunks, spec.trailers, spec.size_digits)


def encode_body(framing: str, body: bytes, chunks, trailers, size_digits=None) -> bytes:
    if framing != "chunked":
        return body if framing == "length" else b""
    out, offset = bytearray(), 0
    for i, (n, ext) in enumerate(chunks):
        digits = size_digits[i] if size_digits else f"{n:x}"
        out += f"{digits}{ext}\r\n".encode() + body[offset:offset + n] + b"\r\n"
        offset += n
    out += b"0\r\n" + b"".join(f"{k}: {v}\r\n".encode() for k, v in trailers) + b"\r\n"
    return bytes(out)


def generate_response(rng: random.Random, method: str) -> ResponseSpec:
    informational = []
    for _ in range(rng.choice([0, 0, 0, 1, 2])):
        informational.append(rng.choice([(100, []), (103, [("Link", "</s.css>; rel=preload")])]))
    if method == "HEAD":
        return ResponseSpec(informational, 200, "head", b"", head_length=rng.randint(0, 1 << 20))
    kind = rng.choice(["length", "length", "chunked", "chunked", "empty-204", "not-modified"])
    if kind == "empty-204":
        return ResponseSpec(informational, 204, kind, b"")
    if kind == "not-modified":
        return ResponseSpec(informational, 304, kind, b"", head_length=rng.randint(1, 5000))
    body = _body(rng)
    spec = ResponseSpec(informational, rng.choice([200, 201, 404, 500]), kind, body)
    if kind == "chunked":
        spec.chunks = _split_chunks(rng, body)
        spec.trailers = _trailers(rng)
    return spec


def serialize_response(spec: ResponseSpec, name: str) -> bytes:
    out = bytearray()
    for status, headers in spec.informational:
        out += f"HTTP/1.1 {status} Info\r\n".encode() + b"".join(f"{k}: {v}\r\n".encode() for k, v in headers) + b"\r\n"
    headers = [("X-Gateway", name)]
    if spec.kind == "length":
        headers.append(("Content-Length", str(len(spec.body))))
    elif spec.kind == "chunked":
        headers.append(("Transfer-Encoding", "chunked"))
    elif spec.kind in ("head", "not-modified"):
        headers.append(("Content-Length", str(spec.head_length)))
    out += f"HTTP/1.1 {spec.status} R\r\n".encode() + b"".join(f"{k}: {v}\r\n".encode() for k, v in headers) + b"\r\n"
    out += encode_body("chunked" if spec.kind == "chunked" else "length" if spec.kind == "length" else "none",
                       spec.body, spec.chunks, spec.trailers)
    return bytes(out)


def expected_response(spec: ResponseSpec, name: str) -> Message:
    return Message(tuple(s for s, _ in spec.informational) + (spec.status,), spec.body,
                   tuple((k.lower().encode(), v.encode()) for k, v in spec.trailers),
                   ((b"x-gateway", name.encode()),))


@dataclass
class Case:
    seed: int
    requests: list[RequestSpec]
    responses: list[ResponseSpec]
    stream: bytes
    mutation: str | None = None
    mutated_index: int | None = None


def generate_case(seed: int, case: int, *, max_requests: int = 6) -> Case:
    rng = random.Random(seed)
    requests = [generate_request(rng, case, i) for i in range(rng.randint(1, max_requests))]
    responses = [generate_response(rng, r.method) for r in requests]
    return Case(seed, requests, responses, b"".join(serialize_request(r) for r in requests))


# --- mutations -------------------------------------------------------------------------------------------------

def _set_header(spec: RequestSpec, name: str, *values: str) -> None:
    spec.headers = [(k, v) for k, v in spec.headers if k.lower() != name.lower()] + [(name, v) for v in values]


def _chunked(spec: RequestSpec, rng: random.Random) -> None:
    """Make `spec` a chunked POST with at least one data chunk."""
    spec.method = "POST"
    spec.body = spec.body or rng.randbytes(rng.randint(1, 300))
    spec.framing = "chunked"
    _set_header(spec, "Content-Length")
    _set_header(spec, "Transfer-Encoding", "chunked")
    spec.chunks = _split_chunks(rng, spec.body)
    spec.size_digits = [f"{n:x}" for n, _ in spec.chunks]


def _length(spec: RequestSpec, rng: random.Random) -> None:
    spec.method = "POST"
    spec.body = spec.body or rng.randbytes(rng.randint(1, 300))
    spec.framing = "length"
    _set_header(spec, "Transfer-Encoding")
    _set_header(spec, "Content-Length", str(len(spec.body)))
    spec.chunks, spec.trailers, spec.size_digits = [], [], []


def _raw(spec: RequestSpec, head_edit=None, body_edit=None) -> bytes:
    data = serialize_request(spec)
    head, _, body = data.partition(b"\r\n\r\n")
    if head_edit:
        head = head_edit(head)
    if body_edit:
        body = body_edit(body)
    return head + b"\r\n\r\n" + body


def _first_size_line(body: bytes, edit) -> bytes:
    line, _, rest = body.partition(b"\r\n")
    return edit(line, rest)


MUTATIONS = {
    # h11 accepts these; the bridge may refuse them (STRICTER)
    "chunk-extension-without-name": lambda s, r: (_chunked(s, r), _raw(s, body_edit=lambda b: _first_size_line(
        b, lambda line, rest: line.split(b";")[0] + b";\r\n" + rest)))[1],
    "chunk-size-17-hex-digits": lambda s, r: (_chunked(s, r), _raw(s, body_edit=lambda b: _first_size_line(
        b, lambda line, rest: line.split(b";")[0].rjust(17, b"0") + b"\r\n" + rest)))[1],
    "chunk-size-trailing-space": lambda s, r: (_chunked(s, r), _raw(s, body_edit=lambda b: _first_size_line(
        b, lambda line, rest: line.split(b";")[0] + b" \r\n" + rest)))[1],
    "trailer-transfer-encoding": lambda s, r: (_chunked(s, r), setattr(s, "trailers", [("Transfer-Encoding", "chunked")]),
                                               _raw(s))[2],
    "trailer-content-length": lambda s, r: (_chunked(s, r), setattr(s, "trailers", [("Content-Length", "5")]),
                                            _raw(s))[2],
    "content-length-list-same": lambda s, r: (_length(s, r), _set_header(s, "Content-Length",
                                                                           f"{len(s.body)}, {len(s.body)}"), _raw(s))[2],
    "content-length-twice-same": lambda s, r: (_length(s, r), _set_header(s, "Content-Length", str(len(s.body)),
                                                                            str(len(s.body))), _raw(s))[2],
    "content-length-with-chunked": lambda s, r: (_chunked(s, r), s.headers.append(("Content-Length", "3")),
                                                 _raw(s))[2],
    "obs-fold": lambda s, r: _raw(s, head_edit=lambda h: h + b"\r\nX-Folded: a\r\n b"),
    "bare-lf-header-line": lambda s, r: _raw(s, head_edit=lambda h: h.replace(b"\r\n", b"\n", 1)),
    # h11 refuses these; so must the bridge
    "chunk-size-0x-prefix": lambda s, r: (_chunked(s, r), _raw(s, body_edit=lambda b: _first_size_line(
        b, lambda line, rest: b"0x" + line + b"\r\n" + rest)))[1],
    "chunk-size-bare-lf": lambda s, r: (_chunked(s, r), _raw(s, body_edit=lambda b: _first_size_line(
        b, lambda line, rest: line + b"\n" + rest)))[1],
    "chunk-data-without-crlf": lambda s, r: (_chunked(s, r), _raw(s, body_edit=lambda b: _first_size_line(
        b, lambda line, rest: line + b"\r\n" + rest[:s.chunks[0][0]] + b"XX" + rest[s.chunks[0][0] + 2:])))[1],
    "chunk-size-21-hex-digits": lambda s, r: (_chunked(s, r), _raw(s, body_edit=lambda b: _first_size_line(
        b, lambda line, rest: line.split(b";")[0].rjust(21, b"0") + b"\r\n" + rest)))[1],
    "content-length-differs": lambda s, r: (_length(s, r), _set_header(s, "Content-Length", str(len(s.body)),
                                                                         str(len(s.body) + 1)), _raw(s))[2],
    "content-length-plus-sign": lambda s, r: (_length(s, r), _set_header(s, "Content-Length", f"+{len(s.body)}"),
                                              _raw(s))[2],
    "transfer-encoding-trailing-comma": lambda s, r: (_chunked(s, r), _set_header(s, "Transfer-Encoding", "chunked,"),
                                                      _raw(s))[2],
    "transfer-encoding-leading-comma": lambda s, r: (_chunked(s, r), _set_header(s, "Transfer-Encoding", ",chunked"),
                                                     _raw(s))[2],
    "transfer-encoding-empty-second-line": lambda s, r: (_chunked(s, r), _set_header(s, "Transfer-Encoding", "chunked",
                                                                                       ""), _raw(s))[2],
    "space-before-colon": lambda s, r: _raw(s, head_edit=lambda h: h + b"\r\nX-Bad : 1"),
    "nul-in-header-value": lambda s, r: _raw(s, head_edit=lambda h: h + b"\r\nX-Nul: a\x00b"),
}

# Accepted by h11, refused by the bridge on purpose (RFC 9112 leaves a proxy free to, or issue #13 asks it to):
# chunk extensions must have a name (§7.1.1); more than 16 hex digits cannot be a size the bridge can count, whatever
# their value; no whitespace between the size and CRLF; framing fields are never trailers (§6.5); one Content-Length,
# one value (issue #13: `5, 5` and two `5` lines are refused); Content-Length with Transfer-Encoding (§6.3: a
# smuggling attempt); obsolete line folding and bare LF line ends (§5.2, §2.2).
STRICTER = {"chunk-extension-without-name", "chunk-size-17-hex-digits", "chunk-size-trailing-space",
            "trailer-transfer-encoding", "trailer-content-length", "content-length-list-same",
            "content-length-twice-same", "content-length-with-chunked", "obs-fold", "bare-lf-header-line"}


def generate_invalid_case(seed: int, case: int) -> Case:
    rng = random.Random(seed)
    requests = [generate_request(rng, case, i) for i in range(rng.randint(1, 4))]
    index = rng.randrange(len(requests))
    mutation = rng.choice(sorted(MUTATIONS))
    parts = [serialize_request(r) for r in requests]
    parts[index] = MUTATIONS[mutation](requests[index], rng)
    responses = [ResponseSpec([], 200, "head", b"", head_length=3) if r.method == "HEAD" else
                 ResponseSpec([], 200, "length", f"ok {case}.{i}".encode()) for i, r in enumerate(requests)]
    return Case(seed, requests, responses, b"".join(parts), mutation, index)


def random_splits(rng: random.Random, data: bytes, max_pieces: int = 12) -> list[bytes]:
    if len(data) < 2:
        return [data]
    cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(0, max_pieces - 1))))
    return [data[a:b] for a, b in zip([0] + cuts, cuts + [len(data)])]


# --- the gateway --------------------------------------------------------------------------------------------------

@dataclass
class GatewaySeen:
    case: int | None
    index: int
    messages: list[Message] = field(default_factory=list)
    error: str | None = None          # h11 refused what the bridge forwarded (not counting an EOF mid-message)
    io_error: str | None = None       # a write or read failed (the bridge had closed)
    eof_mid_message: bool = False
    handshake_error: str | None = None
    finished: threading.Event = field(default_factory=threading.Event)
    peer: tuple = ()


class H11Gateway(ThreadedServer):
    """TLS gateway: h11 parses each connection's requests; each complete request is answered with the planned
    response for (current case, its index on the connection), written in random pieces. Connections are attributed
    to the case that was current when they were accepted (cases run one after another)."""

    MAX_CONNECTIONS = 1000

    def __init__(self, context: ssl.SSLContext, *, name: str = "gw"):
        super().__init__(name=name, backlog=128)
        self.context = context
        self.current_case: int | None = None
        self.plans: dict[int, list] = {}  # ResponseSpec, or raw bytes sent as they are
        self.open = 0

    def begin(self, case: int, plan: list) -> None:
        with self._lock:
            self.current_case = case
            self.plans[case] = plan

    def seen(self, case: int) -> list[GatewaySeen]:
        with self._lock:
            return [c for c in self.connections if c.case == case]

    def wait_idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if self.open == 0:
                    return True
            time.sleep(0.01)
        return False

    def _new_connection(self, peer: tuple, index: int) -> GatewaySeen:
        self.open += 1  # under self._lock (ThreadedServer._accept_loop)
        return GatewaySeen(case=self.current_case, index=index, peer=peer)

    def _serve(self, sock: socket.socket, conn: GatewaySeen) -> None:
        rng = random.Random(hash((conn.case, conn.index)))
        stream = sock
        try:
            sock.settimeout(IO_TIMEOUT)
            try:
                stream = self.context.wrap_socket(sock, server_side=True)
            except (ssl.SSLError, OSError) as exc:
                conn.handshake_error = f"{type(exc).__name__}: {exc}"
                return
            parser = IncrementalParser(h11.SERVER)
            plan = self.plans.get(conn.case, [])
            answered = 0
            deadline = time.monotonic() + 30
            while not self._stop.is_set() and time.monotonic() < deadline:
                try:
                    data = stream.recv(65536)
                except (socket.timeout, TimeoutError):
                    continue
                except (ssl.SSLError, ConnectionResetError):
                    data = b""
                if not data:
                    # The bridge closed: whatever h11 holds unfinished was never a complete request.
                    conn.eof_mid_message = parser.mid_message or bool(parser._conn.trailing_data[0])
                    return
                new = parser.feed(data)
                with self._lock:
                    conn.messages.extend(new)
                for _ in new:
                    spec = plan[answered] if answered < len(plan) else ResponseSpec([], 200, "length", b"unplanned")
                    answered += 1
                    raw = spec if isinstance(spec, bytes) else serialize_response(spec, self.name)
                    for piece in random_splits(rng, raw, 4):
                        stream.sendall(piece)
                if parser.error:
                    conn.error = parser.error
                    return
        except (ssl.SSLError, OSError) as exc:
            # the bridge closed while an answer was being written (it refused something): not a parse error
            conn.io_error = f"{type(exc).__name__}: {exc}"
        finally:
            for s in (stream, sock):
                try:
                    s.close()
                except OSError:
                    pass
            with self._lock:
                self.open -= 1
            conn.finished.set()


# --- response mutations ------------------------------------------------------------------------------------------

def _resp_chunked(spec: ResponseSpec, rng: random.Random) -> None:
    spec.informational, spec.status, spec.kind = [], 200, "chunked"
    spec.body = spec.body or rng.randbytes(rng.randint(1, 300))
    spec.chunks = _split_chunks(rng, spec.body)


def _resp_length(spec: ResponseSpec, rng: random.Random) -> None:
    spec.informational, spec.status, spec.kind = [], 200, "length"
    spec.body = spec.body or rng.randbytes(rng.randint(1, 300))
    spec.chunks, spec.trailers = [], []


def _resp_raw(spec: ResponseSpec, head_edit=None, body_edit=None) -> bytes:
    head, _, body = serialize_response(spec, "gw").partition(b"\r\n\r\n")
    return (head_edit(head) if head_edit else head) + b"\r\n\r\n" + (body_edit(body) if body_edit else body)


def _resp_first_size_line(spec: ResponseSpec, edit) -> bytes:
    return _resp_raw(spec, body_edit=lambda b: _first_size_line(b, edit))


RESPONSE_MUTATIONS = {
    # valid: must be forwarded exactly
    "response-trailer-line-6-kib": lambda s, r: (_resp_chunked(s, r), setattr(s, "trailers", [("X-Long", "t" * 6000)]),
                                                 _resp_raw(s))[2],
    "response-trailers-12-kib-in-3-lines": lambda s, r: (_resp_chunked(s, r), setattr(
        s, "trailers", [(f"X-T{i}", "u" * 4000) for i in range(3)]), _resp_raw(s))[2],
    "response-chunk-extension-quoted": lambda s, r: (_resp_chunked(s, r), _resp_first_size_line(
        s, lambda line, rest: line.split(b";")[0] + b';q="a;b=c"\r\n' + rest))[1],
    "response-content-length-twice-same": lambda s, r: (_resp_length(s, r), _resp_raw(
        s, head_edit=lambda h: h + b"\r\nContent-Length: %d" % len(s.body)))[1],
    # accepted by h11, refused by the bridge (RESPONSE_STRICTER)
    "response-content-length-with-chunked": lambda s, r: (_resp_chunked(s, r), _resp_raw(
        s, head_edit=lambda h: h + b"\r\nContent-Length: 3"))[1],
    "response-obs-fold": lambda s, r: (_resp_length(s, r), _resp_raw(s, head_edit=lambda h: h + b"\r\nX-F: a\r\n b"))[1],
    "response-trailer-content-length": lambda s, r: (_resp_chunked(s, r), setattr(s, "trailers", [("Content-Length", "5")]),
                                                     _resp_raw(s))[2],
    # refused by h11: the bridge must not deliver them as a message
    "response-content-length-differs": lambda s, r: (_resp_length(s, r), _resp_raw(
        s, head_edit=lambda h: h + b"\r\nContent-Length: %d" % (len(s.body) + 1)))[1],
    "response-chunk-size-0x-prefix": lambda s, r: (_resp_chunked(s, r), _resp_first_size_line(
        s, lambda line, rest: b"0x" + line + b"\r\n" + rest))[1],
    "response-chunk-size-bare-lf": lambda s, r: (_resp_chunked(s, r), _resp_first_size_line(
        s, lambda line, rest: line + b"\n" + rest))[1],
    "response-chunk-data-without-crlf": lambda s, r: (_resp_chunked(s, r), _resp_first_size_line(
        s, lambda line, rest: line + b"\r\n" + rest[:s.chunks[0][0]] + b"XX" + rest[s.chunks[0][0] + 2:]))[1],
    "response-status-code-4-digits": lambda s, r: (_resp_length(s, r), _resp_raw(
        s, head_edit=lambda h: b"HTTP/1.1 2000 R" + h[h.index(b"\r\n"):]))[1],
}
RESPONSE_VALID = {"response-trailer-line-6-kib", "response-trailers-12-kib-in-3-lines",
                  "response-chunk-extension-quoted", "response-content-length-twice-same"}
RESPONSE_STRICTER = {"response-content-length-with-chunked", "response-obs-fold", "response-trailer-content-length"}


def generate_invalid_response_case(seed: int, case: int) -> tuple[Case, list[bytes]]:
    """Valid pipelined GET/POST requests; the gateway's response to one of them is mutated. Returns the case (its
    `responses` are what the gateway sends, as raw bytes in `raw`) and the raw response stream, one entry per request."""
    rng = random.Random(seed)
    requests = []
    for i in range(rng.randint(1, 4)):
        spec = generate_request(rng, case, i)
        if spec.method == "HEAD":
            spec.method = "GET"
        requests.append(spec)
    responses = [generate_response(rng, r.method) for r in requests]
    index = rng.randrange(len(requests))
    mutation = rng.choice(sorted(RESPONSE_MUTATIONS))
    raw = [serialize_response(s, "gw") for s in responses]
    raw[index] = RESPONSE_MUTATIONS[mutation](responses[index], rng)
    stream = b"".join(serialize_request(r) for r in requests)
    return Case(seed, requests, responses, stream, mutation, index), raw
