"""The notify listener's own floor: TLS 1.0 / 1.1 gateway clients are refused by default (min_version defaults
to TLS 1.2), and by default a TLS 1.2 client is only served AEAD suites with forward secrecy (ECDHE/DHE with
AES-GCM or ChaCha20). A refused handshake is one record (downstream_error in downstream_handshake, with a hint)
and the merchant's server is never dialled; the listener keeps serving.
"""

from __future__ import annotations

import pytest

from support.inbound import (ack_for, check_inbound_record, form_body, gateway_connect, gateway_context,
                             http_request, plain_backend, post, read_response)
from support.legacy import s_client


def refused_record(b, server) -> dict:
    record = b.wait_record()
    check_inbound_record(record)
    assert record["close"] == "downstream_error", record
    assert record["phase"] == "downstream_handshake", record
    assert record["bytes"] == {"up": 0, "down": 0}, record
    assert record["backend"]["protocol"] is None, record
    assert record["error"], record
    server.assert_not_dialled()
    return record


def still_serving(b, ipki, server) -> None:
    body = form_body(700)
    resp, _ = post(b.listen, gateway_context(ipki, "TLSv1.2"), "/notify", body)
    assert resp.body == ack_for(body)
    last = b.wait_records(2)[-1]
    assert last["error"] is None and last["downstream"]["protocol"] == "TLSv1.2", last
    assert server.wait_finished(1)[0].body == body


@pytest.mark.parametrize("version", ["TLSv1", "TLSv1.1"])
def test_legacy_gateway_client_is_refused_by_default_with_a_hint(notify_bridge, backend_server, inbound_pki, version):
    server = backend_server()
    b = notify_bridge(plain_backend(server.address))
    with pytest.raises(OSError, match="(?i)protocol|version|alert"):
        gateway_connect(b.listen, gateway_context(inbound_pki, version))
    record = refused_record(b, server)
    offered = record["downstream"]["offered"]
    assert offered is not None and offered["max_version"] == version, record["downstream"]
    assert record["hint"], f"no hint for a version below the floor: {record}"
    assert version in record["hint"] and "min_version" in record["hint"], record["hint"]
    assert "keep min_version" in record["hint"], "an inbound listener must not be told to accept TLS 1.0"
    still_serving(b, inbound_pki, server)


def test_tls11_s_client_gets_a_protocol_version_alert(notify_bridge, backend_server, inbound_pki):
    server = backend_server()
    b = notify_bridge(plain_backend(server.address))
    result = s_client(b.listen[1], "-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0", "-servername",
                      "notify.merchant.test", quiet=False, stdin=http_request("/notify", b"a=1"))
    assert b"protocol version" in result.stdout + result.stderr, (result.stdout + result.stderr)[-1500:]
    refused_record(b, server)


@pytest.mark.parametrize("cipher", ["AES128-SHA", "ECDHE-RSA-AES128-SHA", "AES128-GCM-SHA256",
                                    "ECDHE-RSA-AES256-SHA384"])
def test_tls12_client_without_an_aead_forward_secret_suite_is_refused(notify_bridge, backend_server, inbound_pki,
                                                                      cipher):
    """CBC suites (even with ECDHE) and RSA key exchange (even with GCM) are not in the default list."""
    server = backend_server()
    b = notify_bridge(plain_backend(server.address))
    with pytest.raises(OSError, match="(?i)handshake failure|no shared cipher|alert"):
        gateway_connect(b.listen, gateway_context(inbound_pki, "TLSv1.2", ciphers=cipher))
    record = refused_record(b, server)
    assert any(cipher in c for c in record["downstream"]["offered"]["ciphers"]), record["downstream"]


@pytest.mark.parametrize("cipher", ["ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384",
                                    "ECDHE-RSA-CHACHA20-POLY1305"])
def test_tls12_client_with_an_aead_ecdhe_suite_is_served(notify_bridge, backend_server, inbound_pki, cipher):
    server = backend_server()
    b = notify_bridge(plain_backend(server.address))
    body = form_body(900)
    with gateway_connect(b.listen, gateway_context(inbound_pki, "TLSv1.2", ciphers=cipher)) as s:
        assert s.cipher()[0] == cipher
        s.sendall(http_request("/notify", body))
        assert read_response(s).body == ack_for(body)
    record = b.wait_record()
    assert record["downstream"]["cipher"] == cipher and record["error"] is None, record


def test_min_version_tls13_on_the_notify_listener_refuses_tls12(notify_bridge, backend_server, inbound_pki):
    """min_version is only a default: raised, it holds TLS 1.2 gateways out too."""
    server = backend_server()
    b = notify_bridge(plain_backend(server.address), min_version="TLS1.3")
    with pytest.raises(OSError, match="(?i)protocol|version|alert"):
        gateway_connect(b.listen, gateway_context(inbound_pki, "TLSv1.2"))
    refused_record(b, server)
    body = form_body(500)
    resp, _ = post(b.listen, gateway_context(inbound_pki, "TLSv1.3"), "/notify", body)
    assert resp.body == ack_for(body)
    last = b.wait_records(2)[-1]
    assert last["error"] is None and last["downstream"]["protocol"] == "TLSv1.3", last
