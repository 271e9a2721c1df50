"""The bridge presents the merchant's client certificate to the gateway, only when configured, and records it."""

from __future__ import annotations

import ssl

import pytest

from support.bridge import base_config, check_record_shape, recv_exact, to_toml, wait_closed
from support.certs import MERCHANT_CN


def echo_once(b, payload: bytes = b"ping") -> None:
    with b.connect() as s:
        s.sendall(b"ECHO %d\n" % len(payload) + payload)
        assert recv_exact(s, len(payload)) == payload
        assert s.recv(1) == b""


def client_identity(pki, kind: str) -> dict:
    if kind == "cert+key":
        return {"client_cert": str(pki.client_cert), "client_key": str(pki.client_key)}
    if kind == "combined-pem":
        return {"client_cert": str(pki.client_combined)}
    if kind == "encrypted-key":
        return {"client_cert": str(pki.client_cert), "client_key": str(pki.client_key_encrypted),
                "client_key_password_file": str(pki.client_key_password_file)}
    raise ValueError(kind)


@pytest.mark.parametrize("tls_max", [None, ssl.TLSVersion.TLSv1_2], ids=["tls1.3", "tls1.2"])
@pytest.mark.parametrize("kind", ["cert+key", "combined-pem", "encrypted-key"])
def test_configured_client_certificate_is_presented_and_recorded(upstream, bridge, pki, kind, tls_max):
    server = upstream(client_auth="required", max_version=tls_max, threaded=True)
    b = bridge(server.address, upstream=client_identity(pki, kind))
    echo_once(b)
    conn = server.wait_finished(1)[0]
    assert conn.client_cn == MERCHANT_CN, "the gateway did not see the merchant certificate"
    record = b.wait_record()
    check_record_shape(record)
    assert f"CN={MERCHANT_CN}" in (record["upstream"]["client_cert"] or ""), record["upstream"]
    assert record["error"] is None
    assert record["upstream"]["protocol"] == conn.tls_version


@pytest.mark.parametrize("tls_max", [None, ssl.TLSVersion.TLSv1_2], ids=["tls1.3", "tls1.2"])
def test_gateway_requiring_a_client_certificate_refuses_a_bridge_without_one(upstream, bridge, tls_max):
    server = upstream(client_auth="required", max_version=tls_max, threaded=True)
    b = bridge(server.address)
    with b.connect() as s:
        s.sendall(b"ECHO 4\nping")
        data, _ = wait_closed(s, 10)
    assert data == b"", "no reply may come through a session the gateway refused"
    conn = server.wait_finished(1)[0]
    assert conn.handshake_error is not None and conn.client_cn is None
    record = b.wait_record()
    check_record_shape(record)
    assert record["error"], record
    assert record["upstream"]["client_cert"] is None
    assert record["close"] == "upstream_error", record
    assert record["bytes"]["down"] == 0
    if tls_max == ssl.TLSVersion.TLSv1_2:
        # TLS 1.2: the refusal is part of the handshake
        assert record["phase"] == "handshake"
        assert record["upstream"]["protocol"] is None


def test_gateway_that_only_requests_a_certificate_sees_none_when_none_is_configured(upstream, bridge):
    server = upstream(client_auth="optional", threaded=True)
    b = bridge(server.address)
    echo_once(b)
    conn = server.wait_finished(1)[0]
    assert conn.handshake_done and conn.client_cert_subject is None
    record = b.wait_record()
    assert record["upstream"]["client_cert"] is None
    assert record["error"] is None


def test_client_certificate_is_also_sent_to_a_gateway_that_only_requests_it(upstream, bridge, pki):
    server = upstream(client_auth="optional", threaded=True)
    b = bridge(server.address, upstream=client_identity(pki, "cert+key"))
    echo_once(b)
    assert server.wait_finished(1)[0].client_cn == MERCHANT_CN
    assert MERCHANT_CN in (b.wait_record()["upstream"]["client_cert"] or "")


@pytest.mark.parametrize("command", ["check", "run"])
@pytest.mark.parametrize("cert_attr, wording", [("client_cert_expired", "has expired"),
                                                ("client_cert_not_yet_valid", "not valid yet")],
                         ids=["expired", "not-yet-valid"])
def test_client_certificate_outside_its_validity_is_refused_at_start(cli, pki, tmp_path, command, cert_attr, wording):
    """The gateway would refuse such a certificate in every handshake; the bridge says so once, at start, naming
    client_cert and which side of the validity window it is on (renewal installed early vs. expired)."""
    cfg = base_config(pki, tmp_path, "127.0.0.1:4433",
                      upstream={"client_cert": str(getattr(pki, cert_attr)), "client_key": str(pki.client_key)})
    path = tmp_path / "tls-bridge.toml"
    path.write_text(to_toml(cfg))
    result = cli(command, "--config", str(path), timeout=15)
    assert result.returncode != 0, f"{command} accepted a client certificate outside its validity:\n{result.stdout}"
    lines = [l for l in result.stderr.splitlines() if "upstream[gw].client_cert:" in l]
    assert lines, f"stderr does not name upstream[gw].client_cert:\n{result.stderr}"
    assert wording in lines[0], lines[0]
