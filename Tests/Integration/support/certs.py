"""Throw-away PKI for the integration suite: a gateway CA and its leaves, a merchant client CA and its certificate.

Everything is generated once per test session into a temporary directory and described by `Pki`, whose
attributes are file paths. RSA keys throughout, so the same leaves also serve TLS 1.0 and RSA-key-exchange
(NULL-SHA256) peers.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

GATEWAY_NAME = "gateway.test"
MERCHANT_CN = "merchant-0001"
MERCHANT_ORG = "Test Merchant"
CLIENT_KEY_PASSWORD = "correct horse battery staple"


@dataclass(frozen=True)
class Pki:
    """Paths of every PEM file the tests use."""

    directory: Path
    ca: Path                    # "Test CA": trusted by the bridge (ca_file)
    server_cert: Path           # CN=gateway.test, SAN gateway.test, localhost, 127.0.0.1, ::1
    server_key: Path
    expired_cert: Path          # valid name, Test CA, not_after in the past
    wrong_name_cert: Path       # Test CA, only other.test
    unknown_ca_cert: Path       # valid name, signed by "Other CA" which the bridge does not trust
    self_signed_cert: Path      # valid name, issuer == subject
    other_ca: Path
    client_ca: Path             # "Test Client CA": what the gateway trusts for client certificates
    client_cert: Path           # CN=merchant-0001,O=Test Merchant
    client_key: Path            # unencrypted PKCS#8
    client_combined: Path       # certificate followed by its key, one file
    client_key_encrypted: Path  # PKCS#8 encrypted with CLIENT_KEY_PASSWORD
    client_key_password_file: Path
    mismatched_key: Path        # a valid key that does not belong to client_cert
    client_cert_expired: Path   # CN=merchant-0001 with client_key, not_after two days ago
    client_cert_not_yet_valid: Path  # CN=merchant-0001 with client_key, not_before two days from now
    empty_pem: Path             # zero bytes: a CA file that holds no certificate


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _name(cn: str, org: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _ca(cn: str) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    key = _key()
    name = _name(cn)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - datetime.timedelta(days=1))
        .not_valid_after(_now() + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _leaf(subject: x509.Name, key: rsa.RSAPrivateKey, issuer: x509.Certificate | None,
          issuer_key: rsa.RSAPrivateKey, *, dns: list[str] = (), ips: list[str] = (),
          client: bool = False, not_before: datetime.datetime | None = None,
          not_after: datetime.datetime | None = None) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject if issuer is not None else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or _now() - datetime.timedelta(days=1))
        .not_valid_after(not_after or _now() + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(
            [ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    )
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    sans += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.public_key()), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _pem_cert(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _pem_key(key: rsa.RSAPrivateKey, password: str | None = None) -> bytes:
    encryption = (serialization.BestAvailableEncryption(password.encode()) if password
                  else serialization.NoEncryption())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def generate(directory: Path) -> Pki:
    """Write the whole PKI below `directory` (created if needed) and return its paths."""
    directory.mkdir(parents=True, exist_ok=True)

    def write(name: str, data: bytes, mode: int = 0o644) -> Path:
        path = directory / name
        path.write_bytes(data)
        path.chmod(mode)
        return path

    ca, ca_key = _ca("Test CA")
    other_ca, other_ca_key = _ca("Other CA")
    client_ca, client_ca_key = _ca("Test Client CA")

    server_key = _key()
    gateway_sans = dict(dns=[GATEWAY_NAME, "localhost"], ips=["127.0.0.1", "::1"])
    server = _leaf(_name(GATEWAY_NAME, "Test Gateway"), server_key, ca, ca_key, **gateway_sans)
    expired = _leaf(_name(GATEWAY_NAME, "Expired Gateway"), server_key, ca, ca_key, **gateway_sans,
                    not_before=_now() - datetime.timedelta(days=30),
                    not_after=_now() - datetime.timedelta(days=2))
    wrong_name = _leaf(_name("other.test"), server_key, ca, ca_key, dns=["other.test"])
    unknown_ca = _leaf(_name(GATEWAY_NAME, "Unknown CA Gateway"), server_key, other_ca, other_ca_key,
                       **gateway_sans)
    self_signed = _leaf(_name(GATEWAY_NAME, "Self Signed Gateway"), server_key, None, server_key,
                        **gateway_sans)

    client_key = _key()
    client = _leaf(_name(MERCHANT_CN, MERCHANT_ORG), client_key, client_ca, client_ca_key, client=True)
    client_expired = _leaf(_name(MERCHANT_CN, MERCHANT_ORG), client_key, client_ca, client_ca_key, client=True,
                           not_before=_now() - datetime.timedelta(days=30),
                           not_after=_now() - datetime.timedelta(days=2))
    # A renewal installed before its start date: days ahead, so no clock skew on the machine makes it valid.
    client_not_yet_valid = _leaf(_name(MERCHANT_CN, MERCHANT_ORG), client_key, client_ca, client_ca_key, client=True,
                                 not_before=_now() + datetime.timedelta(days=2),
                                 not_after=_now() + datetime.timedelta(days=60))

    return Pki(
        directory=directory,
        ca=write("ca.pem", _pem_cert(ca)),
        server_cert=write("server.pem", _pem_cert(server)),
        server_key=write("server.key", _pem_key(server_key), 0o600),
        expired_cert=write("expired.pem", _pem_cert(expired)),
        wrong_name_cert=write("wrong-name.pem", _pem_cert(wrong_name)),
        unknown_ca_cert=write("unknown-ca.pem", _pem_cert(unknown_ca)),
        self_signed_cert=write("self-signed.pem", _pem_cert(self_signed)),
        other_ca=write("other-ca.pem", _pem_cert(other_ca)),
        client_ca=write("client-ca.pem", _pem_cert(client_ca)),
        client_cert=write("client.pem", _pem_cert(client)),
        client_key=write("client.key", _pem_key(client_key), 0o600),
        client_combined=write("client-combined.pem", _pem_cert(client) + _pem_key(client_key), 0o600),
        client_key_encrypted=write("client-encrypted.key", _pem_key(client_key, CLIENT_KEY_PASSWORD), 0o600),
        client_key_password_file=write("client-key.password", (CLIENT_KEY_PASSWORD + "\n").encode(), 0o600),
        mismatched_key=write("mismatched.key", _pem_key(_key()), 0o600),
        client_cert_expired=write("client-expired.pem", _pem_cert(client_expired)),
        client_cert_not_yet_valid=write("client-not-yet-valid.pem", _pem_cert(client_not_yet_valid)),
        empty_pem=write("empty.pem", b""),
    )
