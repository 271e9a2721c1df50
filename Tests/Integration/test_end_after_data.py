"""Nothing lost at the end: a gateway that answers and closes at once (its answer and its close_notify, or its
FIN, in one burst) gets every byte of the answer to the merchant, on fresh connections and on preconnected
spares, over TLS 1.2 and 1.3. libevent 2.1 reports such a TLS end before it commits the bytes decrypted in the
same read pass; the bridge must not act on the end before those bytes."""

from __future__ import annotations

import socket
import ssl
import time

import pytest

from support.legacy import echo_over, merchant_upstream

ROUNDS = 40


@pytest.mark.parametrize("version", ["TLSv1_2", "TLSv1_3"])
@pytest.mark.parametrize("preconnect", [0, 1])
def test_every_byte_before_the_gateways_close_reaches_the_merchant(bridge, pki, upstream, version, preconnect):
    tls = getattr(ssl.TLSVersion, version)
    gateway = upstream(client_auth="required", min_version=tls, max_version=tls, name="gw")
    b = bridge(gateway.address, workers=1, upstream={**merchant_upstream(pki), "preconnect": preconnect})
    lost = 0
    for _ in range(ROUNDS):
        # A spare that has waited a moment (a TLS 1.3 gateway's tickets read on it) is the case
        # where the lost answer was first seen.
        time.sleep(0.15 if preconnect else 0)
        with socket.create_connection(b.listen, timeout=10) as s:
            try:
                assert echo_over(s, b"payment-answer") == b"payment-answer"
            except EOFError:
                lost += 1
    records = b.wait_records(ROUNDS)
    short = [r for r in records if r["bytes"]["down"] != len(b"payment-answer")]
    assert lost == 0 and not short, f"{lost} of {ROUNDS} answers lost; records short of bytes: {short[:2]}"
