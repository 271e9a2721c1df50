"""Unsafe or broken configurations are refused by both `check` and `run`, and the error names the key to fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.bridge import base_config, free_port, to_toml

MISSING = "/nonexistent/tls-bridge-test/missing.pem"


def _set(section: str, **values):
    def mutate(cfg: dict, pki) -> None:
        target = cfg[section][0]
        for key, value in values.items():
            target[key] = value(pki) if callable(value) else value
    return mutate


def _duplicate_listener(cfg: dict, pki) -> None:
    first = cfg["listener"][0]
    cfg["listener"].append(dict(first, name="b"))


def _public_listener(cfg: dict, pki) -> None:
    cfg["listener"][0].update(name="x", listen=f"0.0.0.0:{free_port()}")


def _client_identity(cert, key):
    return _set("upstream", client_cert=lambda p: str(getattr(p, cert) if hasattr(p, cert) else cert),
                client_key=lambda p: str(getattr(p, key) if hasattr(p, key) else key))


CASES = [
    ("min-version-tls1.0", _set("upstream", min_version="TLS1.0"), "upstream[gw].min_version"),
    ("min-version-tls1.1", _set("upstream", min_version="TLS1.1"), "upstream[gw].min_version"),
    *[(f"cipher-{c}", _set("upstream", ciphers=c), "upstream[gw].ciphers")
      for c in ("DES-CBC3-SHA", "NULL-SHA256", "RC4-SHA", "aNULL", "EXPORT")],
    ("cipher-list-with-3des-inside", _set("upstream", ciphers="ECDHE+AESGCM:DES-CBC3-SHA"), "upstream[gw].ciphers"),
    ("missing-ca-file", _set("upstream", ca_file=MISSING), "upstream[gw].ca_file"),
    ("empty-ca-file", _set("upstream", ca_file=lambda p: str(p.empty_pem)), "upstream[gw].ca_file"),
    ("ca-file-holding-only-a-key", _set("upstream", ca_file=lambda p: str(p.server_key)), "upstream[gw].ca_file"),
    ("missing-client-cert", _client_identity(MISSING, "client_key"), "upstream[gw].client_cert"),
    ("missing-client-key", _client_identity("client_cert", MISSING), "upstream[gw].client_key"),
    ("client-key-of-another-cert", _client_identity("client_cert", "mismatched_key"), "upstream[gw].client_key"),
    ("expired-client-cert", _client_identity("client_cert_expired", "client_key"), "upstream[gw].client_cert"),
    ("not-yet-valid-client-cert", _client_identity("client_cert_not_yet_valid", "client_key"),
     "upstream[gw].client_cert"),
    ("unknown-upstream", _set("listener", upstream="nope"), "listener[plain].upstream"),
    ("duplicate-listen-address", _duplicate_listener, "listener[b].listen"),
    ("public-listen-without-opt-in", _public_listener, "listener[x].listen"),
    ("unknown-key-verify", _set("upstream", verify=False), "upstream[gw].verify"),
]


def write_config(tmp_path: Path, pki, mutate=None) -> Path:
    cfg = base_config(pki, tmp_path, "127.0.0.1:4433")
    if mutate:
        mutate(cfg, pki)
    path = tmp_path / "tls-bridge.toml"
    path.write_text(to_toml(cfg))
    return path


def assert_refused(result, key: str) -> None:
    assert result.returncode != 0, f"accepted a config that must be refused; stdout:\n{result.stdout}"
    assert f"{key}:" in result.stderr, f"stderr does not name {key!r}:\n{result.stderr}"


@pytest.mark.parametrize("command", ["check", "run"])
@pytest.mark.parametrize("mutate, key", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_unusable_config_is_refused_naming_the_key(cli, pki, tmp_path, command, mutate, key):
    path = write_config(tmp_path, pki, mutate)
    assert_refused(cli(command, "--config", str(path), timeout=15), key)


@pytest.mark.parametrize("command", ["check", "run"])
def test_malformed_toml_is_refused_as_config(cli, tmp_path, command):
    path = tmp_path / "broken.toml"
    path.write_text('workers = 2\n[[upstream]\nname = "gw"\naddress = \n')
    result = cli(command, "--config", str(path), timeout=15)
    assert_refused(result, "config")


@pytest.mark.parametrize("command", ["check", "run"])
def test_every_error_is_reported_not_just_the_first(cli, pki, tmp_path, command):
    def several(cfg, pki):
        _set("upstream", min_version="TLS1.0", ca_file=MISSING)(cfg, pki)
        _set("listener", upstream="nope")(cfg, pki)
    result = cli(command, "--config", str(write_config(tmp_path, pki, several)), timeout=15)
    for key in ("upstream[gw].min_version", "upstream[gw].ca_file", "listener[plain].upstream"):
        assert_refused(result, key)


@pytest.mark.parametrize("attr", ["empty_pem", "server_key"], ids=["empty", "only-a-key"])
def test_a_ca_file_without_certificates_is_refused_saying_so(cli, pki, tmp_path, attr):
    """Not just the key: the operator is told which file it was and that it holds no certificate (the usual
    mistake is pointing ca_file at the key or at a bundle that was never filled)."""
    path = getattr(pki, attr)
    result = cli("check", "--config", str(write_config(tmp_path, pki, _set("upstream", ca_file=str(path)))))
    assert_refused(result, "upstream[gw].ca_file")
    line = next(l for l in result.stderr.splitlines() if "upstream[gw].ca_file:" in l)
    assert str(path) in line and "no usable PEM certificate" in line, line


def test_missing_config_file_is_refused(cli, tmp_path):
    path = tmp_path / "does-not-exist.toml"
    result = cli("check", "--config", str(path))
    assert result.returncode != 0
    assert str(path) in result.stderr or "does-not-exist.toml" in result.stderr, result.stderr


@pytest.mark.parametrize("mutate", [
    _set("upstream", ciphers="ECDHE+AESGCM:!3DES"),
    _set("listener", listen=f"0.0.0.0:{free_port()}", unsafe_listen_public=True),
    _set("upstream", min_version="TLS1.3"),
    _client_identity("client_cert", "client_key"),
], ids=["3des-exclusion", "public-listen-with-opt-in", "tls1.3-floor", "matching-client-key"])
def test_acceptable_variations_pass_check(cli, pki, tmp_path, mutate):
    """Controls for the refusals: the key alone is not what is refused, its unsafe value is."""
    result = cli("check", "--config", str(write_config(tmp_path, pki, mutate)))
    assert result.returncode == 0, result.stderr


def _readable_copy(source: Path, tmp_path: Path, mode: int) -> Path:
    copy = tmp_path / f"copy-{mode:o}-{source.name}"
    copy.write_bytes(source.read_bytes())
    copy.chmod(mode)
    return copy


@pytest.mark.parametrize("mode, refused", [(0o644, True), (0o640, True), (0o600, False)])
def test_a_client_cert_holding_its_key_needs_a_key_files_mode(cli, pki, tmp_path, mode, refused):
    """`client_cert` as one PEM with the key appended and no `client_key`: the file is the key file."""
    combined = _readable_copy(pki.client_combined, tmp_path, mode)
    result = cli("check", "--config", str(write_config(tmp_path, pki, _set("upstream", client_cert=str(combined)))))
    if not refused:
        assert result.returncode == 0, result.stderr
        return
    assert_refused(result, "upstream[gw].client_cert")
    line = next(l for l in result.stderr.splitlines() if "upstream[gw].client_cert:" in l)
    assert str(combined) in line and "private key" in line and "chmod 600" in line, line


def test_a_listener_cert_holding_its_key_needs_a_key_files_mode(cli, pki, legacy_pki, tmp_path):
    from support.legacy import tls_listener
    combined = _readable_copy(legacy_pki.listener_combined, tmp_path, 0o644)
    cfg = base_config(pki, tmp_path, "127.0.0.1:4433",
                      listener=tls_listener(legacy_pki, identity="none", cert=str(combined)))
    path = tmp_path / "tls-bridge.toml"
    path.write_text(to_toml(cfg))
    assert_refused(cli("check", "--config", str(path)), "listener[legacy].cert")
    combined.chmod(0o600)
    result = cli("check", "--config", str(path))
    assert result.returncode == 0, result.stderr
