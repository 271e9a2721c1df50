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


# One dial path: probe resolves, filters and times out exactly as sessions do (see Dialer).

def probe_with(cli, pki, tmp_path, address, *, dns=None, listener=None, limits=None, **upstream):
    cfg = base_config(pki, tmp_path, address, upstream=upstream or None, dns=dns, listener=listener, limits=limits)
    path = tmp_path / "probe.toml"
    path.write_text(to_toml(cfg))
    return cli("probe", "--config", str(path))


def test_probe_resolves_through_the_configured_name_server_as_sessions_do(cli, pki, tmp_path, upstream, dns_stub):
    from support.certs import GATEWAY_NAME
    server = upstream()
    stub = dns_stub({GATEWAY_NAME: "127.0.0.1"})
    result = probe_with(cli, pki, tmp_path, f"{GATEWAY_NAME}:{server.port}", server_name=None,
                        dns={"nameservers": [stub.address], "timeout": "2s"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert any(name == GATEWAY_NAME for name, _ in stub.queries), f"probe did not ask [dns] nameservers: {stub.queries}"
    assert f"connected to {server.address}" in result.stdout, result.stdout


def test_probe_never_dials_the_bridges_own_listener(cli, pki, tmp_path, dns_stub):
    from support.certs import GATEWAY_NAME
    from support.bridge import free_port
    port = free_port()
    # The gateway's name resolves to this bridge's own listener only (a hosts-file set-up gone wrong).
    stub = dns_stub({GATEWAY_NAME: "127.0.0.1"})
    result = probe_with(cli, pki, tmp_path, f"{GATEWAY_NAME}:{port}", server_name=None,
                        dns={"nameservers": [stub.address], "timeout": "2s"},
                        listener={"listen": f"127.0.0.1:{port}"})
    assert result.returncode == 2, result.stdout + result.stderr
    assert "own listener" in result.stdout, result.stdout


def test_probe_gives_up_at_connect_timeout_as_sessions_do(cli, pki, tmp_path, dns_stub):
    import time
    stub = dns_stub({}, silent=True)
    started = time.monotonic()
    result = probe_with(cli, pki, tmp_path, "gateway.test:443", server_name=None,
                        dns={"nameservers": [stub.address], "timeout": "5s"}, limits={"connect_timeout": "1s"})
    elapsed = time.monotonic() - started
    assert result.returncode == 2, result.stdout + result.stderr
    assert "within connect_timeout (1s)" in result.stdout, result.stdout
    assert elapsed < 4, f"probe took {elapsed:.1f} s; connect_timeout is 1 s"
