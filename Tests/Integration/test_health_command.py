"""`tls-bridge health`: the container HEALTHCHECK and Kubernetes exec probe ask the running process (its admin
endpoint), not the config file: healthy while it answers, unhealthy when it is stopped or gone, and unhealthy
(saying why) when the config has no admin endpoint to ask."""

from __future__ import annotations

import signal
import time

from support.bridge import free_port, run_cli


def _admin_bridge(bridge, upstream_address, host="127.0.0.1"):
    port = free_port()
    b = bridge(upstream_address, start=False)
    b.config["admin"] = {"listen": f"{host}:{port}"}
    b.start()
    return b, port


def test_health_is_0_while_the_running_bridge_answers(upstream, bridge, bridge_bin):
    server = upstream()
    b, port = _admin_bridge(bridge, server.address)
    result = run_cli(bridge_bin, "health", "--config", str(b.config_path))
    assert result.returncode == 0, result.stderr
    assert f"127.0.0.1:{port} answered 200 to /healthz" in result.stdout


def test_health_is_1_within_the_timeout_while_the_bridge_is_stopped(upstream, bridge, bridge_bin):
    """A wedged process: its port still accepts (the kernel does that), but nothing answers."""
    server = upstream()
    b, _ = _admin_bridge(bridge, server.address)
    b.proc.send_signal(signal.SIGSTOP)
    try:
        started = time.monotonic()
        result = run_cli(bridge_bin, "health", "--config", str(b.config_path), "--timeout", "1")
        elapsed = time.monotonic() - started
    finally:
        b.proc.send_signal(signal.SIGCONT)
    assert result.returncode == 1 and "no answer within the timeout" in result.stderr, result.stderr
    assert elapsed < 5, f"took {elapsed:.1f} s with --timeout 1"


def test_health_is_1_when_the_bridge_is_gone(upstream, bridge, bridge_bin):
    server = upstream()
    b, port = _admin_bridge(bridge, server.address)
    b.proc.send_signal(signal.SIGTERM)
    b.proc.wait(timeout=20)
    b.stopped_by_test = True
    result = run_cli(bridge_bin, "health", "--config", str(b.config_path))
    assert result.returncode == 1 and f"127.0.0.1:{port}: connect: Connection refused" in result.stderr, result.stderr


def test_health_without_an_admin_endpoint_is_1_and_names_the_key(upstream, bridge, bridge_bin):
    server = upstream()
    b = bridge(server.address)
    result = run_cli(bridge_bin, "health", "--config", str(b.config_path))
    assert result.returncode == 1
    assert "no [admin] listen" in result.stderr and "unhealthy" in result.stderr


def test_health_on_a_broken_config_is_1_naming_the_key(bridge_bin, tmp_path):
    config = tmp_path / "broken.toml"
    config.write_text('[admin]\nlisten = "not-an-address"\n')
    result = run_cli(bridge_bin, "health", "--config", str(config))
    assert result.returncode == 1 and "admin" in result.stderr
