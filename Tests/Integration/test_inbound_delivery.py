"""Inbound delivery: the gateway's TLS 1.2+ notification (Python ssl, curl) reaches the merchant's web server —
plain HTTP, or a TLS 1.0-only server verified by pin or by CA + server_name — byte for byte, and the response
comes back intact. The record says direction inbound, `backend` instead of `upstream`, both protocols.
"""

from __future__ import annotations

import hashlib
import socket
from concurrent.futures import ThreadPoolExecutor

import pytest

from support.inbound import (BACKEND, BACKEND_NAME, LISTENER, NOTIFY_NAME, ack_for, assert_delivered_record,
                             check_inbound_record, curl_post, form_body, gateway_connect, gateway_context,
                             http_request, legacy_backend, notify_listener, plain_backend, post, read_response,
                             subject)
from support.legacy import echo_over
from support.servers import generated_chunks

MIB = 1024 * 1024
KINDS = ["plain", "legacy-pin", "legacy-ca"]
BACKEND_PROTOCOL = {"plain": "plain", "legacy-pin": "TLSv1", "legacy-ca": "TLSv1"}


def start_backend(backend_server, ipki, kind: str):
    if kind == "plain":
        server = backend_server()
        return server, plain_backend(server.address)
    variant = kind.split("-", 1)[1]
    server = backend_server(variant)
    return server, legacy_backend(server.address, ipki, variant=variant)


def assert_backend_side(kind: str, conn, ipki) -> None:
    """What the merchant's server itself saw of the bridge (not trusting the bridge's record)."""
    assert conn.proxy_header is None, conn.proxy_header
    if kind == "plain":
        assert conn.tls_version is None
        return
    assert conn.handshake_error is None, conn.handshake_error
    assert conn.tls_version == "TLSv1", conn.tls_version
    assert conn.sni == (BACKEND_NAME if kind == "legacy-ca" else None), conn.sni


def assert_legacy_record_fields(kind: str, record: dict, ipki) -> None:
    be = record["backend"]
    if kind == "plain":
        return
    cert = ipki.backend_cert if kind == "legacy-ca" else ipki.backend_self_signed
    assert be["peer"] == subject(cert), be
    assert be["peer_issuer"] == (subject(ipki.backend_ca) if kind == "legacy-ca" else subject(cert)), be
    assert be["server_name"] == (BACKEND_NAME if kind == "legacy-ca" else None), be
    assert isinstance(be["verify"], str) and be["verify"], be
    if kind == "legacy-ca":
        assert be["verify"] == "ok", be
    assert be["client_cert"] is None and be["resumed"] is False, be
    assert be["close_notify"] is True, f"the backend ended with close_notify: {be}"


def is_aead_fs(cipher: str, protocol: str) -> bool:
    if protocol == "TLSv1.3":
        return cipher.startswith("TLS_")
    return cipher.startswith(("ECDHE-", "DHE-")) and ("GCM" in cipher or "CHACHA20" in cipher)


@pytest.mark.parametrize("kind", KINDS)
def test_python_tls12_form_notification_is_delivered_exactly(notify_bridge, backend_server, inbound_pki, kind):
    server, entry = start_backend(backend_server, inbound_pki, kind)
    b = notify_bridge(entry)
    body = form_body(4096)
    with gateway_connect(b.listen, gateway_context(inbound_pki, "TLSv1.2")) as s:
        assert s.version() == "TLSv1.2"
        cipher = s.cipher()[0]
        s.sendall(http_request("/notify", body))
        resp = read_response(s)
    conn = server.wait_finished(1)[0]
    assert conn.error is None, conn.error
    assert conn.request_line == "POST /notify HTTP/1.1" and conn.headers["host"] == NOTIFY_NAME, conn.request_line
    assert conn.body == body, "the notification body differs at the merchant's server"
    assert_backend_side(kind, conn, inbound_pki)
    assert resp.status == 200 and resp.body == ack_for(body) and resp.body.endswith(b"marker-seen\n"), resp
    assert resp.raw == conn.response, "the response differs at the gateway"
    record = b.wait_record()
    assert_delivered_record(record, backend_address=server.address, backend_protocol=BACKEND_PROTOCOL[kind],
                            downstream_versions=("TLSv1.2",))
    assert record["downstream"]["cipher"] == cipher, (record["downstream"], cipher)
    assert is_aead_fs(cipher, "TLSv1.2"), f"default notify ciphers are AEAD with ECDHE/DHE, got {cipher}"
    assert record["downstream"]["client_cert"] is None, record
    assert_legacy_record_fields(kind, record, inbound_pki)


@pytest.mark.parametrize("kind", KINDS)
def test_python_tls13_1_mib_notification_arrives_and_returns_intact(notify_bridge, backend_server, inbound_pki,
                                                                    kind):
    server, entry = start_backend(backend_server, inbound_pki, kind)
    b = notify_bridge(entry)
    payload = b"".join(generated_chunks(21, MIB))
    with gateway_connect(b.listen, gateway_context(inbound_pki, "TLSv1.3")) as s:
        assert s.version() == "TLSv1.3"
        s.sendall(http_request("/echo", payload))
        resp = read_response(s)
    conn = server.wait_finished(1)[0]
    assert conn.error is None, conn.error
    assert conn.body_sha256 == hashlib.sha256(payload).hexdigest(), "the 1 MiB body differs at the backend"
    assert_backend_side(kind, conn, inbound_pki)
    assert resp.status == 200 and hashlib.sha256(resp.body).hexdigest() == hashlib.sha256(payload).hexdigest(), \
        f"the 1 MiB response differs at the gateway ({len(resp.body)} bytes)"
    record = b.wait_record()
    assert_delivered_record(record, backend_address=server.address, backend_protocol=BACKEND_PROTOCOL[kind],
                            downstream_versions=("TLSv1.3",))
    assert_legacy_record_fields(kind, record, inbound_pki)


@pytest.mark.parametrize("kind", KINDS)
def test_curl_tls12_posts_a_notification(notify_bridge, backend_server, inbound_pki, tmp_path, kind):
    server, entry = start_backend(backend_server, inbound_pki, kind)
    b = notify_bridge(entry)
    body = form_body(6000)
    (tmp_path / "form.txt").write_bytes(body)
    code, err = curl_post(b.listen[1], inbound_pki, tmp_path / "form.txt", tmp_path / "out.txt")
    assert code == "200", err
    assert (tmp_path / "out.txt").read_bytes() == ack_for(body), "curl did not get the backend's answer"
    conn = server.wait_finished(1)[0]
    assert conn.body == body and conn.request_line == "POST /notify HTTP/1.1", conn
    assert conn.headers["content-type"] == "application/x-www-form-urlencoded", conn.headers
    assert_backend_side(kind, conn, inbound_pki)
    record = b.wait_record()
    assert_delivered_record(record, backend_address=server.address, backend_protocol=BACKEND_PROTOCOL[kind])
    assert_legacy_record_fields(kind, record, inbound_pki)


def test_curl_1_mib_over_exactly_tls12_to_the_legacy_backend(notify_bridge, backend_server, inbound_pki, tmp_path):
    server, entry = start_backend(backend_server, inbound_pki, "legacy-pin")
    b = notify_bridge(entry)
    payload = b"".join(generated_chunks(22, MIB))
    (tmp_path / "big.bin").write_bytes(payload)
    code, err = curl_post(b.listen[1], inbound_pki, tmp_path / "big.bin", tmp_path / "out.bin", path="/echo",
                          extra=("--tlsv1.2", "--tls-max", "1.2"))
    assert code == "200", err
    assert hashlib.sha256((tmp_path / "out.bin").read_bytes()).digest() == hashlib.sha256(payload).digest()
    assert server.wait_finished(1)[0].body_sha256 == hashlib.sha256(payload).hexdigest()
    record = b.wait_record()
    assert_delivered_record(record, backend_address=server.address, backend_protocol="TLSv1",
                            downstream_versions=("TLSv1.2",))


def test_record_counts_gateway_to_backend_bytes_as_up(notify_bridge, backend_server, inbound_pki):
    """`backend` plays the role `upstream` has outbound: bytes.up = gateway → merchant, bytes.down = the answer."""
    server, entry = start_backend(backend_server, inbound_pki, "plain")
    b = notify_bridge(entry)
    request = http_request("/notify", form_body(2048))
    with gateway_connect(b.listen, gateway_context(inbound_pki, "TLSv1.2")) as s:
        s.sendall(request)
        read_response(s)
    conn = server.wait_finished(1)[0]
    record = b.wait_record()
    assert record["bytes"] == {"up": len(request), "down": len(conn.response)}, record["bytes"]


def test_twenty_concurrent_notifications_each_delivered_once(notify_bridge, backend_server, inbound_pki):
    server, entry = start_backend(backend_server, inbound_pki, "legacy-pin")
    b = notify_bridge(entry)
    ctx = gateway_context(inbound_pki, "TLSv1.2", max_version="TLSv1.3")

    def one(i: int) -> bytes:
        body = form_body(1000 + i)
        resp, _ = post(b.listen, ctx, f"/notify?n={i}", body)
        assert resp.body == ack_for(body), (i, resp.body)
        return body

    with ThreadPoolExecutor(max_workers=20) as pool:
        bodies = list(pool.map(one, range(20), timeout=60))
    conns = server.wait_finished(20)
    assert len(conns) == 20, f"{len(conns)} backend connections for 20 notifications"
    assert sorted(c.body for c in conns) == sorted(bodies)
    records = b.wait_records(20)
    assert len({r["session"] for r in records}) == 20, "session ids are not distinct"
    for r in records:
        check_inbound_record(r)
        assert r["error"] is None and r["backend"]["protocol"] == "TLSv1", r


def test_inbound_and_outbound_listeners_side_by_side(notify_bridge, backend_server, inbound_pki, pki, upstream):
    """One bridge, both directions: the outbound record keeps `upstream`, the inbound one has `backend`."""
    gw = upstream(name="gw")
    server, entry = start_backend(backend_server, inbound_pki, "plain")
    from support.bridge import free_port
    from support.certs import GATEWAY_NAME
    outbound_port = free_port()
    b = notify_bridge(upstreams=[{"name": "gw", "address": gw.address, "server_name": GATEWAY_NAME,
                                  "ca_file": str(pki.ca), "min_version": "TLS1.2"}],
                      backends=[entry],
                      listeners=[notify_listener(inbound_pki),
                                 {"name": "plain", "listen": f"127.0.0.1:{outbound_port}", "accept": "plain",
                                  "upstream": "gw"}])
    with socket.create_connection(("127.0.0.1", outbound_port), timeout=10) as s:
        assert echo_over(s) == b"ping"
    resp, _ = post(b.listen, gateway_context(inbound_pki, "TLSv1.2"), "/notify", form_body(512))
    assert resp.status == 200
    records = b.wait_records(2)
    outbound = next(r for r in records if r["listener"] == "plain")
    inbound = next(r for r in records if r["listener"] == LISTENER)
    assert outbound["direction"] == "outbound" and outbound["upstream"]["name"] == "gw", outbound
    assert "backend" not in outbound, outbound
    check_inbound_record(inbound)
    assert inbound["backend"]["name"] == BACKEND and inbound["error"] is None, inbound
    assert len(gw.wait_finished(1)) == 1 and len(server.wait_finished(1)) == 1
