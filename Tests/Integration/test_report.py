"""`tls-bridge report` over a log written by a real run: a plain session, a TLS 1.0 and a TLS 1.2 merchant on an
accept = "tls" listener, and a session refused because the upstream's port is closed. The JSON report's counts
equal the records, the TLS 1.0 (and plain) source is flagged and the TLS 1.2 one is not, the refused upstream is
listed with the record's reason; rotated/gzip files and malformed lines; `--verify` over chained logs built here
from those records (intact, one line edited, one deleted, across a rotation).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import socket
import ssl
from pathlib import Path

import pytest

from support.bridge import free_port
from support.legacy import SANDBOX, client_context, echo_over, merchant_upstream, tls_listener
from support.servers import closed_port


@pytest.fixture
def gateway(upstream):
    """TLS 1.2-only gateway that requires the merchant's client certificate."""
    return upstream(client_auth="required", max_version=ssl.TLSVersion.TLSv1_2, name="gw")


@pytest.fixture
def mixed_log(bridge, pki, legacy_pki, gateway) -> tuple[Path, list[dict], int]:
    """Runs four different sessions through one bridge; returns (session log, its records, the closed port)."""
    port = closed_port()
    b = bridge(gateway.address, start=False, upstream=merchant_upstream(pki),
               extra_upstreams=[{"name": "down", "address": f"127.0.0.1:{port}"}])
    legacy_port, dead_port = free_port(), free_port()
    b.config["listener"].append(dict(tls_listener(legacy_pki, min_version="TLS1.0", routes={SANDBOX: "gw"},
                                                  upstream="gw"), listen=f"127.0.0.1:{legacy_port}"))
    b.config["listener"].append({"name": "dead", "listen": f"127.0.0.1:{dead_port}", "accept": "plain",
                                 "upstream": "down"})
    b.start()

    with b.connect() as s:  # plain → gw
        assert echo_over(s) == b"ping"
    for version in ("TLSv1", "TLSv1.2"):  # legacy listener, TLS 1.0 and TLS 1.2 merchants
        ctx = client_context(version, cafile=legacy_pki.listener_ca)
        with ctx.wrap_socket(socket.create_connection(("127.0.0.1", legacy_port), timeout=20),
                             server_hostname=SANDBOX) as s:
            assert s.version() == version
            assert echo_over(s) == b"ping"
    with socket.create_connection(("127.0.0.1", dead_port), timeout=10) as s:  # upstream port closed
        s.sendall(b"ECHO 4\nping")
        s.settimeout(10)
        try:
            assert s.recv(64) == b""
        except ConnectionResetError:
            pass
    b.wait_records(4)
    assert b.stop() == 0
    records = b.records()
    assert len(records) == 4, records
    return b.session_log, records, port


def report(cli, *args: str) -> dict:
    result = cli("report", "--json", *map(str, args))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def result_of(record: dict) -> str:
    return "ok" if record["error"] is None else record["close"]


def test_report_counts_equal_the_records_of_a_real_run(cli, mixed_log):
    log, records, _ = mixed_log
    r = report(cli, log)
    assert r["totals"]["records"] == len(records) == 4 and r["totals"]["malformed"] == 0, r["totals"]
    expected: dict[tuple, int] = {}
    for rec in records:
        key = (rec["listener"], rec["direction"], rec["downstream"]["protocol"] or "none", result_of(rec))
        expected[key] = expected.get(key, 0) + 1
    got = {(row["listener"], row["direction"], row["downstream_protocol"], row["result"]): row["count"]
           for row in r["sessions"]}
    assert got == expected
    assert got[("legacy", "outbound", "TLSv1", "ok")] == 1 and got[("dead", "outbound", "plain", "upstream_error")] == 1
    assert r["files"] == [{"path": str(log), "lines": 4, "records": 4, "malformed": 0, "compressed": False,
                           "error": None}]


def test_report_flags_the_tls10_and_plain_sources_but_not_tls12(cli, mixed_log):
    log, records, _ = mixed_log
    sources = {(row["address"], row["protocol"]): row for row in report(cli, log)["legacy_sources"]}
    assert set(sources) == {("127.0.0.1", "TLSv1"), ("127.0.0.1", "plain")}, sources
    tls10 = sources[("127.0.0.1", "TLSv1")]
    assert tls10["count"] == 1 and tls10["listeners"] == ["legacy"], tls10
    tls10_record = next(rec for rec in records if rec["downstream"]["protocol"] == "TLSv1")
    assert tls10["first_seen"] == tls10["last_seen"] == tls10_record["time"]
    assert sources[("127.0.0.1", "plain")]["count"] == 2
    assert sources[("127.0.0.1", "plain")]["listeners"] == ["dead", "plain"]


def test_report_lists_the_refused_upstream_with_its_reason_and_no_exception(cli, mixed_log):
    log, records, port = mixed_log
    evidence = report(cli, log)["upstream"]
    refused_record = next(rec for rec in records if rec["listener"] == "dead")
    assert evidence["refused"] == [{
        "upstream": "down", "address": f"127.0.0.1:{port}", "phase": "connect", "close": "upstream_error",
        "error": refused_record["error"], "count": 1, "first_seen": refused_record["time"],
        "last_seen": refused_record["time"]}]
    assert "refused" in refused_record["error"].lower()
    verified = [rec for rec in records if rec["upstream"]["protocol"] in ("TLSv1.2", "TLSv1.3")
                and rec["upstream"]["verify"] == "ok"]
    assert len(verified) == 3
    assert evidence["outbound"] == 4 and evidence["verified"] == 3 and evidence["reached"] == 3
    assert evidence["share_verified"] == 0.75 and evidence["share_of_reached"] == 1.0
    assert evidence["exceptions"] == [] and evidence["exceptions_total"] == 0
    assert evidence["by_protocol"] == {"TLSv1.2": 3}


def test_report_text_has_the_same_findings(cli, mixed_log):
    log, records, port = mixed_log
    result = cli("report", str(log))
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "4 session records (4 outbound, 0 inbound)" in text
    assert "exceptions (reached the upstream without TLS >= 1.2 and a verified certificate): none" in text
    legacy = text.split("Merchant systems still on plain TCP or TLS below 1.2", 1)[1].split("\n\n", 1)[0]
    assert any(line.split()[:2] == ["127.0.0.1", "TLSv1"] for line in legacy.splitlines()), legacy
    assert f"127.0.0.1:{port}" in text
    assert "note: session records carry certificate subjects, not expiry dates" in text


def test_report_reads_rotated_gzip_files_counts_malformed_lines_and_filters_by_since(cli, mixed_log, tmp_path):
    log, records, _ = mixed_log
    lines = log.read_bytes().splitlines()
    rotated = tmp_path / "sessions.jsonl.1.gz"
    with gzip.open(rotated, "wb") as f:
        f.write(b"\n".join(lines[:2]) + b"\n")
    current = tmp_path / "sessions.jsonl"
    current.write_bytes(b"\n".join(lines[2:]) + b"\n{\"half\":\n")
    r = report(cli, rotated, current)
    assert r["totals"]["records"] == 4 and r["totals"]["malformed"] == 1
    assert [f["compressed"] for f in r["files"]] == [True, False]
    assert r["malformed"] == [{"at": {"file": str(current), "line": 3}, "reason": "not JSON"}]
    assert sum(row["count"] for row in r["sessions"]) == 4
    future = report(cli, "--since", "2999-01-01", rotated, current)
    assert future["totals"]["records"] == 0 and future["totals"]["before_since"] == 4 and future["sessions"] == []
    first = min(rec["time"] for rec in records)
    assert report(cli, "--since", first, log)["totals"]["records"] == 4


def test_report_refuses_a_bad_since_and_names_an_unreadable_file(cli, mixed_log, tmp_path):
    log, _, _ = mixed_log
    bad = cli("report", "--since", "last tuesday", str(log))
    assert bad.returncode != 0 and "--since" in bad.stderr
    missing = cli("report", "--json", str(log), str(tmp_path / "absent.jsonl"))
    assert missing.returncode == 1
    assert "absent.jsonl" in missing.stderr and "No such file" in missing.stderr
    assert json.loads(missing.stdout)["totals"]["records"] == 4


# --- the tamper-evidence chain (the writer side lands separately: chained logs are built here) -----------------

def chain(lines: list[bytes], prev: str = "genesis") -> list[bytes]:
    out = []
    for line in lines:
        obj = json.loads(line)
        obj["prev"] = prev
        chained = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
        out.append(chained)
        prev = hashlib.sha256(chained).hexdigest()
    return out


def write(path: Path, lines: list[bytes], compress: bool = False) -> Path:
    data = b"".join(line + b"\n" for line in lines)
    if compress:
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)
    return path


@pytest.fixture
def chained_lines(mixed_log) -> list[bytes]:
    log, _, _ = mixed_log
    real = log.read_bytes().splitlines()
    return chain(real * 3)  # 12 real records


def test_verify_passes_an_untouched_chain_across_a_rotation(cli, chained_lines, tmp_path):
    old = write(tmp_path / "sessions.jsonl.1.gz", chained_lines[:5], compress=True)
    cur = write(tmp_path / "sessions.jsonl", chained_lines[5:])
    result = cli("report", "--verify", str(old), str(cur))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("intact (12 records)")
    last = hashlib.sha256(chained_lines[-1]).hexdigest()
    assert last in result.stdout
    as_json = json.loads(cli("report", "--verify", "--json", str(old), str(cur)).stdout)
    assert as_json["intact"] is True and as_json["records"] == 12 and as_json["last"]["sha256"] == last


def test_verify_fails_at_an_edited_line(cli, chained_lines, tmp_path):
    edited = list(chained_lines)
    edited[6] = edited[6].replace(b'"session":"', b'"session":"x', 1)
    assert edited[6] != chained_lines[6]
    log = write(tmp_path / "sessions.jsonl", edited)
    result = cli("report", "--verify", str(log))
    assert result.returncode == 1
    assert result.stdout.startswith(f"BROKEN at {log}:8: prev does not match the SHA-256 of line 7"), result.stdout


def test_verify_fails_where_a_line_was_deleted_also_across_files(cli, chained_lines, tmp_path):
    log = write(tmp_path / "sessions.jsonl", chained_lines[:3] + chained_lines[4:])
    result = cli("report", "--verify", "--json", str(log))
    assert result.returncode == 1
    verdict = json.loads(result.stdout)
    assert verdict["intact"] is False and verdict["breaks_total"] == 1
    assert verdict["breaks"][0]["at"] == {"file": str(log), "line": 4}
    assert verdict["breaks"][0]["kind"] == "prev_mismatch"
    old = write(tmp_path / "sessions.jsonl.1.gz", chained_lines[:4], compress=True)  # its last line, 5, is gone
    cur = write(tmp_path / "cur.jsonl", chained_lines[5:])
    across = cli("report", "--verify", str(old), str(cur))
    assert across.returncode == 1 and across.stdout.startswith(f"BROKEN at {cur}:1:"), across.stdout


def test_verify_help_says_what_it_does_and_does_not_detect(cli):
    result = cli("report", "--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    assert "Detected: a record edited, deleted or inserted" in text
    assert "Not detected: records cut from the end" in text and "off-host" in text
