"""accept = "http-proxy" refuses what it must not forward, answering itself with a short text/plain body and
`Connection: close`, before any gateway connection: 403 for an unrouted name, a routed name on another port, or an
IP address that is not a route key (even one the gateway's name resolves to), naming the destination; 405 for
TRACE; 400 for an https:// absolute-form target (use CONNECT). Each refusal is one record with its status."""

from __future__ import annotations

import time

import pytest

from support.legacy import MODULE, SANDBOX, UNROUTED
from support.proxy import ask, assert_bridge_error, assert_refusal_record, bridge_answer, curl, request_bytes

FORBIDDEN_CONNECT = [
    (f"{UNROUTED}:443", "unrouted-name"),
    (f"{SANDBOX}:8443", "routed-name-other-port"),
    (f"{SANDBOX}:80", "routed-name-port-80"),
    (f"{MODULE}:443", "port-route-default-port"),
    ("127.0.0.1:443", "ipv4-literal"),
    ("[::1]:443", "ipv6-literal"),
]


def assert_not_dialled(*gateways, grace: float = 0.3) -> None:
    time.sleep(grace)
    for gw in gateways:
        gw.assert_not_dialled(grace=0)


@pytest.fixture
def gateways(http_gateway):
    return http_gateway("gw"), http_gateway("gw2")


@pytest.mark.parametrize("authority", [c[0] for c in FORBIDDEN_CONNECT], ids=[c[1] for c in FORBIDDEN_CONNECT])
def test_connect_to_a_destination_that_is_not_routed_is_403_and_dials_nothing(proxy_bridge, gateways, authority):
    gw, gw2 = gateways
    b = proxy_bridge(gw, gw2)
    resp, closed = bridge_answer(b, request_bytes("CONNECT", authority, [("Host", authority)]))
    assert_bridge_error(resp, closed, 403)
    host = authority.rsplit(":", 1)[0].strip("[]")
    assert host in resp.text, f"the 403 body does not name the destination {authority}: {resp.text!r}"
    assert_not_dialled(gw, gw2)
    assert_refusal_record(b.wait_record(), 403, connect=authority)


def test_connect_to_the_gateways_own_ip_and_port_is_403(proxy_bridge, gateways):
    """The address a routed name leads to is still not a destination of its own."""
    gw, gw2 = gateways
    b = proxy_bridge(gw, gw2)
    resp, closed = bridge_answer(b, request_bytes("CONNECT", gw.address, [("Host", gw.address)]))
    assert_bridge_error(resp, closed, 403)
    gw.assert_not_dialled()
    assert_refusal_record(b.wait_record(), 403, connect=gw.address)


@pytest.mark.parametrize("url, host", [
    (f"http://{UNROUTED}/pay?x=1", UNROUTED),
    (f"http://{MODULE}/pay", MODULE),                    # the route is module:8443 only
    (f"http://{SANDBOX}:8080/pay", f"{SANDBOX}:8080"),
    ("http://127.0.0.1/pay", "127.0.0.1"),
], ids=["unrouted-name", "port-route-default-port", "routed-name-other-port", "ip-literal"])
def test_absolute_form_to_a_destination_that_is_not_routed_is_403(proxy_bridge, gateways, url, host):
    gw, gw2 = gateways
    b = proxy_bridge(gw, gw2)
    resp, closed = bridge_answer(b, request_bytes("GET", url, [("Host", host)]))
    assert_bridge_error(resp, closed, 403)
    assert host.split(":")[0] in resp.text, f"the 403 body does not name {host}: {resp.text!r}"
    assert_not_dialled(gw, gw2)
    record = b.wait_record()
    assert_refusal_record(record, 403)
    assert (record["downstream"]["request_host"] or "").lower().startswith(host.split(":")[0]), record


def test_curl_reports_the_403_for_an_unrouted_connect(proxy_bridge, gateways, legacy_pki):
    gw, gw2 = gateways
    b = proxy_bridge(gw, gw2)
    result = curl(b, "--cacert", str(legacy_pki.mint_ca), "-o", "/dev/null", "-w", "%{http_connect}",
                  f"https://{UNROUTED}/pay")
    assert result.returncode != 0 and result.stdout == b"403", (result.returncode, result.stdout, result.stderr)
    gw.assert_not_dialled()
    assert_refusal_record(b.wait_record(), 403, connect=f"{UNROUTED}:443")


def test_trace_is_405(proxy_bridge, gateways):
    gw, gw2 = gateways
    b = proxy_bridge(gw, gw2)
    resp, closed = bridge_answer(b, request_bytes("TRACE", f"http://{SANDBOX}/", [("Host", SANDBOX)]))
    assert_bridge_error(resp, closed, 405)
    gw.assert_not_dialled()
    assert_refusal_record(b.wait_record(), 405)


def test_https_absolute_form_is_400_telling_to_use_connect(proxy_bridge, gateways):
    gw, gw2 = gateways
    b = proxy_bridge(gw, gw2)
    resp, closed = bridge_answer(b, request_bytes("GET", f"https://{SANDBOX}/pay", [("Host", SANDBOX)]))
    assert_bridge_error(resp, closed, 400)
    assert "CONNECT" in resp.text, f"the 400 body does not say to use CONNECT: {resp.text!r}"
    gw.assert_not_dialled()
    assert_refusal_record(b.wait_record(), 400)


def test_origin_form_request_to_the_proxy_is_refused(proxy_bridge, gateways):
    """`GET /path` names no destination: the proxy must not pick one."""
    gw, gw2 = gateways
    b = proxy_bridge(gw, gw2)
    resp, closed = bridge_answer(b, request_bytes("GET", "/pay", [("Host", SANDBOX)]))
    assert_bridge_error(resp, closed, (400, 403))
    gw.assert_not_dialled()
    assert b.wait_record()["downstream"]["http_status"] in (400, 403)


def test_listener_keeps_serving_after_refusals(proxy_bridge, gateways):
    gw, gw2 = gateways
    b = proxy_bridge(gw, gw2)
    for authority in (f"{UNROUTED}:443", "127.0.0.1:443"):
        resp, _ = bridge_answer(b, request_bytes("CONNECT", authority, [("Host", authority)]))
        assert resp.status == 403
    resp = ask(b, request_bytes("GET", f"http://{SANDBOX}/ok", [("Host", SANDBOX)]))
    assert resp.status == 200 and resp.header("x-gateway") == "gw", resp
    assert [r.target for r in gw.requests()] == ["/ok"]
    assert len(b.wait_records(3)) == 3


def test_source_outside_allow_sources_is_not_served(proxy_bridge, gateways):
    gw, gw2 = gateways
    b = proxy_bridge(gw, gw2, allow_sources=["192.0.2.0/24"])
    try:
        resp = ask(b, request_bytes("GET", f"http://{SANDBOX}/x", [("Host", SANDBOX)]), timeout=5)
        assert resp.status >= 400, f"a source outside allow_sources was served: {resp}"
    except (EOFError, ConnectionError):
        pass  # closed without an answer: fine too
    gw.assert_not_dialled()


@pytest.mark.parametrize("authority, reason", [
    (f"user@{SANDBOX}:443", "CONNECT target contains user information (@), which is not accepted"),
    (SANDBOX, "CONNECT target has no port"),
    (f"{SANDBOX}:0", "CONNECT target has a port outside 1-65535"),
], ids=["userinfo", "no-port", "port-0"])
def test_a_malformed_connect_target_is_400_in_plain_words(proxy_bridge, gateways, authority, reason):
    gw, gw2 = gateways
    b = proxy_bridge(gw, gw2)
    resp, closed = bridge_answer(b, request_bytes("CONNECT", authority, [("Host", SANDBOX)]))
    assert_bridge_error(resp, closed, 400)
    assert resp.text.strip() == reason, resp.text
    assert "Error" not in resp.text and "text:" not in resp.text, resp.text
    assert_not_dialled(gw, gw2)
