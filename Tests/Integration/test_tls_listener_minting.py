"""accept = "tls" identities: with ca_cert/ca_key the listener mints, per routed name, an RSA 2048 / SHA-256
certificate (CN and SAN = the name) that merchants verify against the local CA (Python ssl, curl, Java over
TLS 1.0), cached; an unrouted name gets no certificate at all; a client without SNI gets one certificate naming
every routed name. [listener.certificates."name"] overrides minting for that name; a static identity can be one
PEM holding the key."""

from __future__ import annotations

import hashlib
import ssl
from concurrent.futures import ThreadPoolExecutor

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID, SignatureAlgorithmOID

from support.legacy import (LEGACY_CIPHERS, MODULE, SANDBOX, UNROUTED, assert_no_upstream_connection, cert_names,
                            check_tls_record, client_context, echo_over, java_available, java_client,
                            peer_certificate, routes, run_tool, s_client, tls_connect, tls_listener)
from support.servers import generated_chunks


@pytest.fixture
def gateways(upstream):
    return upstream(name="gw"), upstream(name="gw2")


def minting_bridge(bridge, legacy_pki, gateways, *, default: str | None = None, identity: str = "mint",
                   workers: int = 2, **keys):
    gw, gw2 = gateways
    return bridge(gw.address, workers=workers, extra_upstreams=[{"name": "gw2", "address": gw2.address}],
                  listener=tls_listener(legacy_pki, identity=identity, min_version="TLS1.0", routes=routes(),
                                        upstream=default, **keys))


def mint_ca_subject(legacy_pki) -> x509.Name:
    return x509.load_pem_x509_certificate(legacy_pki.mint_ca.read_bytes()).subject


def fetch_certificate(b, legacy_pki, sni: str | None, version: str = "TLSv1", cafile=None) -> x509.Certificate:
    ctx = client_context(version, cafile=cafile or legacy_pki.mint_ca, check_hostname=sni is not None,
                         ciphers=LEGACY_CIPHERS if version in ("TLSv1", "TLSv1.1") else None)
    with tls_connect(b, ctx, sni) as s:
        cert = peer_certificate(s)
        assert echo_over(s) == b"ping"
    return cert


def assert_minted_for(cert: x509.Certificate, names: list[str], legacy_pki) -> None:
    cns, dns = cert_names(cert)
    assert set(n.lower() for n in dns) >= set(names), f"SAN {dns} does not name {names}"
    assert cns and cns[0].lower() in names, f"CN {cns} is not one of {names}"
    key = cert.public_key()
    assert isinstance(key, rsa.RSAPublicKey) and key.key_size == 2048, key
    assert cert.signature_algorithm_oid == SignatureAlgorithmOID.RSA_WITH_SHA256, cert.signature_algorithm_oid
    assert cert.issuer == mint_ca_subject(legacy_pki), cert.issuer.rfc4514_string()


@pytest.mark.parametrize("sni, version", [(SANDBOX, "TLSv1"), (MODULE, "TLSv1"), (SANDBOX, "TLSv1.3")],
                         ids=["sandbox-tls1.0", "module-tls1.0", "sandbox-tls1.3"])
def test_minted_certificate_verifies_for_the_routed_name(bridge, legacy_pki, gateways, sni, version):
    b = minting_bridge(bridge, legacy_pki, gateways)
    cert = fetch_certificate(b, legacy_pki, sni, version)  # verified by the client: CA and hostname
    assert_minted_for(cert, [sni], legacy_pki)
    assert cert_names(cert)[0] == [sni], "the CN must be the routed name"
    record = b.wait_record()
    check_tls_record(record)
    assert record["error"] is None and record["downstream"]["protocol"] == version, record
    gw, gw2 = gateways
    assert len((gw if sni == SANDBOX else gw2).wait_finished(1)) == 1


def test_minted_certificate_is_cached_per_name(bridge, legacy_pki, gateways):
    b = minting_bridge(bridge, legacy_pki, gateways, workers=1)  # one worker: one cache, whatever its scope
    first = fetch_certificate(b, legacy_pki, SANDBOX)
    again = fetch_certificate(b, legacy_pki, "SANDBOX.paygent.test")
    other = fetch_certificate(b, legacy_pki, MODULE)
    assert first == again, \
        "a second session for the same name got a freshly minted certificate"
    assert other.serial_number != first.serial_number


def test_concurrent_first_sessions_for_a_name_all_verify(bridge, legacy_pki, gateways):
    """24 TLS 1.0 clients at once on a fresh minting listener: all verify, and the name is minted at most once
    per worker (2 workers)."""
    b = minting_bridge(bridge, legacy_pki, gateways)
    with ThreadPoolExecutor(max_workers=24) as pool:
        futures = [pool.submit(fetch_certificate, b, legacy_pki, SANDBOX) for _ in range(24)]
        certs = [f.result(timeout=60) for f in futures]
    for cert in certs:
        assert_minted_for(cert, [SANDBOX], legacy_pki)
    distinct = {c.serial_number for c in certs}
    assert len(distinct) <= 2, f"{len(distinct)} different certificates minted for one name"
    records = b.wait_records(24)
    assert all(r["error"] is None for r in records), [r for r in records if r["error"]]
    assert len(gateways[0].wait_finished(24)) == 24


def test_curl_verifies_the_minted_certificate_over_tls10(bridge, legacy_pki, upstream, tmp_path):
    gw = upstream(http=True, name="gw")
    b = bridge(gw.address, listener=tls_listener(legacy_pki, identity="mint", min_version="TLS1.0",
                                                  routes={SANDBOX: "gw"}, upstream=None))
    port = b.listen[1]
    body = tmp_path / "body.bin"
    body.write_bytes(b"".join(generated_chunks(21, 64 * 1024)))
    out = tmp_path / "out.bin"
    result = run_tool(["curl", "-sS", "--max-time", "20", "--tlsv1.0", "--tls-max", "1.0", "--ciphers",
                       LEGACY_CIPHERS, "--cacert", str(legacy_pki.mint_ca),
                       "--resolve", f"{SANDBOX}:{port}:127.0.0.1", "-H", "Expect:", "--data-binary", f"@{body}",
                       "-o", str(out), "-w", "%{http_code}", f"https://{SANDBOX}:{port}/echo"], timeout=30)
    assert result.stdout == b"200", (result.stdout, result.stderr)
    assert out.read_bytes() == body.read_bytes()
    assert gw.wait_finished(1)[0].received_digest == hashlib.sha256(body.read_bytes()).hexdigest()
    assert b.wait_record()["downstream"]["protocol"] == "TLSv1"


def test_client_without_sni_gets_a_certificate_naming_every_routed_name(bridge, legacy_pki, gateways):
    b = minting_bridge(bridge, legacy_pki, gateways, default="gw")
    cert = fetch_certificate(b, legacy_pki, None)  # chain verified, no hostname
    assert_minted_for(cert, [SANDBOX, MODULE], legacy_pki)
    record = b.wait_record()
    assert record["downstream"]["sni"] is None and record["upstream"]["name"] == "gw", record


def test_unrouted_name_gets_no_certificate(bridge, legacy_pki, gateways):
    b = minting_bridge(bridge, legacy_pki, gateways)
    result = s_client(b.listen[1], "-tls1", "-cipher", LEGACY_CIPHERS, "-servername", UNROUTED, quiet=False)
    out = (result.stdout + result.stderr).decode(errors="replace")
    assert "no peer certificate available" in out, out[-1500:]
    assert "unrecognized name" in out.lower(), out[-1500:]
    record = b.wait_record()
    check_tls_record(record)
    assert record["close"] == "refused" and record["downstream"]["sni"] == UNROUTED, record
    assert_no_upstream_connection(*gateways)
    # the routed names still get theirs
    assert_minted_for(fetch_certificate(b, legacy_pki, SANDBOX), [SANDBOX], legacy_pki)


@pytest.mark.skipif(not java_available(), reason="no java/keytool on PATH: the JSSE client cannot run")
def test_java_client_verifies_the_minted_certificate_over_tls10(bridge, legacy_pki, gateways, tmp_path):
    b = minting_bridge(bridge, legacy_pki, gateways)
    out = java_client(tmp_path / "java", b.listen[1], SANDBOX, legacy_pki.mint_ca, protocol="TLSv1")
    assert out.get("protocol") == "TLSv1", out
    assert out.get("echo") == "ping", out
    assert f"CN={SANDBOX}" in out.get("subject", ""), out
    assert "CN=Mint CA" in out.get("issuer", ""), out
    record = b.wait_record()
    assert record["downstream"]["protocol"] == "TLSv1" and record["downstream"]["sni"] == SANDBOX, record


def test_per_name_certificate_overrides_minting_for_that_name(bridge, legacy_pki, gateways):
    per_name = {MODULE: {"cert": str(legacy_pki.module_cert), "key": str(legacy_pki.module_key)}}
    b = minting_bridge(bridge, legacy_pki, gateways, certificates=per_name)
    module = fetch_certificate(b, legacy_pki, MODULE, cafile=legacy_pki.listener_ca)
    assert module.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Per-Name Identity"
    sandbox = fetch_certificate(b, legacy_pki, SANDBOX)
    assert_minted_for(sandbox, [SANDBOX], legacy_pki)


def test_static_identity_from_one_pem_holding_the_key(bridge, legacy_pki, gateways):
    b = minting_bridge(bridge, legacy_pki, gateways, identity="combined")
    cert = fetch_certificate(b, legacy_pki, MODULE, cafile=legacy_pki.listener_ca)
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Static Listener Identity"
    assert len(gateways[1].wait_finished(1)) == 1


def test_python_ssl_default_client_trusting_the_local_ca(bridge, legacy_pki, gateways):
    """A modern client with OpenSSL defaults (security level 2, full verification) accepts a minted certificate."""
    b = minting_bridge(bridge, legacy_pki, gateways)
    ctx = ssl.create_default_context(cafile=str(legacy_pki.mint_ca))
    with tls_connect(b, ctx, MODULE) as s:
        assert echo_over(s) == b"ping"
