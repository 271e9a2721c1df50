"""[[backend]] and the notify listener's keys: `check` (and `run`) refuse broken or unsafe configs naming the key;
a legacy-TLS backend must be loopback/private unless `unsafe_public_backend = true` (config only: the public
address is never dialled); the valid variants pass."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.bridge import free_port, to_toml
from support.inbound import BACKEND, inbound_config, legacy_backend, notify_listener, plain_backend

KEY_BACKEND = f"backend[{BACKEND}]"
KEY_LISTENER = "listener[notify]"


def write(tmp_path: Path, ipki, *, backend: dict | None = None, listener: dict | None = None,
          upstreams: list | None = None) -> Path:
    cfg = inbound_config(tmp_path, [backend or plain_backend("127.0.0.1:8080")],
                         [listener or notify_listener(ipki)], upstreams=upstreams)
    path = tmp_path / "tls-bridge.toml"
    path.write_text(to_toml(cfg))
    return path


def assert_refused(result, *keys: str) -> None:
    assert result.returncode != 0, f"accepted a config that must be refused; stdout:\n{result.stdout}"
    assert any(f"{key}:" in result.stderr for key in keys), f"stderr does not name {keys}:\n{result.stderr}"


def _empty_file(ipki) -> Path:
    """A zero-byte PEM file beside the inbound PKI: a CA bundle that was never filled."""
    path = ipki.directory / "empty-ca.pem"
    path.write_bytes(b"")
    return path


GW = {"name": "gw", "address": "127.0.0.1:4433", "server_name": "gateway.test", "min_version": "TLS1.2"}

# (id, backend(ipki), listener(ipki), upstreams, expected key)
CASES = [
    ("legacy-public-address", lambda i: legacy_backend("8.8.8.8:443", i), None, None, f"{KEY_BACKEND}.address"),
    ("legacy-public-just-outside-172.16/12", lambda i: legacy_backend("172.32.0.1:443", i), None, None,
     f"{KEY_BACKEND}.address"),
    ("legacy-public-ipv6", lambda i: legacy_backend("[2001:4860:4860::8888]:443", i), None, None,
     f"{KEY_BACKEND}.address"),
    ("legacy-public-unsafe-flag-false", lambda i: legacy_backend("8.8.8.8:443", i, unsafe_public_backend=False),
     None, None, f"{KEY_BACKEND}.address"),
    ("pin-malformed", lambda i: legacy_backend("127.0.0.1:8443", i, pin_sha256="AB:CD:zz"), None, None,
     f"{KEY_BACKEND}.pin_sha256"),
    ("ca-file-empty", lambda i: legacy_backend("127.0.0.1:8443", i, variant="ca", ca_file=str(_empty_file(i))),
     None, None, f"{KEY_BACKEND}.ca_file"),
    ("ca-file-holding-only-a-key", lambda i: legacy_backend("127.0.0.1:8443", i, variant="ca", ca_file=str(i.backend_key)),
     None, None, f"{KEY_BACKEND}.ca_file"),
    ("tls-unknown-value", lambda i: plain_backend("127.0.0.1:8080", tls="ssl3"), None, None, f"{KEY_BACKEND}.tls"),
    ("tls-modern-not-a-value", lambda i: plain_backend("127.0.0.1:8080", tls="on"), None, None,
     f"{KEY_BACKEND}.tls"),
    ("listener-unknown-backend", None, lambda i: notify_listener(i, backend="nope"), None,
     f"{KEY_LISTENER}.backend"),
    ("listener-backend-and-upstream", None, lambda i: notify_listener(i, upstream="gw"), [GW],
     f"{KEY_LISTENER}.backend"),
    ("listener-backend-and-routes", None, lambda i: notify_listener(i, routes={"sandbox.paygent.test": "gw"}), [GW],
     f"{KEY_LISTENER}.backend"),
    *[(f"allow-sources-{name}", None, (lambda v: lambda i: notify_listener(i, allow_sources=[v]))(value), None,
       f"{KEY_LISTENER}.allow_sources")
      for name, value in [("prefix-33", "127.0.0.1/33"), ("not-an-address", "gateway.example"),
                          ("garbage-suffix", "10.0.0.0/8x"), ("ipv6-prefix-129", "::1/129"), ("empty", "")]],
    ("allow-sources-second-entry-bad", None, lambda i: notify_listener(i, allow_sources=["127.0.0.1/32", "300.1.1.1"]),
     None, f"{KEY_LISTENER}.allow_sources"),
    ("proxy-protocol-v3", None, lambda i: notify_listener(i, proxy_protocol="v3"), None,
     f"{KEY_LISTENER}.proxy_protocol"),
    ("proxy-protocol-true", None, lambda i: notify_listener(i, proxy_protocol="yes"), None,
     f"{KEY_LISTENER}.proxy_protocol"),
]


@pytest.mark.parametrize("backend, listener, upstreams, key", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_broken_inbound_config_is_refused_by_check_naming_the_key(cli, inbound_pki, tmp_path, backend, listener,
                                                                  upstreams, key):
    path = write(tmp_path, inbound_pki, backend=backend(inbound_pki) if backend else None,
                 listener=listener(inbound_pki) if listener else None, upstreams=upstreams)
    assert_refused(cli("check", "--config", str(path), timeout=15), key)


def test_legacy_backend_without_ca_file_or_pin_names_both(cli, inbound_pki, tmp_path):
    path = write(tmp_path, inbound_pki, backend=legacy_backend("127.0.0.1:8443", inbound_pki, variant="none"))
    result = cli("check", "--config", str(path), timeout=15)
    assert_refused(result, f"{KEY_BACKEND}.pin_sha256")
    line = next(l for l in result.stderr.splitlines() if f"{KEY_BACKEND}.pin_sha256:" in l)
    assert "ca_file" in line, f"the message should offer ca_file as the alternative: {line}"


def test_public_legacy_backend_is_refused_by_run_without_dialling(cli, inbound_pki, tmp_path):
    path = write(tmp_path, inbound_pki, backend=legacy_backend("8.8.8.8:443", inbound_pki))
    assert_refused(cli("run", "--config", str(path), timeout=15), f"{KEY_BACKEND}.address")


def test_every_inbound_error_is_reported(cli, inbound_pki, tmp_path):
    path = write(tmp_path, inbound_pki, backend=legacy_backend("8.8.8.8:443", inbound_pki, variant="none"),
                 listener=notify_listener(inbound_pki, allow_sources=["1.2.3.4/40"], proxy_protocol="v9"))
    result = cli("check", "--config", str(path), timeout=15)
    for key in (f"{KEY_BACKEND}.address", f"{KEY_BACKEND}.pin_sha256", f"{KEY_LISTENER}.allow_sources",
                f"{KEY_LISTENER}.proxy_protocol"):
        assert_refused(result, key)


VALID = [
    ("plain-loopback", lambda i: plain_backend("127.0.0.1:8080"), None),
    ("plain-public-needs-no-flag", lambda i: plain_backend("8.8.8.8:80"), None),
    ("legacy-public-with-unsafe-flag", lambda i: legacy_backend("8.8.8.8:443", i, unsafe_public_backend=True), None),
    *[(f"legacy-private-{a}", (lambda a: lambda i: legacy_backend(a, i))(a), None)
      for a in ("10.1.2.3:443", "172.16.0.5:443", "172.31.255.254:443", "192.168.1.10:443", "127.8.9.10:443",
                "[::1]:443", "[fd00::1]:443")],
    ("legacy-ca-file-and-server-name", lambda i: legacy_backend("192.168.1.10:443", i, variant="ca"), None),
    ("legacy-min-version-tls1.1", lambda i: legacy_backend("10.0.0.5:443", i, min_version="TLS1.1"), None),
    ("allow-sources-v4-and-v6", None, lambda i: notify_listener(i, allow_sources=["127.0.0.1/32", "10.0.0.0/8",
                                                                                  "::1/128", "fc00::/7"])),
    ("proxy-v1", None, lambda i: notify_listener(i, proxy_protocol="v1")),
    ("proxy-v2", None, lambda i: notify_listener(i, proxy_protocol="v2")),
    ("public-listen-with-opt-in", None, lambda i: notify_listener(i, listen=f"0.0.0.0:{free_port()}",
                                                                  unsafe_listen_public=True)),
    ("client-ca", None, lambda i: notify_listener(i, require_client_cert=True, client_ca=str(i.public_ca))),
]


@pytest.mark.parametrize("backend, listener", [v[1:] for v in VALID], ids=[v[0] for v in VALID])
def test_valid_inbound_variants_pass_check(cli, inbound_pki, tmp_path, backend, listener):
    """Controls for the refusals: each key is accepted with a sound value (nothing is dialled by check)."""
    path = write(tmp_path, inbound_pki, backend=backend(inbound_pki) if backend else None,
                 listener=listener(inbound_pki) if listener else None)
    result = cli("check", "--config", str(path), timeout=15)
    assert result.returncode == 0, result.stderr


def test_inbound_and_outbound_in_one_config_pass_check(cli, inbound_pki, pki, tmp_path):
    outbound = {"name": "plain", "listen": f"127.0.0.1:{free_port()}", "accept": "plain", "upstream": "gw"}
    cfg = inbound_config(tmp_path, [legacy_backend("127.0.0.1:8443", inbound_pki)],
                         [notify_listener(inbound_pki), outbound], upstreams=[dict(GW, ca_file=str(pki.ca))])
    path = tmp_path / "both.toml"
    path.write_text(to_toml(cfg))
    result = cli("check", "--config", str(path), timeout=15)
    assert result.returncode == 0, result.stderr

