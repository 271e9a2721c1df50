"""A merchant that half-closes after its request still receives the whole response.

The gateway frames the request by length (as with Content-Length) and answers 0.5 s after reading it, so
the response can only arrive if the bridge keeps the session open after the merchant's EOF.
"""

from __future__ import annotations

import hashlib
import random
import socket

import pytest

from support.bridge import check_record_shape, wait_closed
from support.servers import generated_digest

MiB = 1024 * 1024


@pytest.mark.parametrize("response_size", [1 * MiB, 32 * MiB], ids=["1MiB", "32MiB"])
def test_response_after_merchant_half_close_arrives_whole(upstream, bridge, response_size):
    server = upstream()
    b = bridge(server.address)
    request = random.Random(3).randbytes(1500)
    seed = 9
    header = f"REQUEST {len(request)} {response_size} {seed}\n".encode()
    with b.connect() as s:
        s.sendall(header + request)
        s.shutdown(socket.SHUT_WR)
        response, _ = wait_closed(s, 30)
    assert len(response) == response_size
    assert hashlib.sha256(response).hexdigest() == generated_digest(seed, response_size)
    conn = server.wait_finished(1)[0]
    assert conn.error is None, conn.error
    assert conn.received_digest == hashlib.sha256(request).hexdigest()

    record = b.wait_record()
    check_record_shape(record)
    assert record["bytes"] == {"up": len(header) + len(request), "down": response_size}
    assert record["error"] is None
    assert record["close"] in ("downstream_eof", "upstream_eof"), record
