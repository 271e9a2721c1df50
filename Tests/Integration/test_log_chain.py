"""`[log] chain = true`: the bridge writes a hash chain through its session records, continuing across a
restart and a SIGHUP reopen, and `tls-bridge report --verify` finds an edited or deleted line."""

from __future__ import annotations

import signal
import time

from support.bridge import recv_exact


def one_session(b, payload: bytes = b"ping"):
    with b.connect() as s:
        s.sendall(b"ECHO %d\n" % len(payload) + payload)
        assert recv_exact(s, len(payload)) == payload


def test_chain_survives_restart_and_reload_and_catches_edits(upstream, bridge, cli, tmp_path):
    server = upstream()
    b = bridge(server.address, start=False)
    b.config["log"]["chain"] = True
    b.start()
    for _ in range(3):
        one_session(b)
    b.wait_records(3)
    b.proc.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    one_session(b)
    b.wait_records(4)
    assert b.stop() == 0
    b.start()  # a restart continues the chain from the file's last line
    one_session(b)
    records = b.wait_records(5)
    assert records[0]["prev"] == "genesis" and all(r["prev"] != "genesis" for r in records[1:]), records

    log = b.session_log
    result = cli("report", "--verify", str(log))
    assert result.returncode == 0 and "intact (5 records)" in result.stdout, result.stdout + result.stderr

    lines = log.read_text().splitlines()
    edited = tmp_path / "edited.jsonl"
    edited.write_text("\n".join(lines[:2] + [lines[2].replace('"up":', '"up":1')] + lines[3:]) + "\n")
    result = cli("report", "--verify", str(edited))
    assert result.returncode == 1 and f"{edited}:4" in result.stdout, result.stdout

    deleted = tmp_path / "deleted.jsonl"
    deleted.write_text("\n".join(lines[:1] + lines[2:]) + "\n")
    result = cli("report", "--verify", str(deleted))
    assert result.returncode == 1 and f"{deleted}:2" in result.stdout, result.stdout
