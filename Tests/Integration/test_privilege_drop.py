"""Started as root with `user = "nobody"`, the bridge binds its port and reads its keys as root, then
runs as nobody — and still bridges."""

from __future__ import annotations

import os
import pwd

import pytest

from support.bridge import recv_exact


@pytest.mark.skipif(os.geteuid() != 0, reason="needs to start as root to drop to another user")
def test_running_bridge_drops_to_the_configured_user(upstream, bridge):
    nobody = pwd.getpwnam("nobody")
    server = upstream()
    b = bridge(server.address, start=False)
    b.config["user"] = "nobody"
    b.start()
    uids = next(line for line in open(f"/proc/{b.pid}/status") if line.startswith("Uid:")).split()[1:]
    assert uids == [str(nobody.pw_uid)] * 4, f"real/effective/saved/fs uids are {uids}"
    with b.connect() as s:
        s.sendall(b"ECHO 4\nping")
        assert recv_exact(s, 4) == b"ping"
    assert b.wait_record()["error"] is None


def test_an_unknown_user_is_refused_naming_the_key(cli, pki, tmp_path):
    from support.bridge import base_config, to_toml
    cfg = base_config(pki, tmp_path, "127.0.0.1:4433")
    cfg["user"] = "no-such-user-tls-bridge"
    path = tmp_path / "user.toml"
    path.write_text(to_toml(cfg))
    result = cli("run", "--config", str(path), timeout=20)
    assert result.returncode != 0 and "user:" in result.stderr, result.stderr
