"""accept = "tls" routes by SNI: [listener.routes] picks the upstream (case-insensitively), `upstream` is the
default for clients without SNI or with an unrouted name, and without a default an unrouted name is refused
with the unrecognized_name alert, logged with the name, and no gateway is dialled."""

from __future__ import annotations

import pytest

from support.legacy import (MODULE, SANDBOX, UNROUTED, alerts, assert_no_upstream_connection, check_tls_record,
                            client_context, client_hello, echo_over, record_text, routes, send_raw, tls_connect,
                            tls_listener, tls_records)

UNRECOGNIZED_NAME = 112


@pytest.fixture
def gateways(upstream):
    return upstream(name="gw"), upstream(name="gw2")


def routed_bridge(bridge, legacy_pki, gateways, *, default: str | None = "gw"):
    gw, gw2 = gateways
    return bridge(gw.address, extra_upstreams=[{"name": "gw2", "address": gw2.address}],
                  listener=tls_listener(legacy_pki, min_version="TLS1.0", routes=routes(), upstream=default))


def session(b, legacy_pki, sni: str | None) -> dict:
    ctx = client_context("TLSv1", cafile=legacy_pki.listener_ca, check_hostname=sni is not None)
    with tls_connect(b, ctx, sni) as s:
        assert echo_over(s) == b"ping"
    record = b.wait_record()
    check_tls_record(record)
    assert record["error"] is None, record
    return record


def served_by(gateways, expected: str) -> None:
    gw, gw2 = gateways
    chosen, other = (gw, gw2) if expected == "gw" else (gw2, gw)
    assert len(chosen.wait_finished(1)) == 1, f"{expected} never saw the session"
    assert chosen.connections[0].command == "ECHO 4"
    assert_no_upstream_connection(other)


def test_client_without_sni_takes_the_default_route(bridge, legacy_pki, gateways):
    b = routed_bridge(bridge, legacy_pki, gateways)
    record = session(b, legacy_pki, None)
    served_by(gateways, "gw")
    assert record["downstream"]["sni"] is None, record["downstream"]
    assert record["downstream"]["offered"]["sni"] is None, record["downstream"]
    assert record["upstream"]["name"] == "gw", record["upstream"]


@pytest.mark.parametrize("sni, expected", [
    (SANDBOX, "gw"),
    (MODULE, "gw2"),
    ("MODULE.Paygent.TEST", "gw2"),
    ("Sandbox.PAYGENT.test", "gw"),
], ids=["sandbox", "module", "module-mixed-case", "sandbox-mixed-case"])
def test_sni_selects_the_upstream(bridge, legacy_pki, gateways, sni, expected):
    b = routed_bridge(bridge, legacy_pki, gateways, default=None)
    record = session(b, legacy_pki, sni)
    served_by(gateways, expected)
    assert (record["downstream"]["sni"] or "").lower() == sni.lower(), record["downstream"]
    assert record["upstream"]["name"] == expected, record["upstream"]


def test_unrouted_name_takes_the_default_route_when_there_is_one(bridge, legacy_pki, gateways):
    b = routed_bridge(bridge, legacy_pki, gateways)
    ctx = client_context("TLSv1", cafile=legacy_pki.listener_ca, check_hostname=False)
    with tls_connect(b, ctx, UNROUTED) as s:
        assert echo_over(s) == b"ping"
    served_by(gateways, "gw")
    record = b.wait_record()
    assert record["downstream"]["sni"] == UNROUTED and record["upstream"]["name"] == "gw", record


def test_unrouted_name_without_a_default_is_refused_with_unrecognized_name(bridge, legacy_pki, gateways):
    b = routed_bridge(bridge, legacy_pki, gateways, default=None)
    # AES128-SHA and ECDHE-RSA-AES128-SHA: suites the listener can do, so only the name is wrong
    reply = send_raw(b.listen, client_hello([0x002F, 0xC013], sni=UNROUTED), timeout=5)
    assert UNRECOGNIZED_NAME in alerts(reply), f"expected an unrecognized_name alert, got {reply[:64]!r}"
    assert not any(ctype == 22 for ctype, _ in tls_records(reply)), \
        "no ServerHello/Certificate may be sent for an unrouted name"
    record = b.wait_record()
    check_tls_record(record)
    assert record["close"] == "refused", record
    assert record["phase"] == "downstream_handshake", record
    assert record["downstream"]["sni"] == UNROUTED, record["downstream"]
    assert record["upstream"]["name"] is None, record["upstream"]
    assert record["bytes"] == {"up": 0, "down": 0}, record
    text = record_text(record).lower()
    assert "route" in text or "unrecognized" in text, f"the record does not say why: {record}"
    assert_no_upstream_connection(*gateways)


def test_refused_name_leaves_the_listener_serving(bridge, legacy_pki, gateways):
    b = routed_bridge(bridge, legacy_pki, gateways, default=None)
    ctx = client_context("TLSv1", cafile=legacy_pki.listener_ca, check_hostname=False)
    with pytest.raises(Exception, match="(?i)unrecognized.name"):
        tls_connect(b, ctx, UNROUTED)
    assert b.wait_records(1)[0]["close"] == "refused"
    with tls_connect(b, client_context("TLSv1", cafile=legacy_pki.listener_ca), MODULE) as s:
        assert echo_over(s) == b"ping"
    records = b.wait_records(2)
    assert records[1]["upstream"]["name"] == "gw2" and records[1]["error"] is None, records[1]
    served_by(gateways, "gw2")


def test_route_names_in_the_config_compare_case_insensitively(bridge, legacy_pki, gateways):
    gw, gw2 = gateways
    b = bridge(gw.address, extra_upstreams=[{"name": "gw2", "address": gw2.address}],
               listener=tls_listener(legacy_pki, min_version="TLS1.0", upstream=None,
                                     routes={"Module.PAYGENT.Test": "gw2", "SANDBOX.paygent.test": "gw"}))
    record = session(b, legacy_pki, MODULE)
    served_by(gateways, "gw2")
    assert record["upstream"]["name"] == "gw2", record
