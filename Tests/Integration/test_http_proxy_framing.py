"""Framing errors on the http-proxy absolute-form path get answers, not hangs (issue #13).

- A chunked request whose trailer section is long but within the documented 16 KiB (one 6 KiB line, one 15 KiB line,
  three 4.5 KiB lines) is forwarded and answered.
- A malformed chunked request body (extension without a name, a chunk size of 17 hex digits, `0x5`, a bare LF, chunk
  data not followed by CRLF, a trailer carrying Transfer-Encoding) is answered by the bridge with 400 and a reason, the
  connection closed, the record's `close` an error (not `downstream_eof`/`idle_timeout`) with a non-null `error`; the
  gateway's connection is closed without it having seen a complete request.
- An HTTP/1.0 client never receives `Transfer-Encoding: chunked`: the body arrives de-chunked, delimited by the close
  (or a Content-Length), byte for byte what the gateway sent.
- Ambiguous request framing (`Content-Length: 5, 5`, two `Content-Length: 5` lines, `Transfer-Encoding: chunked,`,
  `Transfer-Encoding: ,chunked`, an empty second `Transfer-Encoding` line) is refused with 400 and never reaches the
  gateway, as the first request of a connection and after a good keep-alive request.

idle_timeout is 2 s here, so a bridge that does not answer shows up as a quick failure, not a hang.
"""

from __future__ import annotations

import socket
import time

import pytest

from support.legacy import SANDBOX
from support.proxy import (SockReader, assert_bridge_error, check_proxy_record, open_proxy, parse_head, read_response,
                           request_bytes)

LIMITS = {"idle_timeout": "2s"}
ANSWER_TIMEOUT = 3.0
CHUNKED = [("Host", SANDBOX), ("Transfer-Encoding", "chunked")]


def read_until_closed(sock, timeout: float) -> tuple[bytes, str]:
    """Everything the bridge sends until it closes (EOF or reset) or `timeout` passes with the connection open."""
    sock.settimeout(0.2)
    out = bytearray()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except (socket.timeout, TimeoutError):
            continue
        except (ConnectionResetError, BrokenPipeError):
            return bytes(out), "reset"
        if not chunk:
            return bytes(out), "eof"
        out += chunk
    return bytes(out), "open"


def split_response(data: bytes):
    head, _, body = data.partition(b"\r\n\r\n")
    version, status, reason, headers = parse_head(head)
    return status, {k.lower(): v for k, v in headers}, body


# --- long trailers within the limit -------------------------------------------------------------------------------

TRAILERS = {
    "one-6-kib-line": [b"X-Long: " + b"t" * 6000],
    "one-15-kib-line": [b"X-Longer: " + b"u" * (15 * 1024)],
    "three-4.5-kib-lines": [b"X-T%d: " % i + b"v" * 4600 for i in range(3)],
}


@pytest.mark.parametrize("case", list(TRAILERS), ids=list(TRAILERS))
def test_chunked_trailers_within_16_kib_are_forwarded_and_answered(proxy_bridge, http_gateway, case):
    gw = http_gateway("gw")
    b = proxy_bridge(gw, limits=LIMITS)
    body = b"5\r\nhello\r\n6\r\n world\r\n0\r\n" + b"".join(line + b"\r\n" for line in TRAILERS[case]) + b"\r\n"
    assert len(body) < 16 * 1024
    with open_proxy(b) as sock:
        sock.sendall(request_bytes("POST", f"http://{SANDBOX}/echo", CHUNKED) + body)
        try:
            resp = read_response(SockReader(sock, ANSWER_TIMEOUT + 2))
        except (socket.timeout, TimeoutError, EOFError) as exc:
            pytest.fail(f"no response to a chunked request with {case} trailers within {ANSWER_TIMEOUT + 2} s "
                        f"({type(exc).__name__}: {exc}); gateway saw {gw.requests()}", pytrace=False)
    assert resp.status == 200 and resp.body == b"hello world", resp
    (seen,) = gw.requests()
    assert seen.chunked and seen.body_length == 11, seen


# --- malformed chunked bodies ---------------------------------------------------------------------------------------

MALFORMED = {
    "extension-without-name": b"5;\r\nhello\r\n0\r\n\r\n",
    "17-hex-digit-size": b"10000000000000005\r\nhello\r\n0\r\n\r\n",
    "17-hex-digit-size-leading-zeros": b"00000000000000005\r\nhello\r\n0\r\n\r\n",
    "0x-prefixed-size": b"0x5\r\nhello\r\n0\r\n\r\n",
    "bare-lf-after-size": b"5\nhello\r\n0\r\n\r\n",
    "data-not-followed-by-crlf": b"5\r\nhelloXX0\r\n\r\n",
    "trailer-carries-transfer-encoding": b"5\r\nhello\r\n0\r\nTransfer-Encoding: chunked\r\n\r\n",
}


@pytest.mark.parametrize("case", list(MALFORMED), ids=list(MALFORMED))
def test_malformed_chunked_request_body_is_answered_400_and_closed(proxy_bridge, http_gateway, case):
    gw = http_gateway("gw")
    b = proxy_bridge(gw, limits=LIMITS)
    started = time.monotonic()
    with open_proxy(b) as sock:
        sock.sendall(request_bytes("POST", f"http://{SANDBOX}/echo", CHUNKED) + MALFORMED[case])
        data, how = read_until_closed(sock, ANSWER_TIMEOUT)
    waited = time.monotonic() - started
    problems = []
    if b"\r\n\r\n" not in data:
        problems.append(f"no answer from the bridge ({how} after {waited:.1f} s, got {data[:200]!r})")
    else:
        status, headers, body = split_response(data)
        if status != 400:
            problems.append(f"expected 400, got {data[:300]!r}")
        elif not headers.get("content-type", "").startswith("text/plain") or not body.strip():
            problems.append(f"400 without a reason from the bridge: {data[:300]!r}")
    if how == "open":
        problems.append(f"the connection was still open {ANSWER_TIMEOUT} s after the malformed body")
    record = b.wait_record(timeout=6)
    check_proxy_record(record)
    if record["close"] in ("downstream_eof", "upstream_eof", "idle_timeout") or not record["error"]:
        problems.append(f"the record does not say the request was refused: close={record['close']!r} "
                        f"error={record['error']!r}")
    if record["downstream"]["http_status"] != 400:
        problems.append(f"record http_status {record['downstream']['http_status']!r}, expected 400")
    conns = gw.wait_connections(1, timeout=2)
    for conn in conns:
        if not conn.finished.wait(3):
            problems.append("the gateway's connection was still open 3 s after the refusal")
        if conn.requests:
            problems.append(f"the gateway took a complete request from a malformed body: {conn.requests}")
    assert not problems, f"{case}:\n" + "\n".join(problems) + f"\nrecord: {record}"


# --- HTTP/1.0 clients and chunked responses ------------------------------------------------------------------------

@pytest.mark.parametrize("headers", [[], [("Connection", "keep-alive")]], ids=["http10", "http10-keep-alive"])
def test_http10_client_never_receives_chunked_encoding(proxy_bridge, http_gateway, headers):
    """The gateway answers `/chunked` with Transfer-Encoding: chunked whatever the request's version; the bridge must
    de-chunk it for an HTTP/1.0 client (RFC 9112 §6.1: a server must not send chunked to an HTTP/1.0 recipient)."""
    gw = http_gateway("gw")
    b = proxy_bridge(gw, limits=LIMITS)
    with open_proxy(b) as sock:
        sock.sendall(request_bytes("GET", f"http://{SANDBOX}/x/chunked", [("Host", SANDBOX)] + headers,
                                   version="HTTP/1.0"))
        data, how = read_until_closed(sock, ANSWER_TIMEOUT)
    assert b"\r\n\r\n" in data, f"no response ({how}): {data[:300]!r}"
    status, hdrs, body = split_response(data)
    expected = b"gw GET /x/chunked conn=0 req=1\n"
    assert status == 200, data[:300]
    assert "chunked" not in hdrs.get("transfer-encoding", "").lower(), (
        f"an HTTP/1.0 client received Transfer-Encoding: chunked: {data[:400]!r}")
    if "content-length" in hdrs:
        assert body[:int(hdrs["content-length"])] == expected, data[:400]
    else:
        assert how in ("eof", "reset"), (
            f"no Content-Length and the connection is not closed: the client cannot find the body's end ({data!r})")
        assert body == expected, f"the de-chunked body differs from what the gateway sent: {body!r}"


# --- ambiguous request framing ---------------------------------------------------------------------------------------

HELLO_CHUNKED = b"5\r\nhello\r\n0\r\n\r\n"
AMBIGUOUS = {
    "content-length-list-5-5": ([("Content-Length", "5, 5")], b"hello"),
    "two-content-length-5-lines": ([("Content-Length", "5"), ("Content-Length", "5")], b"hello"),
    "transfer-encoding-chunked-trailing-comma": ([("Transfer-Encoding", "chunked,")], HELLO_CHUNKED),
    "transfer-encoding-leading-comma-chunked": ([("Transfer-Encoding", ",chunked")], HELLO_CHUNKED),
    "transfer-encoding-empty-second-line": ([("Transfer-Encoding", "chunked"), ("Transfer-Encoding", "")],
                                            HELLO_CHUNKED),
}


def ambiguous_request(case: str) -> bytes:
    headers, body = AMBIGUOUS[case]
    return request_bytes("POST", f"http://{SANDBOX}/echo", [("Host", SANDBOX)] + headers, body)


@pytest.mark.parametrize("case", list(AMBIGUOUS), ids=list(AMBIGUOUS))
def test_ambiguous_framing_is_refused_and_never_reaches_the_gateway(proxy_bridge, http_gateway, case):
    gw = http_gateway("gw")
    b = proxy_bridge(gw, limits=LIMITS)
    with open_proxy(b) as sock:
        sock.sendall(ambiguous_request(case))
        data, how = read_until_closed(sock, ANSWER_TIMEOUT)
    assert b"\r\n\r\n" in data, f"{case}: no answer ({how}): {data!r}"
    reader_resp = read_response(_BytesReader(data))
    assert_bridge_error(reader_resp, how != "open", 400)
    gw.assert_not_dialled()
    record = b.wait_record(timeout=5)
    assert record["downstream"]["http_status"] == 400 and record["bytes"]["up"] == 0, record


@pytest.mark.parametrize("case", list(AMBIGUOUS), ids=list(AMBIGUOUS))
def test_ambiguous_framing_after_a_keep_alive_request_is_refused_too(proxy_bridge, http_gateway, case):
    gw = http_gateway("gw")
    b = proxy_bridge(gw, limits=LIMITS)
    with open_proxy(b) as sock:
        reader = SockReader(sock, ANSWER_TIMEOUT)
        sock.sendall(request_bytes("GET", f"http://{SANDBOX}/first", [("Host", SANDBOX)]))
        first = read_response(reader)
        assert first.status == 200 and first.header("x-gateway") == "gw", first
        sock.sendall(ambiguous_request(case))
        rest, how = read_until_closed(sock, ANSWER_TIMEOUT)
    data = bytes(reader.buf) + rest
    assert b"\r\n\r\n" in data, f"{case}: no answer to the second request ({how}): {data!r}"
    second = read_response(_BytesReader(data))
    assert second.status == 400 and not second.has("x-gateway"), (
        f"{case}: the second request was not refused by the bridge: {second.raw_head!r} {second.body[:200]!r}")
    assert_bridge_error(second, how != "open", 400)
    assert [r.target for r in gw.requests()] == ["/first"], (
        f"{case}: an ambiguous request reached the gateway: {gw.requests()}")


class _BytesReader(SockReader):
    """A SockReader over bytes already read (no socket)."""

    def __init__(self, data: bytes):
        self.sock = None
        self.buf = bytearray(data)
        self.timeout = 0

    def _fill(self) -> bool:
        return False
