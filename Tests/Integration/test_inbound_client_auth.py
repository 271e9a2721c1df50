"""require_client_cert on the notify listener: the gateway must present a certificate from client_ca (or one
whose fingerprint is listed). Without one, or with a foreign one, the session is refused during the downstream
handshake and the merchant's server is never dialled; an accepted certificate's subject is recorded."""

from __future__ import annotations

import pytest

from support.certs import MERCHANT_CN
from support.inbound import (ack_for, check_inbound_record, form_body, gateway_context, plain_backend, post,
                             refused_notification, subject)
from support.legacy import fingerprint


def refused(b, server, ctx) -> dict:
    outcome = refused_notification(b.listen, ctx)
    assert isinstance(outcome, Exception) or outcome == b"", outcome
    record = b.wait_record()
    check_inbound_record(record)
    assert record["close"] in ("refused", "downstream_error"), record
    assert record["phase"] == "downstream_handshake", record
    assert record["bytes"] == {"up": 0, "down": 0}, record
    assert record["backend"]["protocol"] is None, record
    assert record["error"] or record["hint"], f"the record does not say why: {record}"
    server.assert_not_dialled()
    return record


@pytest.mark.parametrize("version", ["TLSv1.2", "TLSv1.3"])
def test_gateway_without_a_certificate_is_refused_before_the_backend(notify_bridge, backend_server, inbound_pki,
                                                                     pki, version):
    server = backend_server()
    b = notify_bridge(plain_backend(server.address), require_client_cert=True, client_ca=str(pki.client_ca))
    record = refused(b, server, gateway_context(inbound_pki, version))
    assert record["downstream"]["client_cert"] is None, record


@pytest.mark.parametrize("version", ["TLSv1.2", "TLSv1.3"])
def test_gateway_certificate_from_client_ca_is_accepted_and_recorded(notify_bridge, backend_server, inbound_pki,
                                                                     pki, version):
    server = backend_server()
    b = notify_bridge(plain_backend(server.address), require_client_cert=True, client_ca=str(pki.client_ca))
    body = form_body(1500)
    resp, _ = post(b.listen, gateway_context(inbound_pki, version, cert=pki.client_cert, key=pki.client_key),
                   "/notify", body)
    assert resp.body == ack_for(body)
    assert server.wait_finished(1)[0].body == body
    record = b.wait_record()
    check_inbound_record(record)
    assert record["error"] is None and record["downstream"]["protocol"] == version, record
    assert record["downstream"]["client_cert"] == subject(pki.client_cert), record["downstream"]
    assert f"CN={MERCHANT_CN}" in record["downstream"]["client_cert"]


def test_gateway_certificate_from_another_ca_is_refused(notify_bridge, backend_server, inbound_pki, pki, legacy_pki):
    server = backend_server()
    b = notify_bridge(plain_backend(server.address), require_client_cert=True, client_ca=str(pki.client_ca))
    refused(b, server, gateway_context(inbound_pki, "TLSv1.2", cert=legacy_pki.other_client_cert,
                                       key=legacy_pki.other_client_key))


def test_listed_fingerprint_is_accepted_and_others_refused(notify_bridge, backend_server, inbound_pki, pki,
                                                           legacy_pki):
    server = backend_server()
    b = notify_bridge(plain_backend(server.address), require_client_cert=True,
                      client_cert_fingerprints=[fingerprint(legacy_pki.other_client_cert)])
    resp, _ = post(b.listen, gateway_context(inbound_pki, "TLSv1.2", cert=legacy_pki.other_client_cert,
                                             key=legacy_pki.other_client_key), "/notify", b"a=1")
    assert resp.body == ack_for(b"a=1")
    first = b.wait_record()
    assert first["error"] is None and first["downstream"]["client_cert"] == subject(legacy_pki.other_client_cert)
    outcome = refused_notification(b.listen, gateway_context(inbound_pki, "TLSv1.2", cert=pki.client_cert,
                                                             key=pki.client_key))
    assert isinstance(outcome, Exception) or outcome == b"", outcome
    second = b.wait_records(2)[-1]
    assert second["close"] in ("refused", "downstream_error") and second["phase"] == "downstream_handshake", second
    assert len(server.wait_finished(1)) == 1, "only the accepted gateway may reach the backend"
