"""OpenSSL reads `;` in a cipher string as a separator, like `:`, `,` and space, and starts a rule at `@` or `!`
even without one (issue #13 item 3). None of these spellings gets a weak cipher string past the bridge:

- `check` and `run` refuse `ECDHE+AESGCM;@SECLEVEL=0` upstream and `eNULL;aNULL;DEFAULT:@SECLEVEL=0` on a tls
  listener (outbound and the notify listener in front of a backend) and on a backend, naming the key;
- `probe` never vouches for a gateway with a 1024-bit RSA key or a SHA-1-signed certificate through such a string,
  and never dials it (the control: with the default string, the security level refuses that gateway);
- a bridge whose legacy listener uses a legitimate cipher string never completes a handshake with a real client
  (`openssl s_client`, at security level 0) that offers only NULL or anonymous suites, and still serves a
  legacy client.
"""

from __future__ import annotations

import datetime
import ssl
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from support import certs
from support.bridge import base_config, to_toml
from support.certs import GATEWAY_NAME
from support.inbound import BACKEND, inbound_config, legacy_backend, notify_listener
from support.legacy import SANDBOX, assert_no_upstream_connection, s_client, tls_listener

SEMICOLON_SECLEVEL = "ECDHE+AESGCM;@SECLEVEL=0"
NULL_AND_ANON = "eNULL;aNULL;DEFAULT:@SECLEVEL=0"
CLI_TIMEOUT = 15.0


def assert_refused(result, key: str) -> None:
    """Non-zero exit, and stderr names `key` as `key:`."""
    assert result.returncode != 0, f"accepted a config that must be refused; stdout:\n{result.stdout}"
    assert f"{key}:" in result.stderr, f"stderr does not name {key}:\n{result.stderr}"


# --- check and run ---------------------------------------------------------------------------------------------

def _outbound(pki, legacy_pki, tmp_path, *, upstream=None, listener=None) -> dict:
    return base_config(pki, tmp_path, "127.0.0.1:4433", upstream=upstream, listener=listener)


def _inbound(inbound_pki, tmp_path, *, backend_keys=None, listener_keys=None) -> dict:
    backend = legacy_backend("127.0.0.1:8443", inbound_pki, **(backend_keys or {}))
    return inbound_config(tmp_path, [backend], [notify_listener(inbound_pki, **(listener_keys or {}))])


# (id, config(pki, legacy_pki, inbound_pki, tmp_path), key named)
REFUSED = [
    ("upstream-semicolon-seclevel-0",
     lambda p, lp, ip, t: _outbound(p, lp, t, upstream={"ciphers": SEMICOLON_SECLEVEL}), "upstream[gw].ciphers"),
    ("upstream-semicolon-seclevel-1",
     lambda p, lp, ip, t: _outbound(p, lp, t, upstream={"ciphers": "ECDHE+AESGCM;@SECLEVEL=1"}),
     "upstream[gw].ciphers"),
    ("upstream-seclevel-without-separator",
     lambda p, lp, ip, t: _outbound(p, lp, t, upstream={"ciphers": "ECDHE+AESGCM@SECLEVEL=0"}),
     "upstream[gw].ciphers"),
    ("upstream-semicolon-null",
     lambda p, lp, ip, t: _outbound(p, lp, t, upstream={"ciphers": "ECDHE+AESGCM;eNULL"}), "upstream[gw].ciphers"),
    ("tls-listener-semicolon-null-anon",
     lambda p, lp, ip, t: _outbound(p, lp, t, listener=tls_listener(lp, min_version="TLS1.0", ciphers=NULL_AND_ANON)),
     "listener[legacy].ciphers"),
    ("tls-listener-alias-with-anon",
     lambda p, lp, ip, t: _outbound(p, lp, t, listener=tls_listener(lp, min_version="TLS1.0",
                                                                    ciphers="ALL;@SECLEVEL=0")),
     "listener[legacy].ciphers"),
    ("notify-listener-before-a-backend-semicolon-null-anon",
     lambda p, lp, ip, t: _inbound(ip, t, listener_keys={"ciphers": NULL_AND_ANON}), "listener[notify].ciphers"),
    # A backend has no cipher key: its context's suites are fixed (and checked when built); the key is refused.
    ("backend-semicolon-null-anon",
     lambda p, lp, ip, t: _inbound(ip, t, backend_keys={"ciphers": NULL_AND_ANON}), f"backend[{BACKEND}].ciphers"),
]


@pytest.mark.parametrize("command", ["check", "run"])
@pytest.mark.parametrize("make, key", [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED])
def test_semicolon_separated_weak_cipher_string_is_refused_naming_the_key(cli, pki, legacy_pki, inbound_pki,
                                                                         tmp_path, command, make, key):
    path = tmp_path / "tls-bridge.toml"
    path.write_text(to_toml(make(pki, legacy_pki, inbound_pki, tmp_path)))
    assert_refused(cli(command, "--config", str(path), timeout=CLI_TIMEOUT), key)


@pytest.mark.parametrize("listener_ciphers", ["DEFAULT;@SECLEVEL=0", "AES128-SHA;ECDHE-RSA-AES256-SHA;@SECLEVEL=0"])
def test_semicolons_in_a_legitimate_string_pass_check(cli, pki, legacy_pki, tmp_path, listener_ciphers):
    """Control: `;` itself is fine; strong upstream and legacy listener strings written with it pass."""
    cfg = _outbound(pki, legacy_pki, tmp_path, upstream={"ciphers": "ECDHE+AESGCM;ECDHE+CHACHA20;@SECLEVEL=2"},
                    listener=tls_listener(legacy_pki, min_version="TLS1.0", ciphers=listener_ciphers))
    path = tmp_path / "tls-bridge.toml"
    path.write_text(to_toml(cfg))
    result = cli("check", "--config", str(path), timeout=CLI_TIMEOUT)
    assert result.returncode == 0, result.stderr


# --- probe against a weak gateway ------------------------------------------------------------------------------

@dataclass(frozen=True)
class WeakGateway:
    ca: Path
    cert: Path
    key: Path


def _weak_gateway(directory: Path, variant: str) -> WeakGateway:
    """A CA (RSA 2048, SHA-256) and a gateway.test leaf that security level 2 refuses: an RSA 1024 key, or a
    SHA-1 signature."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"Weak Gateway CA {variant}")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024 if variant == "rsa1024" else 2048)
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, GATEWAY_NAME)]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(GATEWAY_NAME)]), critical=False))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # cryptography deprecates SHA-1 signatures: that is the point here
        leaf = leaf.sign(ca_key, hashes.SHA1() if variant == "sha1" else hashes.SHA256())
    directory.mkdir(parents=True, exist_ok=True)
    paths = WeakGateway(directory / "ca.pem", directory / "gateway.pem", directory / "gateway.key")
    paths.ca.write_bytes(certs._pem_cert(ca))
    paths.cert.write_bytes(certs._pem_cert(leaf))
    paths.key.write_bytes(certs._pem_key(key))
    paths.key.chmod(0o600)
    return paths


def _weak_server_context(gateway: WeakGateway) -> ssl.SSLContext:
    """TLS 1.2+, ECDHE+AESGCM offered; security level 0 so that this server may use its own weak certificate."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers("ECDHE+AESGCM:@SECLEVEL=0")
    ctx.load_cert_chain(str(gateway.cert), str(gateway.key))
    return ctx


def _probe(cli, pki, tmp_path, gateway: WeakGateway, address: str, ciphers: str | None):
    cfg = base_config(pki, tmp_path, address, upstream={"ca_file": str(gateway.ca), "ciphers": ciphers,
                                                        "client_cert": None, "client_key": None})
    path = tmp_path / "probe.toml"
    path.write_text(to_toml(cfg))
    return cli("probe", "--config", str(path), timeout=CLI_TIMEOUT)


@pytest.mark.parametrize("variant", ["rsa1024", "sha1"])
def test_probe_never_vouches_for_a_weak_gateway_through_a_semicolon_seclevel(cli, pki, tmp_path, upstream, variant):
    gateway = _weak_gateway(tmp_path / "weak-pki", variant)
    server = upstream(_weak_server_context(gateway), name="weak-gw")
    result = _probe(cli, pki, tmp_path, gateway, server.address, SEMICOLON_SECLEVEL)
    assert "verification: ok" not in result.stdout, result.stdout
    assert_refused(result, "upstream[gw].ciphers")
    assert_no_upstream_connection(server)


@pytest.mark.parametrize("variant", ["rsa1024", "sha1"])
def test_probe_with_the_default_ciphers_refuses_the_same_weak_gateway(cli, pki, tmp_path, upstream, variant):
    """Control: the gateway is reachable and really below the floor; security level 2 is what refuses it."""
    gateway = _weak_gateway(tmp_path / "weak-pki", variant)
    server = upstream(_weak_server_context(gateway), name="weak-gw")
    result = _probe(cli, pki, tmp_path, gateway, server.address, None)
    assert result.returncode != 0, result.stdout + result.stderr
    assert "FAILED" in result.stdout and "verification: ok" not in result.stdout, result.stdout
    assert server.wait_finished(1), "probe did not reach the gateway"


# --- real clients against a legitimate legacy listener ---------------------------------------------------------

NULL_OR_ANON_OFFERS = [
    ("NULL-SHA256:@SECLEVEL=0", "-tls1_2"),
    ("AECDH-NULL-SHA:@SECLEVEL=0", "-tls1_2"),
    ("AECDH-NULL-SHA:@SECLEVEL=0", "-tls1"),
    ("NULL-SHA;AECDH-AES128-SHA;ADH-AES128-SHA;@SECLEVEL=0", "-tls1"),
]


@pytest.mark.parametrize("listener_ciphers", [None, "DEFAULT;@SECLEVEL=0", "HIGH;!aNULL;@SECLEVEL=0"],
                         ids=["default", "default-semicolons", "high-without-anon"])
def test_legacy_listener_never_handshakes_a_null_or_anonymous_suite(bridge, legacy_pki, upstream, listener_ciphers):
    gw = upstream(name="gw")
    b = bridge(gw.address, listener=tls_listener(legacy_pki, min_version="TLS1.0", ciphers=listener_ciphers))
    for offer, version in NULL_OR_ANON_OFFERS:
        result = s_client(b.listen[1], version, "-cipher", offer, "-servername", SANDBOX, quiet=False, timeout=15)
        out = (result.stdout + result.stderr).decode(errors="replace")
        assert result.returncode != 0, f"{offer} {version}: handshake completed:\n{out[-1500:]}"
        assert "Cipher is (NONE)" in out or "handshake failure" in out or "no cipher" in out, \
            f"{offer} {version}: {out[-1500:]}"
    records = b.wait_records(len(NULL_OR_ANON_OFFERS))
    assert all(r["close"] == "downstream_error" and r["phase"] == "downstream_handshake" for r in records), records
    assert_no_upstream_connection(gw)

    # Control: the same listener does serve a legacy client with a real cipher.
    result = s_client(b.listen[1], "-tls1", "-cipher", "AES128-SHA:@SECLEVEL=0", "-servername", SANDBOX,
                      quiet=False, timeout=15)
    out = (result.stdout + result.stderr).decode(errors="replace")
    assert result.returncode == 0 and "Cipher is AES128-SHA" in out, out[-1500:]
