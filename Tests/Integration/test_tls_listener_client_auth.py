"""accept = "tls" with require_client_cert: the merchant must present a certificate issued by client_ca, or one
whose SHA-256 fingerprint is in client_cert_fingerprints. Otherwise the session is refused during the downstream
handshake and no gateway is dialled; an accepted certificate's subject is recorded."""

from __future__ import annotations

import pytest
from cryptography import x509

from support.certs import MERCHANT_CN
from support.legacy import (OTHER_CLIENT_CN, SANDBOX, assert_no_upstream_connection, check_tls_record,
                            client_context, echo_over, fingerprint, refused_handshake, tls_connect, tls_listener)

VERSIONS = ["TLSv1", "TLSv1.2", "TLSv1.3"]


def auth_bridge(bridge, legacy_pki, gw, **keys):
    return bridge(gw.address, listener=tls_listener(legacy_pki, min_version="TLS1.0", require_client_cert=True,
                                                     **keys))


def merchant_ctx(legacy_pki, version, cert=None, key=None):
    return client_context(version, cafile=legacy_pki.listener_ca, cert=cert, key=key,
                          ciphers=None if version == "TLSv1.3" else "DEFAULT:@SECLEVEL=0")


def subject_of(pem) -> str:
    return x509.load_pem_x509_certificate(pem.read_bytes()).subject.rfc4514_string()


def accepted(b, gw, ctx, cn: str, subject: str) -> dict:
    with tls_connect(b, ctx, SANDBOX) as s:
        assert echo_over(s) == b"ping"
    assert len(gw.wait_finished(1)) == 1
    record = b.wait_record()
    check_tls_record(record)
    assert record["error"] is None, record
    assert f"CN={cn}" in (record["downstream"]["client_cert"] or ""), record["downstream"]
    assert record["downstream"]["client_cert"] == subject, "not the RFC 2253 subject"
    return record


def refused(b, gw, ctx) -> dict:
    outcome = refused_handshake(b, ctx, SANDBOX)
    assert isinstance(outcome, Exception) or outcome == b"", outcome
    record = b.wait_record()
    check_tls_record(record)
    assert record["close"] in ("refused", "downstream_error"), record
    assert record["phase"] == "downstream_handshake", record
    assert record["bytes"] == {"up": 0, "down": 0}, record
    assert record["upstream"]["protocol"] is None, record
    assert record["error"] or record["hint"], f"the record does not say why: {record}"
    assert_no_upstream_connection(gw)
    return record


@pytest.mark.parametrize("version", VERSIONS)
def test_merchant_certificate_from_client_ca_is_accepted_and_recorded(bridge, pki, legacy_pki, upstream, version):
    gw = upstream(name="gw")
    b = auth_bridge(bridge, legacy_pki, gw, client_ca=str(pki.client_ca))
    record = accepted(b, gw, merchant_ctx(legacy_pki, version, pki.client_cert, pki.client_key), MERCHANT_CN,
                      subject_of(pki.client_cert))
    assert record["downstream"]["protocol"] == version, record


@pytest.mark.parametrize("version", VERSIONS)
def test_client_without_certificate_is_refused_before_the_gateway(bridge, pki, legacy_pki, upstream, version):
    gw = upstream(name="gw")
    b = auth_bridge(bridge, legacy_pki, gw, client_ca=str(pki.client_ca))
    record = refused(b, gw, merchant_ctx(legacy_pki, version))
    assert record["downstream"]["client_cert"] is None, record


@pytest.mark.parametrize("version", ["TLSv1", "TLSv1.3"])
def test_certificate_from_another_ca_is_refused(bridge, pki, legacy_pki, upstream, version):
    gw = upstream(name="gw")
    b = auth_bridge(bridge, legacy_pki, gw, client_ca=str(pki.client_ca))
    refused(b, gw, merchant_ctx(legacy_pki, version, legacy_pki.other_client_cert, legacy_pki.other_client_key))


@pytest.mark.parametrize("style", ["colons-upper", "bare-lower"])
def test_listed_fingerprint_is_accepted_whatever_its_issuer(bridge, pki, legacy_pki, upstream, style):
    gw = upstream(name="gw")
    listed = fingerprint(legacy_pki.other_client_cert, colons=style == "colons-upper", lower=style == "bare-lower")
    b = auth_bridge(bridge, legacy_pki, gw, client_cert_fingerprints=[listed])
    accepted(b, gw, merchant_ctx(legacy_pki, "TLSv1", legacy_pki.other_client_cert, legacy_pki.other_client_key),
             OTHER_CLIENT_CN, subject_of(legacy_pki.other_client_cert))


@pytest.mark.parametrize("version", ["TLSv1", "TLSv1.3"])
def test_certificate_not_in_the_fingerprint_list_is_refused(bridge, pki, legacy_pki, upstream, version):
    """The merchant CA's own certificate is refused when only another certificate's fingerprint is listed."""
    gw = upstream(name="gw")
    b = auth_bridge(bridge, legacy_pki, gw, client_cert_fingerprints=[fingerprint(legacy_pki.other_client_cert)])
    refused(b, gw, merchant_ctx(legacy_pki, version, pki.client_cert, pki.client_key))


def test_fingerprint_list_still_requires_a_certificate(bridge, legacy_pki, upstream):
    gw = upstream(name="gw")
    b = auth_bridge(bridge, legacy_pki, gw, client_cert_fingerprints=[fingerprint(legacy_pki.other_client_cert)])
    refused(b, gw, merchant_ctx(legacy_pki, "TLSv1.2"))
