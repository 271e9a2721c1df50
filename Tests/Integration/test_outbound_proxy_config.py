"""`[[upstream]] via` / `via_credentials` (issue #16) at load: what an operator can get wrong is refused by `check`
and `run`, naming the key; the good forms pass, and `check` shows the via (never the credentials)."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.bridge import base_config, to_toml
from support.outbound_proxy import PROXY_PASSWORD, PROXY_USER, secrets_of, write_credentials

VIA_KEY = "upstream[gw].via"
CREDENTIALS_KEY = "upstream[gw].via_credentials"


def write_config(tmp_path: Path, pki, **upstream) -> Path:
    cfg = base_config(pki, tmp_path, "sandbox.paygent.test:443", upstream=upstream)
    path = tmp_path / "tls-bridge.toml"
    path.write_text(to_toml(cfg))
    return path


def assert_refused(result, key: str) -> str:
    assert result.returncode != 0, f"accepted a config that must be refused; stdout:\n{result.stdout}"
    lines = [l for l in result.stderr.splitlines() if f"{key}:" in l]
    assert lines, f"stderr does not name {key!r}:\n{result.stderr}"
    return "\n".join(lines)


BAD_VIA = [
    ("https-scheme", "https://127.0.0.1:3128"),
    ("socks-scheme", "socks5://127.0.0.1:1080"),
    ("no-scheme", "127.0.0.1:3128"),
    ("no-port", "http://127.0.0.1"),
    ("no-port-name", "http://proxy.corp.test"),
    ("empty-port", "http://proxy.corp.test:"),
    ("port-zero", "http://127.0.0.1:0"),
    ("port-too-big", "http://127.0.0.1:65536"),
    ("path", "http://127.0.0.1:3128/proxy"),
    ("empty", ""),
]


@pytest.mark.parametrize("command", ["check", "run"])
@pytest.mark.parametrize("via", [c[1] for c in BAD_VIA], ids=[c[0] for c in BAD_VIA])
def test_an_unusable_via_is_refused_naming_the_key(cli, pki, tmp_path, command, via):
    assert_refused(cli(command, "--config", str(write_config(tmp_path, pki, via=via)), timeout=15), VIA_KEY)


@pytest.mark.parametrize("command", ["check", "run"])
def test_credentials_inside_the_via_url_are_refused_and_not_echoed(cli, pki, tmp_path, command):
    via = f"http://{PROXY_USER}:{PROXY_PASSWORD}@127.0.0.1:3128"
    result = cli(command, "--config", str(write_config(tmp_path, pki, via=via)), timeout=15)
    line = assert_refused(result, VIA_KEY)
    assert "via_credentials" in line, f"the error does not say where credentials go: {line}"
    for secret in secrets_of():
        assert secret not in result.stderr + result.stdout, f"the password in the URL was echoed: {result.stderr}"


@pytest.mark.parametrize("command", ["check", "run"])
def test_via_credentials_without_via_are_refused(cli, pki, tmp_path, command):
    creds = write_credentials(tmp_path / "proxy.credentials")
    result = cli(command, "--config", str(write_config(tmp_path, pki, via_credentials=str(creds))), timeout=15)
    assert_refused(result, CREDENTIALS_KEY)


@pytest.mark.parametrize("mode, refused", [(0o644, True), (0o640, True), (0o604, True), (0o600, False),
                                           (0o400, False)])
def test_via_credentials_need_a_key_files_mode(cli, pki, tmp_path, mode, refused):
    creds = write_credentials(tmp_path / "proxy.credentials", mode=mode)
    result = cli("check", "--config", str(write_config(tmp_path, pki, via="http://127.0.0.1:3128",
                                                         via_credentials=str(creds))))
    if not refused:
        assert result.returncode == 0, result.stderr
        return
    line = assert_refused(result, CREDENTIALS_KEY)
    assert str(creds) in line, line
    assert PROXY_PASSWORD not in result.stderr + result.stdout


def test_missing_or_malformed_via_credentials_are_refused(cli, pki, tmp_path):
    missing = tmp_path / "missing.credentials"
    assert_refused(cli("check", "--config", str(write_config(tmp_path, pki, via="http://127.0.0.1:3128",
                                                               via_credentials=str(missing)))), CREDENTIALS_KEY)
    no_colon = tmp_path / "no-colon.credentials"
    no_colon.write_text(PROXY_PASSWORD + "\n")
    no_colon.chmod(0o600)
    result = cli("check", "--config", str(write_config(tmp_path, pki, via="http://127.0.0.1:3128",
                                                         via_credentials=str(no_colon))))
    assert_refused(result, CREDENTIALS_KEY)
    assert PROXY_PASSWORD not in result.stderr + result.stdout, "the credentials file's content was echoed"


@pytest.mark.parametrize("via, shown", [("http://127.0.0.1:3128", "127.0.0.1:3128"),
                                        ("http://proxy.corp.test:8080", "proxy.corp.test:8080")],
                         ids=["ip", "name"])
def test_check_accepts_a_good_via_and_prints_it(cli, pki, tmp_path, via, shown):
    creds = write_credentials(tmp_path / "proxy.credentials")
    result = cli("check", "--config", str(write_config(tmp_path, pki, via=via, via_credentials=str(creds))))
    assert result.returncode == 0, result.stderr
    assert shown in result.stdout, f"check does not show the via {shown}:\n{result.stdout}"
    for secret in secrets_of():
        assert secret not in result.stdout + result.stderr, "check printed the proxy credentials"

