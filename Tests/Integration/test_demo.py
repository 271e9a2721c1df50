"""`tls-bridge demo`: the self-contained run for a newcomer. It makes its own certificates, starts an
`openssl s_server` test gateway (TLS 1.2 only, client certificate required) and the bridge as children, sends a
plain and a TLS 1.0 request through them, prints the two session records and a verdict, and cleans up: no child
left running, no work directory left behind. It picks free ports unless told which; a port it is told to use that is
taken is named with the option to change it.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

DEMO_TIMEOUT = 90.0


@pytest.fixture
def demo_tmp(tmp_path, monkeypatch) -> Path:
    """TMPDIR for the demo's work directory, so that the test can see what it leaves behind."""
    directory = tmp_path / "tmpdir"
    directory.mkdir()
    monkeypatch.setenv("TMPDIR", str(directory))
    return directory


def printed_records(out: str) -> list[dict]:
    """The pretty-printed JSON objects in the demo's output, in order."""
    decoder = json.JSONDecoder()
    records = []
    index = 0
    while (start := out.find("\n{\n", index)) != -1:
        record, end = decoder.raw_decode(out, start + 1)
        records.append(record)
        index = end
    return records


def processes_mentioning(text: str) -> list[str]:
    """Command lines of running processes that contain `text` (the demo's children name its work directory)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(f"{entry.name}: {cmdline}")
    return found


def hold_port() -> socket.socket:
    """A listening socket on a free 127.0.0.1 port, as another program holding the port would have."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen()
    return s


def assert_clean(demo_tmp: Path) -> None:
    left = list(demo_tmp.iterdir())
    assert left == [], f"the demo left its work directory behind: {left}"
    assert processes_mentioning(str(demo_tmp)) == [], "a child of the demo is still running"


def test_demo_passes_with_a_plain_and_a_tls10_record_and_cleans_up(cli, demo_tmp):
    result = cli("demo", "--port-plain", "0", "--port-tls", "0", timeout=DEMO_TIMEOUT)
    out = result.stdout
    if result.returncode == 3 and "cannot speak TLS 1.0" in out:
        pytest.skip("this OpenSSL cannot speak TLS 1.0 as a client; the demo said so")
    assert result.returncode == 0, f"stdout:\n{out}\nstderr:\n{result.stderr}"
    verdicts = [line for line in out.splitlines() if line.startswith(("PASS:", "FAIL:", "INCOMPLETE:"))]
    assert len(verdicts) == 1 and verdicts[0].startswith("PASS:"), out
    assert out.rstrip().splitlines()[-1] == verdicts[0], "the verdict is the last line"

    records = printed_records(out)
    assert len(records) == 2, out
    by_listener = {record["listener"]: record for record in records}
    assert set(by_listener) == {"plain", "legacy-tls"}, records
    assert by_listener["plain"]["downstream"]["protocol"] == "plain"
    legacy = by_listener["legacy-tls"]["downstream"]
    assert legacy["protocol"] == "TLSv1" and legacy["sni"] == "gateway.demo", legacy
    for record in records:
        assert record["error"] is None, record
        up = record["upstream"]
        assert up["protocol"] in ("TLSv1.2", "TLSv1.3"), up
        assert up["verify"] == "ok" and up["peer"] == "CN=gateway.demo", up
        assert up["client_cert"] == "CN=merchant.demo", up
        assert record["bytes"]["down"] > 0, record
    assert_clean(demo_tmp)


def test_demo_keep_leaves_the_files_and_the_log_holds_exactly_the_printed_records(cli, demo_tmp):
    result = cli("demo", "--port-plain", "0", "--port-tls", "0", "--keep", timeout=DEMO_TIMEOUT)
    if result.returncode == 3:
        pytest.skip("this OpenSSL cannot speak TLS 1.0 as a client")
    assert result.returncode == 0, result.stdout + result.stderr
    (workdir,) = demo_tmp.iterdir()
    assert workdir.name.startswith("tls-bridge-demo-")
    assert str(workdir) in result.stdout
    assert workdir.stat().st_mode & 0o777 == 0o700
    for name in ("demo.toml", "sessions.jsonl", "merchant.pem", "gateway-ca/ca.pem", "bridge-ca/ca.pem"):
        assert (workdir / name).is_file(), name
    logged = [json.loads(line) for line in (workdir / "sessions.jsonl").read_text().splitlines()]
    assert logged == printed_records(result.stdout)
    assert processes_mentioning(str(demo_tmp)) == []


def occupy(port: int) -> socket.socket | None:
    """Listens on 127.0.0.1:`port`, as another program using it would; None when one already does."""
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
        s.listen()
    except OSError:
        s.close()
        return None
    return s


def test_demo_without_port_options_picks_free_ports_when_18080_and_18443_are_taken(cli, demo_tmp):
    """The ports of the first versions' defaults are in use (here by this test, on a new user's machine by
    anything): with no option the demo picks free ports itself, says which, and passes."""
    holders = [occupy(port) for port in (18080, 18443)]
    try:
        result = cli("demo", timeout=DEMO_TIMEOUT)
    finally:
        for holder in holders:
            if holder is not None:
                holder.close()
    out = result.stdout
    if result.returncode == 3 and "cannot speak TLS 1.0" in out:
        pytest.skip("this OpenSSL cannot speak TLS 1.0 as a client; the demo said so")
    assert result.returncode == 0, f"stdout:\n{out}\nstderr:\n{result.stderr}"
    assert out.rstrip().splitlines()[-1].startswith("PASS:"), out
    plain = re.search(r"listener plain +127\.0\.0\.1:(\d+) ", out)
    legacy = re.search(r"listener legacy-tls +127\.0\.0\.1:(\d+) ", out)
    assert plain and legacy, out
    ports = {int(plain.group(1)), int(legacy.group(1))}
    assert len(ports) == 2 and not ports & {18080, 18443}, out
    assert "free ports" in out and "--port-plain" in out, "the output says the ports were picked and how to choose"
    assert_clean(demo_tmp)


@pytest.mark.parametrize("option", ["--port-plain", "--port-tls"])
def test_demo_with_a_taken_port_fails_naming_the_port_and_the_option(cli, demo_tmp, option):
    holder = hold_port()
    try:
        port = holder.getsockname()[1]
        other = "--port-tls" if option == "--port-plain" else "--port-plain"
        started = time.monotonic()
        result = cli("demo", option, str(port), other, "0", timeout=DEMO_TIMEOUT)
        elapsed = time.monotonic() - started
    finally:
        holder.close()
    assert result.returncode != 0, result.stdout
    message = result.stderr
    assert str(port) in message and option in message and "in use" in message, message
    assert "Traceback" not in message and "Fatal error" not in message, message
    assert elapsed < 10, f"a taken port should fail before anything starts, took {elapsed:.1f} s"
    assert_clean(demo_tmp)


def test_demo_stopped_by_sigterm_stops_its_children_and_removes_its_directory(bridge_bin, demo_tmp):
    demo = subprocess.Popen([str(bridge_bin), "demo", "--port-plain", "0", "--port-tls", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    try:
        seen = ""
        deadline = time.monotonic() + 60
        while "[3/6]" not in seen and time.monotonic() < deadline:  # the gateway runs, the bridge is starting
            line = demo.stdout.readline()
            if not line:
                break
            seen += line
        assert "[3/6]" in seen, seen + demo.stderr.read()
        assert processes_mentioning(str(demo_tmp)), "the test gateway should be running by now"
        demo.send_signal(signal.SIGTERM)
        out, err = demo.communicate(timeout=30)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    assert demo.returncode != 0
    assert "interrupted" in out + err, out + err
    assert_clean(demo_tmp)


def test_demo_help_names_the_options_and_exit_statuses(cli):
    result = cli("demo", "--help")
    assert result.returncode == 0
    for text in ("--port-plain", "--port-tls", "--keep", "Exit status"):
        assert text in result.stdout, result.stdout
