"""tls = "legacy" toward the merchant's server is verified: a wrong pin, a wrong server_name or a chain from
another CA stops the session in the backend handshake (upstream_error / handshake, the reason in the error);
nothing is delivered and the gateway sees the connection closed without an answer. min_version on the backend
is honoured; a backend that can do better than TLS 1.0 gets it."""

from __future__ import annotations

import ssl

from support.inbound import (BACKEND_NAME, ack_for, assert_delivered_record, check_inbound_record, contains,
                             fingerprint, form_body, gateway_connect, gateway_context, http_request,
                             legacy_backend, legacy_server_context, post, read_response, subject)


def undelivered(b, ipki) -> None:
    """The gateway's notification gets no answer: the connection closes (close_notify, EOF or a reset after
    the bridge dropped the session)."""
    with gateway_connect(b.listen, gateway_context(ipki, "TLSv1.2")) as s:
        s.sendall(http_request("/notify", form_body(1024)))
        s.settimeout(10)
        try:
            data = s.recv(1024)
        except (ssl.SSLEOFError, ssl.SSLZeroReturnError, ConnectionResetError):
            data = b""
    assert data == b"", f"the gateway got an answer from a refused backend: {data!r}"


def failed_backend_handshake(b, server) -> dict:
    record = b.wait_record()
    check_inbound_record(record)
    assert record["close"] == "upstream_error", record
    assert record["phase"] == "handshake", record
    assert record["error"], record
    assert record["downstream"]["protocol"] in ("TLSv1.2", "TLSv1.3"), record["downstream"]
    server.assert_nothing_delivered()
    assert server.connections, "the backend was never dialled: this test proves nothing"
    return record


def test_wrong_pin_is_refused_and_nothing_delivered(notify_bridge, backend_server, inbound_pki):
    server = backend_server("pin")
    b = notify_bridge(legacy_backend(server.address, inbound_pki, variant="pin",
                                     pin_sha256=fingerprint(inbound_pki.backend_other_self_signed)))
    undelivered(b, inbound_pki)
    record = failed_backend_handshake(b, server)
    assert any(contains(record["error"], w) for w in ("pin", "fingerprint")), \
        f"the error does not mention the pin: {record['error']}"
    assert record["backend"]["peer"] == subject(inbound_pki.backend_self_signed), \
        f"the record should name the certificate that did not match: {record['backend']}"
    assert record["bytes"] == {"up": 0, "down": 0}, record["bytes"]


def test_pin_written_lowercase_without_colons_matches(notify_bridge, backend_server, inbound_pki):
    """Same fingerprint, other spelling (as client_cert_fingerprints accepts): delivered."""
    server = backend_server("pin")
    pin = fingerprint(inbound_pki.backend_self_signed).replace(":", "").lower()
    b = notify_bridge(legacy_backend(server.address, inbound_pki, variant="pin", pin_sha256=pin))
    resp, _ = post(b.listen, gateway_context(inbound_pki, "TLSv1.2"), "/notify", b"k=v")
    assert resp.body == ack_for(b"k=v")
    assert_delivered_record(b.wait_record(), backend_address=server.address, backend_protocol="TLSv1")


def test_wrong_server_name_is_refused(notify_bridge, backend_server, inbound_pki):
    server = backend_server("ca")
    b = notify_bridge(legacy_backend(server.address, inbound_pki, variant="ca", server_name="other.local"))
    undelivered(b, inbound_pki)
    record = failed_backend_handshake(b, server)
    assert record["backend"]["verify"] not in (None, "ok"), record["backend"]
    assert contains(record["error"] + " " + (record["backend"]["verify"] or ""), "hostname") or \
        contains(record["error"], "name"), record


def test_chain_from_another_ca_is_refused(notify_bridge, backend_server, inbound_pki, pki):
    server = backend_server("ca")
    b = notify_bridge(legacy_backend(server.address, inbound_pki, variant="ca", ca_file=str(pki.ca)))
    undelivered(b, inbound_pki)
    record = failed_backend_handshake(b, server)
    assert record["backend"]["verify"] not in (None, "ok"), record["backend"]


def test_self_signed_backend_is_not_trusted_by_ca_file_alone(notify_bridge, backend_server, inbound_pki):
    """The pinned server's self-signed certificate does not verify under ca_file: a pin is not implied."""
    server = backend_server("pin")
    b = notify_bridge(legacy_backend(server.address, inbound_pki, variant="ca"))
    undelivered(b, inbound_pki)
    failed_backend_handshake(b, server)


def test_backend_min_version_above_what_the_server_speaks_is_refused(notify_bridge, backend_server, inbound_pki):
    server = backend_server("pin")
    b = notify_bridge(legacy_backend(server.address, inbound_pki, variant="pin", min_version="TLS1.2"))
    undelivered(b, inbound_pki)
    record = failed_backend_handshake(b, server)
    assert record["backend"]["protocol"] is None, record["backend"]
    assert server.connections[0].handshake_error, "the TLS 1.0-only server should have failed the handshake"


def test_legacy_backend_that_speaks_tls12_gets_tls12(notify_bridge, backend_server, inbound_pki):
    ctx = legacy_server_context(inbound_pki, variant="ca", max_version=ssl.TLSVersion.TLSv1_2)
    server = backend_server(context=ctx)
    b = notify_bridge(legacy_backend(server.address, inbound_pki, variant="ca"))
    body = form_body(1200)
    with gateway_connect(b.listen, gateway_context(inbound_pki, "TLSv1.2")) as s:
        s.sendall(http_request("/notify", body))
        assert read_response(s).body == ack_for(body)
    conn = server.wait_finished(1)[0]
    assert conn.tls_version == "TLSv1.2" and conn.sni == BACKEND_NAME, conn
    assert_delivered_record(b.wait_record(), backend_address=server.address, backend_protocol="TLSv1.2")


def test_old_server_closing_without_close_notify_still_answers_in_full(notify_bridge, backend_server, inbound_pki):
    """Old servers often end with a bare TCP close after their answer: the gateway still gets all of it."""
    server = backend_server("pin", close_notify=False)
    b = notify_bridge(legacy_backend(server.address, inbound_pki, variant="pin"))
    body = form_body(3333)
    with gateway_connect(b.listen, gateway_context(inbound_pki, "TLSv1.2")) as s:
        s.sendall(http_request("/notify", body))
        resp = read_response(s)
    assert resp.status == 200 and resp.body == ack_for(body)
    assert resp.raw == server.wait_finished(1)[0].response
    record = b.wait_record()
    check_inbound_record(record)
    assert record["backend"]["protocol"] == "TLSv1" and record["backend"]["close_notify"] is False, record["backend"]
    assert record["bytes"]["down"] == len(resp.raw), record["bytes"]
