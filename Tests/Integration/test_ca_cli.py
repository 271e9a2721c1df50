"""`tls-bridge ca init` and `ca issue`: the local CA the merchant trusts, and the certificates it issues.

What the merchant's legacy client will do with them is played by `openssl verify` and by real Python `ssl`
handshakes on loopback (a server presenting the issued leaf, a client trusting only the CA's PEM).
"""

from __future__ import annotations

import datetime
import os
import re
import socket
import ssl
import stat
import subprocess
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, SignatureAlgorithmOID

NAME = "sandbox.paygent.co.jp"
HANDSHAKE_TIMEOUT = 10.0


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def load_pems(path: Path) -> list[x509.Certificate]:
    data = path.read_bytes()
    blocks = re.findall(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----\n", data, re.S)
    return [x509.load_pem_x509_certificate(block) for block in blocks]


@pytest.fixture(scope="module")
def ca_dir(bridge_bin, tmp_path_factory) -> Path:
    """One CA for the tests that only issue from it (RSA 3072 generation takes a moment)."""
    directory = tmp_path_factory.mktemp("shared") / "ca"
    result = subprocess.run([str(bridge_bin), "ca", "init", str(directory)], capture_output=True, text=True,
                            timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    return directory


def issue(cli, ca_dir: Path, *names: str, sha1: bool = False, out: Path | None = None):
    args = ["ca", "issue", "--ca", str(ca_dir)]
    if sha1:
        args.append("--sha1")
    if out is not None:
        args += ["--out", str(out)]
    return cli(*args, *names)


# --- a real handshake -----------------------------------------------------------------------------------------

class OneShotServer:
    """A TLS server on 127.0.0.1 that accepts one connection, answers `ping` with `pong`, and stops.

    Every blocking call has a timeout, and the thread is joined with one: a hung handshake fails the test.
    """

    def __init__(self, context: ssl.SSLContext):
        self.context = context
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(HANDSHAKE_TIMEOUT)
        self.address = self.listener.getsockname()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        try:
            conn, _ = self.listener.accept()
            conn.settimeout(HANDSHAKE_TIMEOUT)
            with self.context.wrap_socket(conn, server_side=True) as tls:
                if tls.recv(4) == b"ping":
                    tls.sendall(b"pong")
        except (OSError, ssl.SSLError) as exc:
            self.error = exc

    def __enter__(self) -> "OneShotServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.listener.close()
        self.thread.join(HANDSHAKE_TIMEOUT + 2)
        assert not self.thread.is_alive(), "the test TLS server did not finish in time"


def server_context(cert: Path, key: Path, *, legacy: bool = False, seclevel0: bool = False) -> ssl.SSLContext:
    """`legacy`: accept TLS 1.0 too. Both need security level 0, set before loading the certificate:
    OpenSSL 3 refuses to load a SHA-1-signed one ("ca md too weak") at its default level."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if legacy or seclevel0:
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    if legacy:
        ctx.minimum_version = ssl.TLSVersion.TLSv1
    ctx.load_cert_chain(str(cert), str(key))
    return ctx


def client_context(ca_pem: Path, *, version: ssl.TLSVersion | None = None, seclevel0: bool = False) -> ssl.SSLContext:
    """A client that trusts only the local CA: no system store."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile=str(ca_pem))
    assert ctx.cert_store_stats()["x509_ca"] == 1
    if version is not None:
        ctx.minimum_version = version
        ctx.maximum_version = version
    if seclevel0:
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    return ctx


def handshake(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext, server_hostname: str) -> str:
    """Connects, verifies, exchanges ping/pong; returns the negotiated version. Raises the client's error."""
    with OneShotServer(server_ctx) as server:
        with socket.create_connection(server.address, timeout=HANDSHAKE_TIMEOUT) as raw:
            with client_ctx.wrap_socket(raw, server_hostname=server_hostname) as tls:
                tls.sendall(b"ping")
                assert tls.recv(4) == b"pong"
                return tls.version()


# --- ca init --------------------------------------------------------------------------------------------------

def test_ca_init_writes_the_certificate_0644_and_the_key_0600_and_says_what_to_do(cli, tmp_path):
    directory = tmp_path / "ca"
    result = cli("ca", "init", str(directory), timeout=60)
    assert result.returncode == 0, result.stderr
    cert, key = directory / "ca.pem", directory / "ca.key"
    assert mode(directory) == 0o700
    assert mode(cert) == 0o644
    assert mode(key) == 0o600
    assert key.read_text().startswith("-----BEGIN PRIVATE KEY-----\n")

    out = result.stdout
    for expected in (str(cert), str(key), "0600",
                     "curl.cainfo", "openssl.cafile",
                     f"keytool -importcert -alias tls-bridge -file {cert} -keystore",
                     "certutil -addstore Root",
                     f'ca_cert = "{cert}"', f'ca_key = "{key}"'):
        assert expected in out, f"ca init output lacks {expected!r}:\n{out}"
    assert "PRIVATE KEY" not in out and "PRIVATE KEY" not in result.stderr


def test_ca_init_makes_a_sha256_rsa3072_ca_limited_to_issuing_leaves(ca_dir):
    (ca,) = load_pems(ca_dir / "ca.pem")
    assert ca.subject == ca.issuer
    assert ca.subject.rfc4514_string() == "CN=tls-bridge local CA"
    assert ca.signature_algorithm_oid == SignatureAlgorithmOID.RSA_WITH_SHA256
    assert ca.public_key().key_size == 3072
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca and constraints.value.path_length == 0
    usage = ca.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.key_cert_sign and usage.value.crl_sign
    assert not usage.value.digital_signature and not usage.value.key_encipherment
    ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    lifetime = ca.not_valid_after - ca.not_valid_before
    assert datetime.timedelta(days=3650) <= lifetime <= datetime.timedelta(days=3654)
    now = datetime.datetime.utcnow()
    assert now - datetime.timedelta(minutes=70) <= ca.not_valid_before <= now - datetime.timedelta(minutes=50)


def test_ca_init_refuses_to_overwrite_an_existing_ca(cli, tmp_path):
    directory = tmp_path / "ca"
    assert cli("ca", "init", str(directory), timeout=60).returncode == 0
    before = {name: (directory / name).read_bytes() for name in ("ca.pem", "ca.key")}

    again = cli("ca", "init", str(directory), timeout=60)
    assert again.returncode != 0
    assert "already exists" in again.stderr and str(directory / "ca.pem") in again.stderr, again.stderr
    assert "refusing to overwrite" in again.stderr
    assert f"ca issue --ca {directory}" in again.stderr, "the refusal should say how to use the existing CA"
    assert again.stdout == ""
    assert {name: (directory / name).read_bytes() for name in ("ca.pem", "ca.key")} == before
    assert mode(directory / "ca.key") == 0o600


def test_ca_init_refuses_a_leftover_key_without_certificate(cli, tmp_path):
    directory = tmp_path / "ca"
    directory.mkdir()
    (directory / "ca.key").write_text("leftover\n")
    result = cli("ca", "init", str(directory), timeout=60)
    assert result.returncode != 0
    assert str(directory / "ca.key") in result.stderr and "already exists" in result.stderr
    assert (directory / "ca.key").read_text() == "leftover\n"
    assert not (directory / "ca.pem").exists()


# --- ca issue -------------------------------------------------------------------------------------------------

def test_ca_issue_writes_leaf_and_chain_and_a_0600_key_and_prints_names_and_expiry(cli, ca_dir, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    result = issue(cli, ca_dir, NAME, "localhost", "127.0.0.1", out=out)
    assert result.returncode == 0, result.stderr
    cert, key = out / f"{NAME}.pem", out / f"{NAME}.key"
    assert mode(key) == 0o600
    assert mode(cert) == 0o644
    assert not (ca_dir / f"{NAME}.pem").exists(), "--out was ignored"

    leaf, chained_ca = load_pems(cert)
    assert chained_ca == load_pems(ca_dir / "ca.pem")[0]
    assert leaf.issuer == chained_ca.subject
    assert leaf.subject.rfc4514_string() == f"CN={NAME}"
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == [NAME, "localhost"]
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value == \
        x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH])
    assert leaf.signature_algorithm_oid == SignatureAlgorithmOID.RSA_WITH_SHA256
    assert 0 < leaf.serial_number < 2 ** 127
    lifetime = leaf.not_valid_after - leaf.not_valid_before
    assert datetime.timedelta(days=397) <= lifetime <= datetime.timedelta(days=397, hours=1, minutes=1)

    text = result.stdout
    assert str(cert) in text and str(key) in text
    assert f"{NAME}, localhost, 127.0.0.1" in text
    assert leaf.not_valid_after.strftime("%Y-%m-%d %H:%M:%S UTC") in text
    assert "LEGACY" not in text
    assert "PRIVATE KEY" not in text and "PRIVATE KEY" not in result.stderr


def test_issued_leaf_passes_openssl_verify_for_its_name_and_fails_for_another(cli, ca_dir, tmp_path):
    assert issue(cli, ca_dir, NAME, out=tmp_path).returncode == 0
    cert = tmp_path / f"{NAME}.pem"
    base = ["openssl", "verify", "-CAfile", str(ca_dir / "ca.pem"), "-purpose", "sslserver"]
    good = subprocess.run(base + ["-verify_hostname", NAME, str(cert)], capture_output=True, text=True, timeout=20)
    assert good.returncode == 0 and f"{cert}: OK" in good.stdout, good.stdout + good.stderr
    wrong = subprocess.run(base + ["-verify_hostname", "www.paygent.co.jp", str(cert)],
                           capture_output=True, text=True, timeout=20)
    assert wrong.returncode != 0 and "hostname mismatch" in (wrong.stdout + wrong.stderr)
    # Trusting the leaf alone is not enough: it is not self-signed, only the CA's key vouches for it.
    leaf_only = tmp_path / "leaf-only.pem"
    leaf_only.write_bytes(load_pems(cert)[0].public_bytes(serialization.Encoding.PEM))
    untrusted = subprocess.run(["openssl", "verify", "-CAfile", str(leaf_only), str(leaf_only)],
                               capture_output=True, text=True, timeout=20)
    assert untrusted.returncode != 0 and "unable to get local issuer" in (untrusted.stdout + untrusted.stderr)


@pytest.mark.parametrize("version", [None, ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1],
                         ids=["default", "tls1.2", "tls1.0-legacy"])
def test_issued_leaf_completes_a_handshake_for_its_name_with_a_client_trusting_only_the_ca(
        cli, ca_dir, tmp_path, version):
    assert issue(cli, ca_dir, NAME, out=tmp_path).returncode == 0
    legacy = version == ssl.TLSVersion.TLSv1
    server = server_context(tmp_path / f"{NAME}.pem", tmp_path / f"{NAME}.key", legacy=legacy)
    client = client_context(ca_dir / "ca.pem", version=version, seclevel0=legacy)
    negotiated = handshake(server, client, NAME)
    if version is not None:
        assert negotiated == {ssl.TLSVersion.TLSv1: "TLSv1", ssl.TLSVersion.TLSv1_2: "TLSv1.2"}[version]


def test_issued_leaf_is_refused_for_a_name_it_does_not_carry(cli, ca_dir, tmp_path):
    assert issue(cli, ca_dir, NAME, out=tmp_path).returncode == 0
    server = server_context(tmp_path / f"{NAME}.pem", tmp_path / f"{NAME}.key")
    with pytest.raises(ssl.SSLCertVerificationError) as refused:
        handshake(server, client_context(ca_dir / "ca.pem"), "www.paygent.co.jp")
    assert "mismatch" in str(refused.value).lower()


def test_issued_leaf_for_an_ip_literal_verifies_as_that_ip(cli, ca_dir, tmp_path):
    assert issue(cli, ca_dir, "127.0.0.1", out=tmp_path).returncode == 0
    server = server_context(tmp_path / "127.0.0.1.pem", tmp_path / "127.0.0.1.key")
    handshake(server, client_context(ca_dir / "ca.pem"), "127.0.0.1")
    server = server_context(tmp_path / "127.0.0.1.pem", tmp_path / "127.0.0.1.key")
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(server, client_context(ca_dir / "ca.pem"), "127.0.0.2")


def test_a_leaf_from_another_ca_is_refused_by_a_client_trusting_this_ca(cli, ca_dir, tmp_path):
    other = tmp_path / "other-ca"
    assert cli("ca", "init", str(other), timeout=60).returncode == 0
    assert issue(cli, other, NAME, out=tmp_path).returncode == 0
    server = server_context(tmp_path / f"{NAME}.pem", tmp_path / f"{NAME}.key")
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(server, client_context(ca_dir / "ca.pem"), NAME)


def test_sha1_leaf_is_signed_with_sha1_labelled_legacy_and_only_legacy_clients_accept_it(cli, ca_dir, tmp_path):
    result = issue(cli, ca_dir, NAME, sha1=True, out=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "LEGACY: SHA-1 signature, only for clients that cannot verify SHA-256; modern clients reject it" \
        in result.stdout
    leaf, _ = load_pems(tmp_path / f"{NAME}.pem")
    assert leaf.signature_algorithm_oid == SignatureAlgorithmOID.RSA_WITH_SHA1
    assert isinstance(leaf.signature_hash_algorithm, hashes.SHA1)
    assert mode(tmp_path / f"{NAME}.key") == 0o600

    cert, key = tmp_path / f"{NAME}.pem", tmp_path / f"{NAME}.key"
    # A modern client (OpenSSL 3 at its default security level) refuses the SHA-1 signature...
    with pytest.raises(ssl.SSLCertVerificationError) as refused:
        handshake(server_context(cert, key, seclevel0=True), client_context(ca_dir / "ca.pem"), NAME)
    assert "digest algorithm too weak" in str(refused.value)
    # ...while a legacy one (security level 0, TLS 1.0) accepts it.
    assert handshake(server_context(cert, key, legacy=True),
                     client_context(ca_dir / "ca.pem", version=ssl.TLSVersion.TLSv1, seclevel0=True), NAME) == "TLSv1"


def test_ca_issue_writes_into_the_ca_directory_by_default_and_renews_in_place(cli, ca_dir):
    name = "renew.test"
    assert issue(cli, ca_dir, name).returncode == 0
    first = (ca_dir / f"{name}.pem").read_bytes()
    assert mode(ca_dir / f"{name}.key") == 0o600
    assert issue(cli, ca_dir, name).returncode == 0
    assert (ca_dir / f"{name}.pem").read_bytes() != first
    assert mode(ca_dir / f"{name}.key") == 0o600
    assert not [p for p in os.listdir(ca_dir) if ".tmp-" in p], "temporary files left behind"


# --- ca issue: errors name what to fix ------------------------------------------------------------------------

def test_ca_issue_without_a_ca_fails_naming_the_directory(cli, tmp_path):
    missing = tmp_path / "no-such-ca"
    result = issue(cli, missing, NAME)
    assert result.returncode != 0
    assert "--ca" in result.stderr and str(missing / "ca.pem") in result.stderr, result.stderr
    assert not (missing / f"{NAME}.pem").exists()


def test_ca_issue_refuses_a_key_that_does_not_belong_to_the_ca(cli, ca_dir, tmp_path):
    other = tmp_path / "other"
    assert cli("ca", "init", str(other), timeout=60).returncode == 0
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    (mixed / "ca.pem").write_bytes((ca_dir / "ca.pem").read_bytes())
    (mixed / "ca.key").write_bytes((other / "ca.key").read_bytes())
    result = issue(cli, mixed, NAME)
    assert result.returncode != 0
    assert "does not match" in result.stderr and str(mixed / "ca.key") in result.stderr, result.stderr
    assert not (mixed / f"{NAME}.pem").exists()


def test_ca_issue_refuses_a_leaf_certificate_as_ca(cli, ca_dir, tmp_path):
    assert issue(cli, ca_dir, NAME, out=tmp_path).returncode == 0
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "ca.pem").write_bytes((tmp_path / f"{NAME}.pem").read_bytes())
    (fake / "ca.key").write_bytes((tmp_path / f"{NAME}.key").read_bytes())
    result = issue(cli, fake, "x.test")
    assert result.returncode != 0
    assert "not a CA certificate" in result.stderr, result.stderr


@pytest.mark.parametrize("bad", ["two words", "under_score.test", "*.test"])
def test_ca_issue_refuses_a_name_that_cannot_go_into_a_certificate(cli, ca_dir, tmp_path, bad):
    result = issue(cli, ca_dir, bad, out=tmp_path)
    assert result.returncode != 0
    assert f'"{bad}"' in result.stderr, result.stderr
    assert os.listdir(tmp_path) == []


def test_ca_issue_never_writes_over_the_ca_itself(cli, ca_dir):
    before = {name: (ca_dir / name).read_bytes() for name in ("ca.pem", "ca.key")}
    result = issue(cli, ca_dir, "ca")
    assert result.returncode != 0
    assert "CA's own file" in result.stderr, result.stderr
    assert {name: (ca_dir / name).read_bytes() for name in ("ca.pem", "ca.key")} == before


def test_ca_issue_into_a_missing_out_directory_fails_naming_it(cli, ca_dir, tmp_path):
    missing = tmp_path / "missing"
    result = issue(cli, ca_dir, NAME, out=missing)
    assert result.returncode != 0
    assert "--out" in result.stderr and str(missing) in result.stderr, result.stderr
