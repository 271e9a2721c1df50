"""The command line: version, check on a good config, and a clean stop on SIGTERM/SIGINT."""

from __future__ import annotations

import re
import signal
import ssl
import subprocess
import time

import pytest

from support.bridge import base_config, recv_exact, to_toml, wait_closed


def installed_libevent_version() -> str | None:
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "libevent-2.1-7"], capture_output=True,
                             text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.match(r"(\d+\.\d+\.\d+)", out)
    return match.group(1) if match else None


def test_version_names_the_bridge_libevent_and_openssl_versions(cli):
    result = cli("version")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "tls-bridge" in out
    assert re.search(r"(?i)libevent\D*\d+\.\d+\.\d+", out), out
    assert re.search(r"OpenSSL\D*\d+\.\d+\.\d+", out), out
    # The versions are the linked libraries', not hard-coded text.
    openssl = ssl.OPENSSL_VERSION.split()[1]  # Python links the same system libssl
    assert openssl in out, f"OpenSSL {openssl} not in {out!r}"
    libevent = installed_libevent_version()
    if libevent:
        assert libevent in out, f"libevent {libevent} not in {out!r}"


def test_check_accepts_a_good_config_and_describes_what_it_would_run(cli, pki, tmp_path):
    cfg = base_config(pki, tmp_path, "127.0.0.1:4433")
    path = tmp_path / "good.toml"
    path.write_text(to_toml(cfg))
    result = cli("check", "--config", str(path))
    assert result.returncode == 0, result.stderr
    described = result.stdout + result.stderr
    for detail in ("plain", cfg["listener"][0]["listen"], "gw", "127.0.0.1:4433", "gateway.test"):
        assert detail in described, f"check output does not mention {detail!r}:\n{described}"
    assert not (tmp_path / "sessions.jsonl").exists() or (tmp_path / "sessions.jsonl").read_text() == ""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_stop_signal_exits_0_and_records_open_sessions_as_shutdown(upstream, bridge, sig):
    """A session still open when drain_timeout (1 s here) ends is closed by the bridge and logged."""
    server = upstream()
    b = bridge(server.address, limits={"drain_timeout": "1s"})
    with b.connect() as s:
        s.sendall(b"ECHO\nping")
        assert recv_exact(s, 4) == b"ping"
        started = time.monotonic()
        code = b.stop(sig, timeout=10)
        stopped_in = time.monotonic() - started
        assert code == 0, f"exit code {code} after {sig.name}; stderr:\n{b.stderr()[-2000:]}"
        assert stopped_in < 5.0, f"took {stopped_in:.1f} s to stop"
        data, _ = wait_closed(s, 5)
        assert data == b""
    records = b.records()
    assert len(records) == 1, records
    record = records[0]
    assert record["close"] == "shutdown"
    assert "drain_timeout" in record["error"], record
    assert record["bytes"] == {"up": 9, "down": 4}
    assert record["upstream"]["protocol"] in ("TLSv1.2", "TLSv1.3")
    conn = server.wait_finished(1, timeout=5)[0]
    assert conn.finished.is_set(), "the upstream connection was left open after the bridge exited"


def test_idle_bridge_stops_on_sigterm_without_records(upstream, bridge):
    server = upstream()
    b = bridge(server.address)
    assert b.stop(signal.SIGTERM, timeout=10) == 0
    assert b.records() == []
    assert server.connections == [], "the bridge connected upstream without a downstream connection"
