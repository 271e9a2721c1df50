"""`tls-bridge probe`: a real handshake to each upstream, the operator's pre-cutover check."""

from __future__ import annotations

from support.bridge import base_config, to_toml


def probe(cli, pki, tmp_path, address, **upstream):
    cfg = base_config(pki, tmp_path, address, upstream=upstream or None)
    path = tmp_path / "probe.toml"
    path.write_text(to_toml(cfg))
    return cli("probe", "--config", str(path))


def test_probe_reports_protocol_certificate_and_verification(cli, pki, tmp_path, upstream):
    server = upstream()
    result = probe(cli, pki, tmp_path, server.address)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "verification: ok" in result.stdout
    assert "TLSv1.3" in result.stdout or "TLSv1.2" in result.stdout
    assert "CN=gateway.test" in result.stdout
    assert len(server.wait_finished(1)) == 1, "probe did not reach the gateway"


def test_probe_says_when_the_gateway_wants_a_client_certificate_none_is_configured(cli, pki, tmp_path, upstream):
    server = upstream(client_auth="required")
    result = probe(cli, pki, tmp_path, server.address, client_cert=None, client_key=None)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "FAILED" in result.stdout
    assert "client certificate" in result.stdout and "client_cert" in result.stdout, result.stdout


def test_probe_fails_on_a_closed_port_naming_it(cli, pki, tmp_path):
    from support.servers import closed_port
    address = f"127.0.0.1:{closed_port()}"
    result = probe(cli, pki, tmp_path, address)
    assert result.returncode == 2
    assert "refused" in result.stdout.lower() and address in result.stdout, result.stdout
