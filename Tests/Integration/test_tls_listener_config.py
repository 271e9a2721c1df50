"""accept = "tls" configuration: `check` refuses broken listener configs naming the key, keeps refusing legacy
versions toward the gateway, accepts the valid identity variants, and describes a legacy listener (the versions
it accepts, and that this OpenSSL has no 3DES/RC4)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from support.bridge import base_config, free_port, to_toml
from support.legacy import MODULE, SANDBOX, XP_NOTE, fingerprint, routes, tls_listener

MISSING = "/nonexistent/tls-bridge-test/missing.pem"


def write_config(tmp_path: Path, pki, legacy_pki, *, listener: dict | None = None, upstream: dict | None = None,
                 extra_listener: dict | None = None) -> Path:
    cfg = base_config(pki, tmp_path, "127.0.0.1:4433", upstream=upstream,
                      extra_upstreams=[{"name": "gw2", "address": "127.0.0.1:4434"}],
                      listener=listener if listener is not None else tls_listener(legacy_pki, min_version="TLS1.0"))
    if extra_listener:
        cfg["listener"].append(dict({"listen": f"127.0.0.1:{free_port()}"}, **extra_listener))
    path = tmp_path / "tls-bridge.toml"
    path.write_text(to_toml(cfg))
    return path


def assert_refused(result, *keys: str) -> None:
    """Non-zero exit and stderr names (one of) `keys`, as `key:`."""
    assert result.returncode != 0, f"accepted a config that must be refused; stdout:\n{result.stdout}"
    assert any(f"{key}:" in result.stderr for key in keys), f"stderr does not name {keys}:\n{result.stderr}"


def L(**keys):
    """A tls listener "legacy" built from keys; identity="none" unless given."""
    identity = keys.pop("identity", "none")
    return lambda lp, p: tls_listener(lp, identity=identity, **{k: (v(lp, p) if callable(v) else v)
                                                                for k, v in keys.items()})


CASES = [
    ("no-identity", L(min_version="TLS1.0"), ["listener[legacy].cert"]),
    ("cert-without-key", L(cert=lambda lp, p: str(lp.listener_cert)), ["listener[legacy].key",
                                                                      "listener[legacy].cert"]),
    ("ca-cert-without-ca-key", L(ca_cert=lambda lp, p: str(lp.mint_ca)), ["listener[legacy].ca_key"]),
    ("missing-cert-file", L(cert=MISSING, key=lambda lp, p: str(lp.listener_key)), ["listener[legacy].cert"]),
    ("key-of-another-cert", L(cert=lambda lp, p: str(lp.listener_cert), key=lambda lp, p: str(lp.module_key)),
     ["listener[legacy].key"]),
    ("route-to-unknown-upstream", L(identity="static", routes={SANDBOX: "nope"}),
     [f"listener[legacy].routes.{SANDBOX}"]),
    ("default-to-unknown-upstream", L(identity="static", upstream="nope"), ["listener[legacy].upstream"]),
    ("no-default-and-no-routes", L(identity="static", upstream=None), ["listener[legacy].upstream",
                                                                      "listener[legacy].routes"]),
    ("per-name-certs-not-covering-every-route",
     L(upstream=None, routes=routes(),
       certificates=lambda lp, p: {MODULE: {"cert": str(lp.module_cert), "key": str(lp.module_key)}}),
     ["listener[legacy].cert", f"listener[legacy].certificates.{SANDBOX}"]),
    ("require-client-cert-without-ca-or-fingerprints", L(identity="static", require_client_cert=True),
     ["listener[legacy].require_client_cert", "listener[legacy].client_ca"]),
    ("missing-client-ca-file", L(identity="static", require_client_cert=True, client_ca=MISSING),
     ["listener[legacy].client_ca"]),
    ("empty-client-ca-file", L(identity="static", require_client_cert=True, client_ca=lambda lp, p: str(p.empty_pem)),
     ["listener[legacy].client_ca"]),
    ("client-ca-file-holding-only-a-key",
     L(identity="static", require_client_cert=True, client_ca=lambda lp, p: str(p.client_key)),
     ["listener[legacy].client_ca"]),
    ("malformed-fingerprint", L(identity="static", require_client_cert=True, client_cert_fingerprints=["zz:01"]),
     ["listener[legacy].client_cert_fingerprints"]),
    ("min-version-above-max-version", L(identity="static", min_version="TLS1.2", max_version="TLS1.1"),
     ["listener[legacy].min_version", "listener[legacy].max_version"]),
    ("min-version-sslv3", L(identity="static", min_version="SSL3.0"), ["listener[legacy].min_version"]),
    ("min-version-garbage", L(identity="static", min_version="TLS1.5"), ["listener[legacy].min_version"]),
    ("max-version-garbage", L(identity="static", max_version="TLSv9"), ["listener[legacy].max_version"]),
    ("3des-cipher-string", L(identity="static", min_version="TLS1.0", ciphers="DES-CBC3-SHA"),
     ["listener[legacy].ciphers"]),
    ("accept-garbage", L(identity="static", accept="ssl"), ["listener[legacy].accept"]),
]


@pytest.mark.parametrize("make, keys", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_broken_tls_listener_is_refused_by_check_naming_the_key(cli, pki, legacy_pki, tmp_path, make, keys):
    path = write_config(tmp_path, pki, legacy_pki, listener=make(legacy_pki, pki))
    assert_refused(cli("check", "--config", str(path), timeout=15), *keys)


def test_broken_tls_listener_is_refused_by_run_too(cli, pki, legacy_pki, tmp_path):
    path = write_config(tmp_path, pki, legacy_pki, listener=tls_listener(legacy_pki, identity="none"))
    assert_refused(cli("run", "--config", str(path), timeout=15), "listener[legacy].cert")


@pytest.mark.parametrize("key, value", [
    ("cert", "listener.pem"), ("key", "listener.key"), ("ca_cert", "mint-ca.pem"), ("ca_key", "mint-ca.key"),
    ("min_version", "TLS1.0"), ("max_version", "TLS1.3"), ("require_client_cert", True),
    ("client_ca", "client-ca.pem"), ("routes", {SANDBOX: "gw"}),
])
def test_tls_only_keys_on_a_plain_listener_are_refused(cli, pki, legacy_pki, tmp_path, key, value):
    if isinstance(value, str) and value.endswith((".pem", ".key")):
        value = str(legacy_pki.directory / value) if (legacy_pki.directory / value).exists() else str(pki.client_ca)
    path = write_config(tmp_path, pki, legacy_pki, listener={key: value})  # the base listener: plain
    assert_refused(cli("check", "--config", str(path), timeout=15), f"listener[plain].{key}")


@pytest.mark.parametrize("version", ["TLS1.0", "TLS1.1"])
def test_legacy_min_version_on_an_upstream_is_still_refused(cli, pki, legacy_pki, tmp_path, version):
    path = write_config(tmp_path, pki, legacy_pki, upstream={"min_version": version})
    result = cli("check", "--config", str(path), timeout=15)
    assert_refused(result, "upstream[gw].min_version")
    assert "listener[legacy]" not in result.stderr, f"the legacy listener itself is fine:\n{result.stderr}"


VALID = [
    ("static-legacy", lambda lp, p: tls_listener(lp, min_version="TLS1.0")),
    ("static-combined-pem", lambda lp, p: tls_listener(lp, identity="combined")),
    ("mint-routes-only", lambda lp, p: tls_listener(lp, identity="mint", upstream=None, routes=routes())),
    ("per-name-certs-for-every-route", lambda lp, p: tls_listener(
        lp, identity="none", upstream=None, routes=routes(),
        certificates={SANDBOX: {"cert": str(lp.listener_cert), "key": str(lp.listener_key)},
                      MODULE: {"cert": str(lp.module_cert), "key": str(lp.module_key)}})),
    ("client-ca", lambda lp, p: tls_listener(lp, require_client_cert=True, client_ca=str(p.client_ca))),
    ("fingerprints-bare-lower", lambda lp, p: tls_listener(
        lp, require_client_cert=True, client_cert_fingerprints=[fingerprint(p.client_cert, colons=False,
                                                                            lower=True)])),
    ("version-window", lambda lp, p: tls_listener(lp, min_version="TLS1.1", max_version="TLS1.2",
                                                  ciphers="DEFAULT:@SECLEVEL=0")),
    ("tls13-only", lambda lp, p: tls_listener(lp, min_version="TLS1.3",
                                              ciphersuites="TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256")),
    ("mixed-case-route-names", lambda lp, p: tls_listener(lp, routes={"Sandbox.Paygent.TEST": "gw",
                                                                      MODULE: "gw2"})),
]


@pytest.mark.parametrize("make", [v[1] for v in VALID], ids=[v[0] for v in VALID])
def test_valid_tls_listener_variants_pass_check(cli, pki, legacy_pki, tmp_path, make):
    """Controls for the refusals: each key is accepted with a sound value."""
    path = write_config(tmp_path, pki, legacy_pki, listener=make(legacy_pki, pki))
    result = cli("check", "--config", str(path), timeout=15)
    assert result.returncode == 0, result.stderr


def test_check_describes_a_legacy_listener_and_what_this_openssl_lacks(cli, pki, legacy_pki, tmp_path):
    path = write_config(tmp_path, pki, legacy_pki,
                        listener=tls_listener(legacy_pki, min_version="TLS1.0", routes=routes()))
    result = cli("check", "--config", str(path), timeout=15)
    assert result.returncode == 0, result.stderr
    out = result.stdout + result.stderr
    assert "legacy" in out, out
    assert re.search(r"TLS ?v?1\.0|TLSv1(?![.\d])", out), f"check does not say the listener accepts TLS 1.0:\n{out}"
    assert re.search(r"TLS ?v?1\.1", out), f"check does not list TLS 1.1 among the accepted versions:\n{out}"
    assert "3DES" in out, f"check does not say 3DES is unavailable:\n{out}"
    assert SANDBOX in out and MODULE in out, f"check does not show the routes:\n{out}"
    # in the operator's words: which clients, and where to send them (testssl's IE 6 / IE 8 on XP)
    assert XP_NOTE.search(out), f"check does not say Windows XP clients cannot use this listener:\n{out}"


@pytest.mark.parametrize("identity", ["static", "mint"])
def test_check_says_clients_without_sni_are_refused_when_there_is_no_default_upstream(cli, pki, legacy_pki,
                                                                                      tmp_path, identity):
    """Without `upstream`, a client that sends no SNI (or an unrouted name) gets unrecognized_name, whatever
    certificate the listener has: `check` must not claim it is presented one."""
    path = write_config(tmp_path, pki, legacy_pki,
                        listener=tls_listener(legacy_pki, identity=identity, upstream=None, routes=routes()))
    result = cli("check", "--config", str(path), timeout=15)
    assert result.returncode == 0, result.stderr
    line = next(l for l in result.stdout.splitlines() if "without SNI" in l)
    assert "refused" in line and "presents" not in line, line


def test_check_says_what_clients_without_sni_are_presented_with_a_default_upstream(cli, pki, legacy_pki, tmp_path):
    path = write_config(tmp_path, pki, legacy_pki, listener=tls_listener(legacy_pki, routes=routes()))
    result = cli("check", "--config", str(path), timeout=15)
    assert result.returncode == 0, result.stderr
    line = next(l for l in result.stdout.splitlines() if "without SNI" in l)
    assert "presents" in line and "refused" not in line, line
